"""Test sites and a live server rig for the web tests (real Runtime, real bridge)."""

from __future__ import annotations

import subprocess
import sys
import time
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/sitegen.py

from sitegen import grid_site  # noqa: E402

from twinview.twin.runtime import Runtime  # noqa: E402

COMMANDS = """
[[types.box.commands]]
name = "start"
label = "Start"
role = "operator"
success = { point = "temp", equals = 50, tolerance = 50 }

[[types.box.commands]]
name = "stop"
label = "Stop"
role = "operator"
confirm = true
success = { point = "temp", equals = 0, tolerance = 5 }
"""


def command_site(out: Path, rows: int = 3, cols: int = 3) -> Path:
    """sitegen's grid of boxes (temp point, heat colour, spinning blade, label) with Start and Stop (confirm).

    The temp point's period is 600 s, so no value turns stale during a test."""
    site = grid_site(out, rows, cols)
    manifest = site / "site.toml"
    text = manifest.read_text(encoding="utf-8")
    # Values stay current for 30 minutes: nothing turns stale while a slow machine runs a test.
    assert "\nperiod = 1\n" in text
    manifest.write_text(text.replace("\nperiod = 1\n", "\nperiod = 600\n", 1) + COMMANDS, encoding="utf-8")
    return site


def validate_gltf(path: Path) -> dict:
    """The Khronos glTF validator's report for a file (node + npm gltf-validator)."""
    proc = subprocess.run(["node", str(HERE / "validate_gltf.mjs"), str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"gltf-validator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


DEMO = HERE.parent.parent / "assets" / "demo"


def demo_values(live, now: float | None = None, fault: str = "P-101", offline: str = "P-302") -> None:
    """Every point of the demo plant current and in range; `fault` in fault, `offline` offline.

    Values are submitted straight to the runtime (the same path a connector uses)."""
    from twinview.connectors.base import Availability, Sample

    now = time.time() if now is None else now
    for d in live.site.devices:
        for p in d.points:
            if p.kind == "enum":
                value = p.states[1] if len(p.states) > 1 else p.states[0]  # pumps: running
            elif p.kind == "bool":
                value = True
            else:
                lo, hi = p.alarm or p.range or (0.0, 100.0)
                value = round(lo + (hi - lo) * 0.5, 2)
            live.submit(Sample(d.id, p.id, value, now))
        live.submit(Availability(d.id, True, now))
    if fault:
        live.submit(Sample(fault, "state", "fault", now))
        live.submit(Sample(fault, "speed", 0.0, now))
    if offline:
        live.submit(Availability(offline, False, now))


def slow_periods(site_dir: Path, out: Path, period: float = 1800) -> Path:
    """A copy of a site whose points have 30-minute periods: nothing turns stale during a slow test.

    (The twin keeps about history_seconds / period samples per point: a trend test wants shorter periods.)"""
    import re
    import shutil

    shutil.copytree(site_dir, out)
    manifest = out / "site.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(re.sub(r"\bperiod = [0-9.]+", f"period = {period:g}", text), encoding="utf-8")
    return out


class DemoRig:
    """The demo plant served live: a real Runtime, bridge and command service.

    Values come from demo_values() (P-101 in fault, P-302 offline); with a broker,
    commands go out over real MQTT (MqttCommandTransport) and are audited; users
    olga and piotr are operators, victor a viewer (tokens in .tokens).
    """

    def __init__(self, tmp: Path, broker=None, values: bool = True, period: float = 1800):
        from twinview.site import open_site
        from twinview.security.auth import add_user, issue_token
        from twinview.web.actuation import token_authenticator
        from twinview.web.serve import start_server

        self.tmp = tmp
        self.cleanup = []
        self.loaded = open_site(slow_periods(DEMO, tmp / "demo", period))
        self.live = Runtime(self.loaded.site)
        users = tmp / "users.toml"
        add_user("olga", "operator", path=users)
        add_user("piotr", "operator", path=users)
        add_user("victor", "viewer", path=users)
        self.tokens = {name: issue_token(name, path=users) for name in ("olga", "piotr", "victor")}
        self.audit = tmp / "audit.jsonl"
        self.transport = None
        if broker is not None:
            from twinview.connectors.mqtt.commands import MqttCommandTransport

            self.transport = MqttCommandTransport(broker.url, self.loaded.site.topic_prefix).start()
            self.cleanup.append(self.transport.stop)
            assert self.transport.wait_ready(10)
            self.live.enable_commands(self.transport, audit_path=self.audit)
        self.authenticate = token_authenticator(users)
        self.port = 0
        self.server = start_server(self.loaded, self.live, port=0, authenticate=self.authenticate)
        self.port = self.server.bridge.port
        if values:
            demo_values(self.live)

    @property
    def url(self) -> str:
        return self.server.url

    def restart(self) -> None:
        """Start the server again on the same port (after stop_server)."""
        from twinview.web.serve import start_server

        self.live = Runtime(self.loaded.site)
        self.server = start_server(self.loaded, self.live, port=self.port, authenticate=self.authenticate)
        demo_values(self.live)

    def stop_server(self) -> None:
        self.server.stop()

    def close(self) -> None:
        try:
            self.server.stop()
        except Exception:
            pass
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception:
                pass


def open_page(browser, rig) -> None:
    """Open the rig's page and wait until it is live with the demo values (P-101 fault, P-302 offline)."""
    browser.goto(rig.url)
    browser.wait("() => twinview.live && twinview.counts.alarm === 1 && twinview.counts.offline === 1", timeout=40)
