"""Issue 14, trust: the page never shows "good" while it cannot know.

Before this work, 26 s after the server stopped the panel still said "good", colours
and motion were unchanged and the only sign was a small pill. Here the server is
stopped for real (its port closed) and started again on the same port.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page  # noqa: E402

from twinview.connectors.base import LinkState  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

QUALITIES = "() => [...document.querySelectorAll('#panel-points .q:not(.q-alarm)')].map(e => e.textContent)"


def test_losing_the_server_turns_everything_stale_within_two_seconds_and_names_the_gap(tmp_path):
    rig = DemoRig(tmp_path)
    try:
        with Browser(width=1280, height=720) as browser:
            open_page(browser, rig)
            browser.eval("() => twinview.select('P-103')")
            browser.wait(f"() => ({QUALITIES})().length === 4 && ({QUALITIES})().every(q => q === 'good')")
            assert browser.eval("() => twinview.counts.stale") == 0
            live_colour = browser.eval("() => twinview.deviceColor('P-103').color")
            assert browser.eval("() => document.getElementById('banner').hidden")

            # A data source of the server going down is named in the bar (and announced).
            rig.live.submit(LinkState("mqtt", "down", "broker lost", time.time()))
            pill = browser.wait("() => !document.getElementById('links').hidden && document.getElementById('links').textContent", timeout=15)
            assert re.fullmatch(r"mqtt down since \d\d:\d\d:\d\d", pill), pill
            assert any(a.startswith("Data source mqtt is down (broker lost)") for a in browser.eval("() => twinview.announcements"))
            rig.live.submit(LinkState("mqtt", "up", "", time.time()))
            browser.wait("() => document.getElementById('links').hidden", timeout=15)

            rig.stop_server()
            stopped = time.monotonic()
            browser.wait(
                f"() => !twinview.live && !document.getElementById('banner').hidden && ({QUALITIES})().every(q => q === 'stale')"
                " && twinview.counts.stale === twinview.devices.length",
                timeout=10,
            )
            took = time.monotonic() - stopped
            assert took < 2.0, f"the page took {took:.1f} s to say its values are stale"

            banner = browser.text("#banner")
            assert re.search(r"Connection to the server lost at \d\d:\d\d:\d\d: values are frozen since then", banner), banner
            panel = browser.text("#panel")
            assert "good" not in panel and "no connection to the server" in panel.lower(), panel
            # The scene greys the colour, labels say stale, parts stop, commands are disabled with the reason.
            assert browser.eval("() => twinview.deviceColor('P-103').color") != live_colour
            assert browser.eval("() => twinview.labelText('P-103')") == "P-103 1800 rpm (stale)"
            assert browser.eval("() => [...document.querySelectorAll('#panel-commands button')].filter(b => !b.hidden).every(b => b.disabled)")
            assert "No connection to the server" in browser.text("#panel-why")
            browser.screenshot(tmp_path / "lost.png")

            time.sleep(0.5)  # the gap must be measurable in whole seconds
            rig.restart()
            browser.wait("() => twinview.live && document.getElementById('banner').className === 'back'", timeout=15)
            back = browser.text("#banner")
            assert re.search(r"restored at \d\d:\d\d:\d\d after \d+ s \(no values from \d\d:\d\d:\d\d to \d\d:\d\d:\d\d\)", back), back
            browser.wait(f"() => ({QUALITIES})().every(q => q === 'good') && twinview.counts.stale === 0")
            browser.screenshot(tmp_path / "back.png")
    finally:
        rig.close()


def test_a_server_that_stops_answering_is_noticed_without_a_close(tmp_path):
    """A hung server (its event loop blocked: no close frame, no TCP reset) is caught by the heartbeat."""
    rig = DemoRig(tmp_path)
    try:
        with Browser(width=1024, height=700) as browser:
            open_page(browser, rig)
            browser.eval("() => twinview.select('P-103')")
            browser.wait(f"() => ({QUALITIES})().length === 4 && ({QUALITIES})().every(q => q === 'good')")
            loop = rig.server.bridge._loop
            loop.call_soon_threadsafe(time.sleep, 8.0)  # the server hangs for 8 s
            hung = time.monotonic()
            browser.wait(f"() => !twinview.live && ({QUALITIES})().every(q => q === 'stale')", timeout=10)
            took = time.monotonic() - hung
            assert took < 5.0, f"a hung server was noticed after {took:.1f} s"
            assert "the server stopped answering" in browser.text("#status")
            assert "values are frozen since then" in browser.text("#banner")
            browser.wait("() => twinview.live && document.getElementById('banner').className === 'back'", timeout=30)
    finally:
        rig.close()
