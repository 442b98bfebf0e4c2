"""Issue 14, headset (IWER emulating a Quest 3): the site at a usable scale, aiming at P-101's
centre selects P-101, speed commands start at the current value and ask to confirm, and
leaving VR restores the desktop camera.

Before this work the plant was a thin strip about 46 m away, aiming at P-101's centre
selected P-102, the only speed command was "Set speed (0)" without confirmation, and
leaving VR left the camera at ground level inside the plant.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]


def aim_and_select(browser: Browser, target: dict) -> None:
    n = browser.eval("() => twinview.xr.selects")
    browser.xr("look_at", device="controller-right", target=target)
    browser.xr("select", device="controller-right", duration=1)
    browser.wait("(n) => twinview.xr.selects > n", n, timeout=30)


def test_headset_scale_picking_commands_and_exit(tmp_path):
    rig = DemoRig(tmp_path)
    try:
        with Browser(iwer=True, width=1024, height=700) as browser:
            open_page(browser, rig)
            browser.wait("() => twinview.xr.supported.vr")
            browser.eval("(t) => twinview.login(t)", rig.tokens["olga"])
            browser.wait("() => twinview.role === 'operator' && twinview.live")
            desktop = browser.eval("() => twinview.cameraState()")

            browser.call("click", selector="#enter-vr")
            browser.wait("() => twinview.xr.presenting && twinview.frames > 2", timeout=30)
            # The plant is a model within reach, not a strip 46 m away.
            p101 = browser.eval("(id) => twinview.worldPosition(id)", "P-101")
            far = max(math.hypot(w["x"], w["z"]) for w in (browser.eval("(id) => twinview.worldPosition(id)", d)
                                                              for d in ("P-101", "P-302", "T-201", "AHU-401")))
            assert far < 4.0 and 0.5 < p101["y"] < 1.6, (far, p101)

            aim_and_select(browser, p101)
            browser.wait("() => twinview.panel().visible", timeout=20)
            assert browser.eval("() => twinview.xr.lastPick") == "P-101"
            assert browser.eval("() => twinview.selectedDevice") == "P-101"

            # Speed commands start at the reported value (0 rpm for the faulted P-101, not a default)
            # and step by a tenth of the range; each asks to confirm.
            buttons = browser.eval("() => twinview.panel().buttons")
            assert "Set speed (0)" in buttons and any(b.startswith("Set speed + → 300") for b in buttons), buttons
            n = browser.eval("() => twinview.results.length")
            target = browser.eval("(l) => twinview.panelButtonPosition(l)", "Set speed +")
            aim_and_select(browser, target)
            confirming = browser.wait("() => twinview.panel().confirming")
            assert confirming.startswith("Set speed + → 300"), confirming
            assert browser.eval("() => twinview.results.length") == n  # nothing sent before Confirm

            # Squeeze (grip) switches to life size, with P-101 (selected) in front; again: back to the model.
            for mode, scale in (("life", 1.0), ("model", None)):
                f = browser.eval("() => twinview.frames")
                browser.xr("set_gamepad_state", device="controller-right", buttons=[{"index": 1, "value": 1}])
                browser.wait("(f) => twinview.frames > f + 1", f, timeout=20)
                browser.xr("set_gamepad_state", device="controller-right", buttons=[{"index": 1, "value": 0}])
                browser.wait("(m) => twinview.xr.scaleMode === m", mode, timeout=20)
                if scale:
                    assert browser.eval("() => twinview.xr.scale") == scale
                    w = browser.eval("(id) => twinview.worldPosition(id)", "P-101")
                    assert abs(w["x"]) < 0.5 and -4 < w["z"] < -2, w
            model = browser.eval("() => twinview.xr.scale")
            assert model < 0.2
            # The thumbstick scales the model up (pushed forward) about the point in front of the user.
            browser.xr("set_gamepad_state", device="controller-right", axes=[{"index": 1, "value": -1}])
            browser.wait("(s) => twinview.xr.scale > s * 1.5", model, timeout=30)
            browser.xr("set_gamepad_state", device="controller-right", axes=[{"index": 1, "value": 0}])

            browser.eval("() => twinview.exitXR()")
            browser.wait("() => !twinview.xr.presenting && twinview.xr.restored", timeout=20)
            restored = browser.eval("() => twinview.cameraState()")
            for a, b in zip(restored["position"] + restored["target"], desktop["position"] + desktop["target"]):
                assert abs(a - b) < 1e-6, (restored, desktop)
            browser.wait("() => !document.getElementById('panel').hidden")  # the selection is inspected on the page again
            browser.screenshot(tmp_path / "after-vr.png")
    finally:
        rig.close()
