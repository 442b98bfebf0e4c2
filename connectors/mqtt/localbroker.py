"""A private mosquitto on 127.0.0.1 for tests, benchmarks and local demos.

Starts the real broker binary with a generated config on a free port, waits
until it accepts connections, and can be killed and restarted on the same port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def mosquitto_binary() -> str | None:
    """Path of the mosquitto broker, or None when it is not installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """One mosquitto process on 127.0.0.1:port, its config and data in a temporary folder."""

    def __init__(
        self,
        port: int | None = None,
        workdir: str | Path | None = None,
        persistence: bool = True,
        unlimited_queue: bool = True,
        extra_config: str = "",
    ):
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="twinview-broker-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",  # client connects and disconnects: tests wait on them
            "connection_messages true",
        ]
        if unlimited_queue:
            lines.append("max_queued_messages 0")  # a slow subscriber must not lose QoS 0 silently in tests
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to 'mosquitto' and cannot write its folder
        if extra_config:
            lines.append(extra_config)
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "LocalBroker":
        if self.proc is not None and self.proc.poll() is None:
            return self
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"mosquitto did not accept connections on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (a clean shutdown that saves persistence), then SIGKILL if needed."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes as in a crash or power loss."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(5)

    def restart(self, hard: bool = True, timeout: float = 10.0) -> "LocalBroker":
        """Kill (or stop) and start again on the same port with the same data."""
        self.kill() if hard else self.stop()
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        """Until the broker's log contains `text` (e.g. "as device-1" once that client is connected)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            time.sleep(0.02)
        return text in self.log_text()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
