"""Issue 14, tablet: portrait and landscape layouts, the whole site in view at start, 44 px touch targets.

Before this work, in portrait the intake area started off-screen (P-101 at x = -53 px),
the panel took 35% of a landscape screen and touch targets were 28 px tall.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

TARGETS = """() => [...document.querySelectorAll('button, input, select')]
  .filter(e => e.offsetParent !== null && !e.closest('.sr-only'))
  .map(e => { const r = e.getBoundingClientRect(); return { what: e.id || e.textContent.trim().slice(0, 20) || e.tagName, w: r.width, h: r.height }; })"""


def inside(xy: dict, rect: dict) -> bool:
    return rect["left"] <= xy["x"] <= rect["right"] and rect["top"] <= xy["y"] <= rect["bottom"]


@pytest.fixture
def rig(tmp_path):
    r = DemoRig(tmp_path)
    yield r
    r.close()


def test_portrait_tablet_shows_the_whole_site_and_a_tap_selects_p101(rig, tmp_path):
    with Browser(width=768, height=1024, touch=True) as browser:
        open_page(browser, rig)
        view = browser.eval("() => twinview.viewRect()")
        off = [d for d in browser.eval("() => twinview.devices")
               if not inside(browser.eval("(id) => twinview.centrePosition(id)", d), view)]
        assert off == [], f"devices outside the view at start: {off}"
        assert browser.eval("() => document.getElementById('devices').hidden")  # the list is a drawer here

        small = [t for t in browser.eval(TARGETS) if t["h"] < 44 or t["w"] < 44]
        assert small == [], small

        at = browser.eval("(id) => twinview.centrePosition(id)", "P-101")
        browser.call("tap", x=at["x"], y=at["y"])
        browser.wait("() => twinview.selectedDevice === 'P-101'", timeout=30)
        # The inspector is a bottom sheet: full width, under the view, at most about half the screen.
        sheet = browser.eval("() => { const r = document.getElementById('panel').getBoundingClientRect(); return { top: r.top, h: r.height, w: r.width }; }")
        assert sheet["w"] >= 760 and sheet["h"] <= 1024 * 0.5 and sheet["top"] > 400, sheet
        view = browser.eval("() => twinview.viewRect()")
        assert view["bottom"] <= sheet["top"] + 1
        small = [t for t in browser.eval(TARGETS) if t["h"] < 44]
        assert small == [], small
        # The devices drawer opens over the view and a choice closes it.
        browser.call("click", selector="#devices-toggle")
        browser.wait("() => !document.getElementById('devices').hidden")
        browser.call("click", selector="#device-tree button[data-device='P-302']")
        browser.wait("() => twinview.selectedDevice === 'P-302' && document.getElementById('devices').hidden")
        browser.screenshot(tmp_path / "portrait.png")


def test_landscape_tablet_keeps_most_of_the_screen_for_the_plant(rig, tmp_path):
    with Browser(width=1024, height=768, touch=True) as browser:
        open_page(browser, rig)
        browser.eval("() => twinview.select('P-101')")
        browser.wait("() => !document.getElementById('panel').hidden")
        panel = browser.eval("() => document.getElementById('panel').getBoundingClientRect().width")
        assert panel <= 1024 * 0.3, panel
        small = [t for t in browser.eval(TARGETS) if t["h"] < 44]
        assert small == [], small
        view = browser.eval("() => twinview.viewRect()")
        assert view["width"] >= 1024 * 0.45, view
        browser.screenshot(tmp_path / "landscape.png")
