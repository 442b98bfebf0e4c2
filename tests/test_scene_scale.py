"""The real sites: the demo plant and a 20,000-device synthetic site, rendered and picked on a real wgpu device."""

from __future__ import annotations

import colorsys

import numpy as np
import pygfx as gfx
import pytest

from twinview.site import open_site

pytestmark = pytest.mark.gpu

SIZE = (960, 720)


def distinct_colours(n: int) -> np.ndarray:
    """n saturated colours with well separated hues (golden-ratio steps)."""
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    return np.array([(*colorsys.hsv_to_rgb(h, 1.0, 1.0), 1.0) for h in hues], np.float32)


def hue_of(rgb) -> float:
    r, g, b = (float(v) / 255 for v in rgb[:3])
    return colorsys.rgb_to_hsv(r, g, b)[0]


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def paint_and_check(view, off, indices: np.ndarray, min_visible: float) -> None:
    """Paint `indices` in distinct colours; where a device's centre is not hidden by
    another object, the pixel there has that device's hue and picking returns it."""
    colours = distinct_colours(len(indices))
    view.set_looks(indices, colours, np.zeros(len(indices)))
    image = off.render()
    centres = view.project(view.geometry.device_centers[indices], off.size)
    visible = 0
    for k, (i, (x, y)) in enumerate(zip(indices, centres)):
        if not (0 <= x < off.size[0] and 0 <= y < off.size[1]):
            continue
        if off.pick(x, y) != i:
            continue  # something else is in front of this device's centre
        visible += 1
        px = image[int(y), int(x)]
        expected = colorsys.rgb_to_hsv(*colours[k, :3])[0]
        assert hue_distance(hue_of(px), expected) < 0.06, f"device {view.device_ids[i]} shows {px[:3]}"
    assert visible >= min_visible * len(indices), f"only {visible} of {len(indices)} devices visible"


def test_demo_plant_devices_show_their_colour_and_pick_back():
    from twinview.cli import demo_site_path
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(open_site(demo_site_path()))
    off = OffscreenView(view, SIZE)
    n = len(view.device_ids)
    paint_and_check(view, off, np.arange(n), min_visible=0.5)


@pytest.fixture(scope="module")
def big_site(tmp_path_factory):
    from twinview.site.synthetic import generate_site

    return open_site(generate_site(tmp_path_factory.mktemp("big"), 20_000, seed=3))


@pytest.mark.slow
def test_twenty_thousand_devices_render_and_pick_from_above(big_site):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(big_site)
    assert len(view.device_ids) == 20_000
    # Straight down through an orthographic camera: every device's top is visible.
    lo, hi = view.geometry.bounds
    camera = gfx.OrthographicCamera(float(hi[0] - lo[0]) * 1.02, float(hi[2] - lo[2]) * 1.02)
    camera.local.position = ((lo[0] + hi[0]) / 2, hi[1] + 50, (lo[2] + hi[2]) / 2)
    camera.look_at(((lo[0] + hi[0]) / 2, 0, (lo[2] + hi[2]) / 2))
    camera.depth_range = (1, float(hi[1] - lo[1]) + 100)
    view.camera = camera
    off = OffscreenView(view, (1600, 1600))
    rng = np.random.default_rng(7)
    sample = rng.choice(20_000, size=60, replace=False)
    # aim at each device's top face centre
    tops = view.geometry.device_centers[sample].copy()
    tops[:, 1] = view.geometry.device_bounds[sample, 1, 1]
    view.set_looks(sample, distinct_colours(len(sample)), np.zeros(len(sample)))
    image = off.render()
    xy = view.project(tops, off.size)
    picked = [off.pick(x, y) for x, y in xy]
    assert picked == list(sample)
    for k, (x, y) in enumerate(xy):
        expected = colorsys.rgb_to_hsv(*distinct_colours(len(sample))[k, :3])[0]
        assert hue_distance(hue_of(image[int(y), int(x)]), expected) < 0.06
