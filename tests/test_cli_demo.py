"""`twinview demo` on a machine without a display: it says so, writes a screenshot and serves the web view."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("display", [None, ":97"])  # unset, and set but impossible to open
def test_demo_without_a_display_screenshots_and_serves(tmp_path, display):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = display
    port = free_port()
    shot = tmp_path / "demo.png"
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinview.cli", "demo", "--screenshot", str(shot), "--port", str(port), "--wait", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("serving "):
                break
        out = "".join(lines)
        assert "No display found" in out, (out, proc.stderr.read() if proc.poll() is not None else "")
        assert f"http://127.0.0.1:{port}/" in out
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "<html" in page.lower()
        from PIL import Image

        image = np.asarray(Image.open(shot))
        assert image.shape[:2] == (720, 1280)
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 1000  # a scene, not a flat fill
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGINT, 130)
