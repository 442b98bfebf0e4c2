"""The page in real headless Chromium: live colours, inspection, and a Quest 3 emulated by IWER.

Few and broad on purpose: each Chromium start costs about two seconds here.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import command_site, wait_for  # noqa: E402

from twinview.twin.runtime import Runtime  # noqa: E402
from twinview.connectors.base import Sample  # noqa: E402
from twinview.site import open_site  # noqa: E402
from twinview.twin import colormaps  # noqa: E402
from twinview.web.serve import start_server  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return open_site(command_site(tmp_path_factory.mktemp("site")))


def push(live, device: str, value: float) -> None:
    live.submit(Sample(device, "temp", value, time.time()))


# The page draws continuous maps that use the reserved state hues (heat has reds) with
# its own value ramp (static/palette.js), so a value colour never reads as a fault.
VALUE_RAMP = ["#1d3557", "#2a6f97", "#3fa39a", "#8cc66d", "#f2dc4b"]


def heat_hex(value: float) -> str:
    """The page's colour for a heat-mapped value in 0..100 (VALUE_RAMP, as palette.js)."""
    assert any(c[0] > 0.6 and c[1] < 0.3 for c in (colormaps.sample("heat", t / 10) for t in range(11)))  # heat has reds
    x = min(1.0, max(0.0, value / 100.0)) * (len(VALUE_RAMP) - 1)
    i = min(len(VALUE_RAMP) - 2, int(x))
    k = x - i
    a, b = ([int(h[j : j + 2], 16) for j in (1, 3, 5)] for h in VALUE_RAMP[i : i + 2])
    return "#" + "".join(f"{round(p + (q - p) * k):02x}" for p, q in zip(a, b))


def close_hex(a: str, b: str, tol: int = 2) -> bool:
    pa = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    pb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return max(abs(x - y) for x, y in zip(pa, pb)) <= tol


def pixel(image: np.ndarray, xy: dict) -> np.ndarray:
    return image[int(round(xy["y"])), int(round(xy["x"])), :3].astype(int)


TOP = [0, 0, 0.32]  # beside the blade that crosses the middle of each box's top


