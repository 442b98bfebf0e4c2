"""Issue 14, trend it: the inspector's chart of a point's history, with ranges, and ages always shown.

Before this work the browser had no history at all and a value's age only in a tooltip.
The history comes from the twin's in-memory history (the page asks the server for it).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page, wait_for  # noqa: E402

from twinview.connectors.base import Sample  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


def test_trend_chart_with_ranges_from_the_twins_history(tmp_path):
    from PIL import Image

    rig = DemoRig(tmp_path, values=False, period=60)  # 60 s periods: the twin keeps a sample a minute or so
    try:
        now = time.time()
        # P-103's speed over the last four minutes (oldest first), then the rest of the plant.
        for ago, rpm in ((290, 900.0), (230, 1200.0), (170, 1500.0), (110, 1650.0), (50, 2100.0)):
            rig.live.submit(Sample("P-103", "speed", rpm, now - ago, now - ago))
            # one at a time: samples of one point applied in the same step keep only the newest
            assert wait_for(lambda: rig.live.state.point("P-103", "speed").value == rpm, 10)
        assert wait_for(lambda: len(rig.live.state.history("P-103", "speed")[0]) == 5, 10)
        from rig import demo_values

        demo_values(rig.live, now=now - 10)
        rig.live.submit(Sample("P-103", "speed", 2400.0, now - 5))
        with Browser(width=1280, height=720) as browser:
            open_page(browser, rig)
            browser.eval("() => twinview.select('P-103')")
            t = browser.wait("() => { const t = twinview.trend(); return t && t.loaded && t.point === 'speed' && t; }", timeout=20)
            assert t["range"] == 300 and t["samples"] >= 6, t  # the five-minute view holds the history
            assert t["drawn"]["lo"] < 900 and t["drawn"]["hi"] > 2400, t
            label = browser.eval("() => document.querySelector('#panel-trend canvas').getAttribute('aria-label')")
            assert "Speed (rpm), last 5 min" in label and "from 900 to 2400" in label, label

            browser.call("click", selector="#panel-trend button[data-range='60']")
            t = browser.wait("() => twinview.trend().range === 60 && twinview.trend()")
            assert 2 <= t["samples"] <= 3, t  # only the last minute
            assert "last 1 min" in browser.eval("() => document.querySelector('#panel-trend canvas').getAttribute('aria-label')")
            assert browser.eval("() => document.querySelector('#panel-trend button[data-range=\"60\"]').getAttribute('aria-pressed')") == "true"

            # The chart's line is drawn (blue pixels inside the canvas).
            box = browser.eval("() => { const r = document.querySelector('#panel-trend canvas').getBoundingClientRect();"
                               " return { x: r.left, y: r.top, w: r.width, h: r.height }; }")
            browser.call("click", selector="#panel-trend button[data-range='600']")
            browser.wait("() => twinview.trend().range === 600")
            image = np.asarray(Image.open(browser.screenshot(tmp_path / "trend.png")).convert("RGB")).astype(int)
            crop = image[int(box["y"]):int(box["y"] + box["h"]), int(box["x"]):int(box["x"] + box["w"])]
            blue = (crop[..., 2] > 150) & (crop[..., 0] < 90) & (crop[..., 1] < 140)
            assert blue.sum() > 60, f"the trend line is not drawn ({blue.sum()} blue pixels)"

            # Every value shows its age, without hovering.
            ages = browser.eval("() => [...document.querySelectorAll('#panel-points .age')].map(e => e.textContent)")
            assert ages and all(re.fullmatch(r"\d+ (s|min) ago", a) for a in ages), ages
            # Without a history store the server says that it keeps only ten minutes.
            browser.call("click", selector="#panel-trend button[data-range='3600']")
            t = browser.wait("() => { const t = twinview.trend(); return t.range === 3600 && t.drawn.source && t; }", timeout=20)
            assert t["drawn"]["source"] == "memory" and t["drawn"]["short"], t
            browser.call("click", selector="#panel-trend button[data-range='300']")

            # A live value extends the chart.
            n = browser.eval("() => twinview.trend().samples")
            rig.live.submit(Sample("P-103", "speed", 2500.0, time.time()))
            browser.wait("(n) => twinview.trend().samples > n", n)
    finally:
        rig.close()


def test_long_ranges_come_from_the_history_store(tmp_path):
    from twinview.history import open_store
    from twinview.twin.memory import StoreRecorder

    rig = DemoRig(tmp_path, values=False, period=60)
    store = open_store(tmp_path / "store", rig.loaded.site.name)
    try:
        rig.live.recorder = StoreRecorder(rig.live, store)  # as `twinview serve` records by default
        now = time.time()
        for ago, rpm in ((20000, 300.0), (5000, 600.0), (3000, 900.0), (1200, 1200.0), (100, 1500.0)):
            rig.live.submit(Sample("P-103", "speed", rpm, now - ago, now - ago))
            assert wait_for(lambda: rig.live.state.point("P-103", "speed").value == rpm, 10)
        with Browser(width=1280, height=720) as browser:
            browser.goto(rig.url)
            browser.wait("() => twinview.live", timeout=40)
            browser.eval("() => twinview.select('P-103')")
            browser.wait("() => { const t = twinview.trend(); return t && t.loaded; }", timeout=20)
            browser.call("click", selector="#panel-trend button[data-range='86400']")
            t = browser.wait("() => { const t = twinview.trend(); return t.range === 86400 && t.drawn.source === 'store' && t; }", timeout=20)
            # the good samples back to 5000 s ago (the store's quality changes, and the first value, which the
            # twin took as stale, are not drawn as values)
            assert t["samples"] >= 4 and t["drawn"]["lo"] < 600 and t["drawn"]["hi"] > 1500, t
            browser.call("click", selector="#panel-trend button[data-range='3600']")
            t = browser.wait("() => { const t = twinview.trend(); return t.range === 3600 && t.drawn.source === 'store' && t; }", timeout=20)
            assert t["samples"] == 3, t  # 3000, 1200 and 100 s ago (the one before the hour only starts the line)
            label = browser.eval("() => document.querySelector('#panel-trend canvas').getAttribute('aria-label')")
            assert "last 1 h" in label, label
            browser.screenshot(tmp_path / "trend-store.png")
    finally:
        rig.close()
        store.close()
