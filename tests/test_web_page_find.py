"""Issue 14, find it and see what is wrong: the demo plant in real headless Chromium at 1280x720.

P-101 is in fault and P-302 offline (tests/web/rig.py). Before this work the page's
whole visible text was the site name, "live" and "Log in": these tests fail on that page.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page  # noqa: E402

from twinview.connectors.base import Sample  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


@pytest.fixture
def rig(tmp_path):
    r = DemoRig(tmp_path)
    yield r
    r.close()


def red(hex_colour: str) -> bool:
    import colorsys

    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    return s > 0.45 and (h * 360 >= 335 or h * 360 <= 22)


def inside(xy: dict, rect: dict, margin: float = 0) -> bool:
    return rect["left"] + margin <= xy["x"] <= rect["right"] - margin and rect["top"] + margin <= xy["y"] <= rect["bottom"] - margin


def test_status_summary_counts_what_is_wrong_and_opens_those_devices(rig, tmp_path):
    with Browser(width=1280, height=720) as browser:
        open_page(browser, rig)
        bar = browser.text("#summary")
        assert "1\nIn alarm" in bar or "1 In alarm" in bar, bar
        assert "1\nOffline" in bar or "1 Offline" in bar, bar

        # The Alarms count opens the list of devices in alarm, with the reason in words.
        browser.call("click", selector="#summary button[data-kind=alarm]")
        browser.wait("() => !document.getElementById('filter').hidden")
        listed = browser.eval("() => [...document.querySelectorAll('#device-tree button.dev')].map(b => b.dataset.device)")
        assert listed == ["P-101"], listed
        assert "State: fault" in browser.text("#device-tree")
        assert browser.eval("() => getComputedStyle(document.querySelector('#device-tree .why')).color") == "rgb(201, 42, 42)"

        browser.call("click", selector="#summary button[data-kind=offline]")
        browser.wait("() => [...document.querySelectorAll('#device-tree button.dev')].map(b => b.dataset.device).join() === 'P-302'")

        # The offline device carries a label that says so (not a few dark pixels), and looks unlike a stopped pump.
        assert browser.eval("(id) => twinview.labelText(id)", "P-302") == "P-302 OFFLINE"
        assert browser.eval("(id) => twinview.labelScreen(id)", "P-302") is not None
        assert browser.eval("(id) => twinview.deviceColor(id).opacity", "P-302") < 0.6
        assert browser.eval("(id) => twinview.labelText(id)", "P-101").startswith("P-101 ")
        # Labels carry the tag and stay readable: at least 18 px tall on screen.
        shown = browser.eval("(id) => twinview.labelScreen(id)", "P-101")
        assert shown and shown["h"] >= 18, shown

        # In the inspector the alarm is a red ALARM next to the quality word, in the quality's colour.
        browser.call("click", selector="#device-tree button[data-device='P-302']")
        browser.wait("() => twinview.selectedDevice === 'P-302'")
        browser.call("click", selector="#filter-clear")
        browser.call("click", selector="#device-tree button[data-device='P-101']")
        browser.wait("() => document.getElementById('panel-title').textContent.startsWith('P-101')")
        row = browser.eval("() => { const r = document.querySelector('#panel-points tr[data-point=state]');"
                           " return { text: r.innerText, q: getComputedStyle(r.querySelector('.q')).color,"
                           " alarm: getComputedStyle(r.querySelector('.q-alarm')).backgroundColor }; }")
        assert "fault" in row["text"] and "ALARM" in row["text"], row
        assert row["alarm"] == "rgb(201, 42, 42)" and row["q"] == "rgb(43, 138, 62)", row

        # Red is reserved for alarms: a pressure sensor on the heat map (reds at mid range) is
        # drawn with the page's value ramp, never in a red a fault could be mistaken for.
        rig.live.submit(Sample("PT-101", "pressure", 3.3, time.time()))  # inside its alarm band: no alarm
        entry = browser.wait("() => { const e = twinview.deviceEntry('PT-101'); return e.points.pressure.v === 3.3 && e; }")
        assert not entry["points"]["pressure"]["a"]
        server = "#" + "".join(f"{round(c * 255):02x}" for c in entry["rgba"][:3])
        assert red(server), server  # the site's heat map says red here
        colour = browser.eval("(id) => twinview.deviceColor(id)", "PT-101")
        assert colour["painted"] and not red(colour["color"]), colour
        assert red(browser.eval("(id) => twinview.deviceColor(id).color", "P-101"))  # the fault is red

        # A new alarm is counted and announced (assertive live region).
        rig.live.submit(Sample("P-104", "state", "fault", time.time()))
        browser.wait("() => twinview.counts.alarm === 2")
        said = browser.wait("() => twinview.announcements.find(a => a.startsWith('Alarm: P-104'))")
        assert "State: fault" in said, said
        browser.wait("() => document.getElementById('announce-alarm').textContent.startsWith('Alarm: P-104')")

        # The legend names every state colour and the pumps' state colours.
        browser.call("click", selector="#legend-toggle")
        legend = browser.text("#legend")
        for words in ("Alarm", "Offline", "Stale", "Bad value", "running", "stopped", "fault"):
            assert words in legend, legend
        browser.screenshot(tmp_path / "summary.png")


def test_search_finds_a_device_and_flies_to_it(rig, tmp_path):
    with Browser(width=1280, height=720) as browser:
        open_page(browser, rig)
        view = browser.eval("() => twinview.viewRect()")
        # At start the whole plant is in view, below the top bar.
        for device in ("P-101", "P-302", "T-201", "AHU-401"):
            xy = browser.eval("(id) => twinview.screenPosition(id)", device)
            assert inside(xy, view, 2), (device, xy, view)
        before = browser.eval("() => twinview.cameraState()")

        browser.call("fill", selector="#search", text="raw water pump 3")
        browser.wait("() => document.querySelectorAll('#device-tree button.dev').length >= 1")
        listed = browser.eval("() => [...document.querySelectorAll('#device-tree button.dev')].map(b => b.dataset.device)")
        assert listed[0] == "P-103" and "P-101" not in listed, listed
        browser.call("fill", selector="#search", text="storage tank")  # by area and type (or name) words
        listed = browser.wait("() => { const l = [...document.querySelectorAll('#device-tree button.dev')].map(b => b.dataset.device);"
                              " return !l.includes('P-103') && l; }")
        assert {"T-201", "T-204"} <= set(listed) and "T-301" not in listed, listed

        browser.call("fill", selector="#search", text="P-103")
        browser.key("Enter")
        browser.wait("() => twinview.selectedDevice === 'P-103' && !twinview.cameraState().moving", timeout=30)
        after = browser.eval("() => twinview.cameraState()")
        assert after["position"] != before["position"]
        xy = browser.eval("(id) => twinview.screenPosition(id)", "P-103")
        centre = {"x": (view["left"] + view["right"]) / 2, "y": (view["top"] + view["bottom"]) / 2}
        assert abs(xy["x"] - centre["x"]) < view["width"] * 0.2 and abs(xy["y"] - centre["y"]) < view["height"] * 0.25, (xy, centre)
        assert browser.text("#panel-title").startswith("P-103")

        # Hover names a device (tag and name); Home shows the whole site again.
        at = browser.eval("(id) => twinview.centrePosition(id)", "P-103")
        browser.call("mouse", x=at["x"], y=at["y"])
        browser.wait("() => !document.getElementById('tooltip').hidden", timeout=20)
        assert browser.text("#tooltip").startswith("P-103 · Raw water pump 3")
        browser.call("click", selector="#home")
        browser.wait("() => !twinview.cameraState().moving && twinview.cameraState().position[1] > 20", timeout=30)
        for device in ("P-101", "P-302"):
            assert inside(browser.eval("(id) => twinview.screenPosition(id)", device), view, 2)

        # The wheel zooms towards the cursor: the device under it stays under it.
        at = browser.eval("(id) => twinview.centrePosition(id)", "P-101")
        dist = lambda c: sum((a - b) ** 2 for a, b in zip(c["position"], c["target"])) ** 0.5  # noqa: E731
        before = browser.eval("() => twinview.cameraState()")
        for _ in range(3):
            browser.call("wheel", x=at["x"], y=at["y"], dy=-200)
        browser.wait("(d) => { const c = twinview.cameraState(); const p = c.position, t = c.target;"
                     " return Math.hypot(p[0] - t[0], p[1] - t[1], p[2] - t[2]) < d * 0.8; }", dist(before), timeout=30)
        moved = browser.eval("(id) => twinview.centrePosition(id)", "P-101")
        assert abs(moved["x"] - at["x"]) < 25 and abs(moved["y"] - at["y"]) < 25, (at, moved)
        browser.screenshot(tmp_path / "search.png")

        # The address names the selection: a link opens the page on that device.
        assert browser.eval("() => window.location.hash") == "#P-103"
        browser.goto(rig.url + "#P-302")
        browser.wait("() => twinview.selectedDevice === 'P-302' && document.getElementById('panel-title').textContent.startsWith('P-302')")


def test_keyboard_reaches_search_a_device_and_its_commands(rig, tmp_path):
    with Browser(width=1280, height=720) as browser:
        open_page(browser, rig)
        browser.eval("(t) => twinview.login(t)", rig.tokens["olga"])
        browser.wait("() => twinview.role === 'operator' && twinview.live")
        # Tab from the top reaches the search box; the device list is one Tab stop (arrows move in it).
        browser.tab_until("(f) => f.id === 'search'", limit=20)
        browser.key("Tab")
        assert browser.focused()["device"] == "P-101"
        browser.key("ArrowDown")
        assert browser.focused()["device"] == "P-102"
        browser.key("Tab")
        assert browser.focused()["device"] is None  # out of the list in one press
        # '/' goes to search.
        browser.key("/")
        assert browser.focused()["id"] == "search"
        browser.call("type", text="P-101")
        browser.key("ArrowDown")
        f = browser.focused()
        assert f["device"] == "P-101", f
        assert "fault" in (f["label"] or ""), f  # the accessible name says what is wrong
        browser.key("Enter")
        browser.wait("() => twinview.selectedDevice === 'P-101'")
        # Tab from the device reaches the inspector's command buttons and the speed box (with a label).
        f = browser.tab_until("(f) => f.command === 'set_speed' && f.tag === 'INPUT'")
        assert "speed" in browser.eval("() => document.activeElement.getAttribute('aria-label')")
        assert "rpm" in browser.eval("() => document.activeElement.getAttribute('aria-label')")
        close_name = browser.eval("() => document.getElementById('panel-close').getAttribute('aria-label')")
        assert close_name == "Close inspector"
        # Home shows the whole site, F flies back to the selection, Esc closes the inspector
        # and returns the focus to the device in the list.
        browser.call("fill", selector="#search", text="")
        browser.eval("() => document.activeElement.blur()")
        browser.wait("() => !twinview.cameraState().moving", timeout=30)
        near = browser.eval("() => twinview.cameraState()")
        browser.key("Home")
        browser.wait("(y) => !twinview.cameraState().moving && twinview.cameraState().position[1] > y * 1.5", near["position"][1], timeout=30)
        browser.key("f")
        browser.wait("(t) => !twinview.cameraState().moving && twinview.cameraState().target.every((v, i) => Math.abs(v - t[i]) < 1e-3)",
                     near["target"], timeout=30)
        browser.key("Escape")
        browser.wait("() => twinview.selectedDevice === null && document.getElementById('panel').hidden")
        assert browser.focused()["device"] == "P-101"
        # New alarms and the plant's state are announced to screen readers.
        assert any("alarm" in a.lower() for a in browser.eval("() => twinview.announcements")), browser.eval("() => twinview.announcements")
        browser.screenshot(tmp_path / "keyboard.png")