def test_page_shows_live_state_and_inspects_devices(loaded, tmp_path):
    from PIL import Image

    from twinview.connectors.mqtt.localbroker import free_port
    from twinview.web.serve import export_static

    bundle = export_static(loaded, tmp_path / "bundle").parent
    static_port = free_port()
    static = ThreadingHTTPServer(("127.0.0.1", static_port), partial(QuietHandler, directory=str(bundle)))
    threading.Thread(target=static.serve_forever, daemon=True).start()
    cleanup = [static.server_close, static.shutdown]
    try:
        live = Runtime(loaded.site)
        server = start_server(loaded, live, port=0, allowed_origins=[f"http://127.0.0.1:{static_port}"])
        cleanup.append(server.stop)
        browser = Browser()
        cleanup.append(browser.close)

        browser.goto(server.url)
        browser.wait("() => twinview.connected && twinview.snapshots > 0")
        push(live, "B-1-1", 40.0)
        push(live, "B-0-0", 95.0)
        browser.wait("() => (twinview.deviceEntry('B-1-1') || {}).label === '40 degC' && twinview.deviceColor('B-0-0').painted")
        # a payload that does not decode is counted on the server and the page says so
        live.submit(Sample("B-2-2", "temp", None, time.time(), None, "not a number: 'hot'"))
        browser.wait("() => twinview.status && twinview.status.errors.bad_samples === 1"
                     " && !document.getElementById('errors').hidden"
                     " && document.getElementById('errors').textContent === '1 counted error'")

        colour = browser.eval("(id) => twinview.deviceColor(id)", "B-1-1")
        assert colour["painted"] and close_hex(colour["color"], heat_hex(40)), colour
        assert close_hex(browser.eval("(id) => twinview.deviceColor(id).color", "B-0-0"), heat_hex(95))
        assert browser.eval("(id) => twinview.deviceColor(id).painted", "B-2-2") is False  # no data: model colour

        browser.wait("() => twinview.renderedSeq === twinview.seq && twinview.frames > 0")
        image = np.asarray(Image.open(browser.screenshot(tmp_path / "page.png")).convert("RGB"))
        # Labels are drawn over the geometry: sample each top where no label covers it.
        covers = [r for r in (browser.eval("(id) => twinview.labelScreen(id)", d) for d in browser.eval("() => twinview.devices")) if r]
        free = lambda xy: not any(abs(xy["x"] - r["x"]) <= r["w"] / 2 + 2 and abs(xy["y"] - r["y"]) <= r["h"] / 2 + 2 for r in covers)  # noqa: E731
        at = {}
        for d in ("B-1-1", "B-0-0", "B-2-2"):
            spots = [browser.eval("([id, off]) => twinview.screenPosition(id, off)", [d, off]) for off in (TOP, [0.3, 0, 0.32], [-0.3, 0, 0.32], [0.3, 0, -0.32], [-0.3, 0, -0.32])]
            at[d] = next((xy for xy in spots if free(xy)), spots[0])
        warm, hot, grey = (pixel(image, at[d]) for d in ("B-1-1", "B-0-0", "B-2-2"))
        assert warm[2] - warm[0] > 40 and warm[1] - warm[0] > 40, f"B-1-1 should look blue-teal (never red), shows {warm}"
        # (by hue: the spinning blade is painted too and may cross the spot with a darker face)
        assert hot[0] - hot[2] > 50 and hot[1] - hot[2] > 50 and abs(hot[0] - hot[1]) < 40, f"B-0-0 should look yellow, shows {hot}"
        assert grey.max() - grey.min() < 25, f"B-2-2 keeps its grey model colour, shows {grey}"

        # Click to inspect: the side panel follows live values.
        browser.call("mouse", x=at["B-1-1"]["x"], y=at["B-1-1"]["y"], click=True)
        browser.wait("() => twinview.selectedDevice === 'B-1-1'")
        assert "40 degC" in browser.eval("() => document.getElementById('panel').innerText")
        push(live, "B-1-1", 41.0)
        browser.wait("() => document.getElementById('panel').innerText.includes('41 degC')")
        assert browser.eval("(id) => twinview.labelText(id)", "B-1-1") == "B-1-1 41 degC"

        # The blade of B-0-0 spins at 0.95 rev/s.
        a0 = browser.eval("() => twinview.partAngle('B-0-0')")
        browser.wait("(a0) => twinview.partAngle('B-0-0') !== a0", a0)

        # A reconnect resynchronises from a fresh snapshot.
        snapshots = browser.eval("() => twinview.snapshots")
        browser.eval("() => twinview.connection.reconnect()")
        browser.wait("(n) => twinview.connected && twinview.snapshots > n", snapshots)
        assert browser.eval("() => twinview.deviceEntry('B-1-1').label") == "41 degC"

        # The export-xr bundle, hosted elsewhere, goes live with ?bridge= (its origin is allowed).
        browser.goto(f"http://127.0.0.1:{static_port}/index.html?bridge={server.bridge.ws_url}")
        browser.wait("() => twinview.connected && twinview.snapshots > 0")
        assert browser.eval("() => twinview.deviceEntry('B-1-1').label") == "41 degC"
    finally:
        for close in reversed(cleanup):
            close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class CommandSub:
    """A real mosquitto_sub on the command topics, read in a thread."""

    def __init__(self, broker, topic: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1", "-t", topic, "-v", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not wait_for(lambda: any("SUBACK" in line for line in self.lines), 10):
            self.close()
            raise AssertionError(f"mosquitto_sub did not subscribe: {self.lines}")

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
        except (ValueError, OSError):  # closed by close() while reading
            pass

    def messages(self) -> list[str]:
        return [line for line in self.lines if line.startswith("grid/")]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


def aim_and_select(browser: Browser, target: dict) -> None:
    browser.xr("look_at", device="controller-right", target=target)
    browser.xr("select", device="controller-right", duration=1)


def press(browser: Browser, label: str) -> None:
    target = browser.eval("(label) => twinview.panelButtonPosition(label)", label)
    assert target is not None, browser.eval("() => twinview.panel()")
    selects = browser.eval("() => twinview.xr.selects")
    aim_and_select(browser, target)
    browser.wait("(n) => twinview.xr.selects > n", selects)


@pytest.mark.broker
def test_headset_selects_a_device_and_commands_it(loaded, tmp_path, broker):
    import json

    from twinview.connectors.mqtt.commands import MqttCommandTransport
    from twinview.twin.audit import read_audit
    from twinview.security.auth import add_user, issue_token
    from twinview.web.actuation import token_authenticator

    users = tmp_path / "users.toml"
    add_user("olga", "operator", path=users)
    add_user("victor", "viewer", path=users)
    operator, viewer = issue_token("olga", path=users), issue_token("victor", path=users)
    audit = tmp_path / "audit.jsonl"

    cleanup = []
    try:
        sub = CommandSub(broker, "grid/+/cmd/#")
        cleanup.append(sub.close)
        transport = MqttCommandTransport(broker.url, loaded.site.topic_prefix).start()
        cleanup.append(transport.stop)
        assert transport.wait_ready(10)
        live = Runtime(loaded.site)
        live.enable_commands(transport, audit_path=audit)
        server = start_server(loaded, live, port=0, authenticate=token_authenticator(users))
        cleanup.append(server.stop)
        browser = Browser(iwer=True)
        cleanup.append(browser.close)

        browser.goto(server.url)
        browser.wait("() => twinview.connected && twinview.xr.supported.vr")
        browser.eval("(token) => twinview.login(token)", operator)
        browser.wait("() => twinview.role === 'operator'")

        browser.call("click", selector="#enter-vr")
        browser.wait("() => twinview.xr.presenting && twinview.frames > 2")

        # Aim the right controller at the nearest box and pull the trigger.
        aim_and_select(browser, browser.eval("(id) => twinview.worldPosition(id)", "B-2-0"))
        browser.wait("() => twinview.selectedDevice === 'B-2-0' && twinview.panel().visible")
        assert {"Start", "Stop"} <= set(browser.eval("() => twinview.panel().buttons"))

        press(browser, "Start")
        result = browser.wait("() => twinview.results.length === 1 && twinview.results[0]")
        assert result["ok"] and result["device"] == "B-2-0" and result["command"] == "start", result
        assert wait_for(lambda: len(sub.messages()) == 1, 10), sub.lines[-5:]
        topic, payload = sub.messages()[0].split(" ", 1)
        assert topic == "grid/B-2-0/cmd/start"
        body = json.loads(payload)
        assert body["user"] == "olga" and body["id"] == result["id"]
        browser.wait("() => (twinview.deviceEntry('B-2-0').flags & 64) !== 0")  # in flight: shown as pending

        # Stop needs a confirmation: the first press asks, the second sends.
        press(browser, "Stop")
        assert browser.wait("() => twinview.panel().confirming") == "Stop"
        assert len(sub.messages()) == 1
        press(browser, "Confirm")
        result = browser.wait("() => twinview.results.length === 2 && twinview.results[1]")
        assert result["ok"] and result["command"] == "stop", result
        assert wait_for(lambda: len(sub.messages()) == 2, 10)
        assert sub.messages()[1].startswith("grid/B-2-0/cmd/stop ")

        # As a viewer the panel offers no command and says why; a command sent anyway (as a
        # crafted page would) is refused by the command service and audited.
        browser.eval("(token) => twinview.login(token)", viewer)
        browser.wait("() => twinview.role === 'viewer' && twinview.live")
        browser.wait("() => !twinview.panel().buttons.includes('Start')")
        assert "needs the operator role" in browser.eval("() => twinview.panel().blocked")
        browser.eval("() => twinview.sendCommand('B-2-0', 'start', {}, false)")
        result = browser.wait("() => twinview.results.length === 3 && twinview.results[2]")
        assert not result["ok"] and result["state"] == "refused" and "viewer" in result["reason"], result
        assert "refused" in browser.eval("() => twinview.panel().status")
        refused = read_audit(audit, user="victor", state="refused")  # sign-ins are audited too
        assert [(r["device"], r["command"], r["state"]) for r in refused] == [("B-2-0", "start", "refused")]
        assert transport.counters["published"] == 2
        assert {r["user"] for r in read_audit(audit, state="requested")} == {"olga"}

        browser.eval("() => twinview.exitXR()")
        browser.wait("() => !twinview.xr.presenting")
    finally:
        for close in reversed(cleanup):
            close()


def test_the_page_travels_back_in_time_and_refuses_commands_there(loaded, tmp_path):
    """The slider shows the recorded past: the values of then, a banner, commands refused; Live comes back."""
    from twinview.history import open_store
    from twinview.twin.memory import StoreRecorder

    live = Runtime(loaded.site)
    live.recorder = StoreRecorder(live, open_store(tmp_path / "store", loaded.site.name))
    server = start_server(loaded, live, port=0)
    browser = None
    try:
        browser = Browser()
        browser.goto(server.url)
        browser.wait("() => twinview.connected && twinview.snapshots > 0")
        then = time.time()
        live.submit(Sample("B-1-1", "temp", 20.0, then - 1.0, then - 1.0))
        browser.wait("() => (twinview.deviceEntry('B-1-1') || {}).label === '20 degC'")
        time.sleep(1.0)
        live.submit(Sample("B-1-1", "temp", 80.0, time.time(), time.time()))
        browser.wait("() => (twinview.deviceEntry('B-1-1') || {}).label === '80 degC'"
                     " && twinview.status && twinview.status.history && twinview.status.history.recording")
        browser.wait("() => !document.getElementById('timeline-box').hidden")
        browser.eval(f"() => twinview.seek({then + 0.2})")
        browser.wait("() => twinview.mode === 'past' && (twinview.deviceEntry('B-1-1') || {}).label === '20 degC'")
        assert browser.eval("() => !document.getElementById('past-banner').hidden"
                                " && document.getElementById('past-banner').textContent.startsWith('PAST')")
        assert browser.eval("() => document.body.classList.contains('past')")
        live.submit(Sample("B-1-1", "temp", 60.0, time.time(), time.time()))  # the present moves on, unseen here
        time.sleep(1.0)
        assert browser.eval("() => (twinview.deviceEntry('B-1-1') || {}).label") == "20 degC"
        browser.eval("() => twinview.goLive()")  # (twinview.live says whether the values are live)
        browser.wait("() => twinview.mode === 'live' && (twinview.deviceEntry('B-1-1') || {}).label === '60 degC'")
        assert browser.eval("() => document.getElementById('past-banner').hidden")
    finally:
        if browser is not None:
            browser.close()
        server.stop()
        live.recorder.store.close()
