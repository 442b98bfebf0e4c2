"""The GPU scene, rendered offscreen on a real wgpu device (lavapipe without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from sitegen import grid_site, top_down

from twinview.site import open_site

pytestmark = pytest.mark.gpu

SIZE = (320, 240)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    site = grid_site(tmp_path_factory.mktemp("grid"))
    view = SiteView(open_site(site))
    top_down(view)
    off = OffscreenView(view, SIZE)
    off.render()
    return view, off


@pytest.fixture(autouse=True)
def reset(grid):
    view, _ = grid
    n = len(view.device_ids)
    view.set_looks(np.arange(n), np.zeros((n, 4), np.float32), np.zeros(n))
    view.select(None)
    view.hover(None)
    yield


def centers(view, off):
    # Aim at each body's top face, beside the blade that crosses its middle.
    aim = view.geometry.device_centers.copy()
    aim[:, 1] = 1.0
    aim[:, 2] += 0.32
    return view.project(aim, off.size)


def pixel(image, xy):
    x, y = int(round(xy[0])), int(round(xy[1]))
    return image[y, x, :3].astype(int)


def test_each_device_shows_its_paint_colour(grid):
    view, off = grid
    palette = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]], np.float32)
    n = len(view.device_ids)
    colours = palette[np.arange(n) % 3]
    view.set_looks(np.arange(n), colours, np.zeros(n))
    image = off.render()
    for i, xy in enumerate(centers(view, off)):
        px = pixel(image, xy)
        channel = i % 3
        assert np.argmax(px) == channel, f"device {view.device_ids[i]} at {xy} shows {px}, expected channel {channel}"
        assert px[channel] - np.delete(px, channel).max() > 60


def test_unpainted_devices_keep_their_model_colour(grid):
    view, off = grid
    image = off.render()
    for xy in centers(view, off):
        r, g, b = pixel(image, xy)
        assert max(r, g, b) - min(r, g, b) < 25, "model colour is a neutral grey"


def test_selected_device_is_highlighted_and_others_are_not(grid):
    view, off = grid
    before = off.render().astype(int)
    view.select(4)
    after = off.render().astype(int)
    xy = centers(view, off)
    assert np.abs(pixel(after, xy[4]) - pixel(before, xy[4])).sum() > 80
    for i in (0, 2, 6, 8):
        assert np.abs(pixel(after, xy[i]) - pixel(before, xy[i])).sum() < 6
    # the accent is amber: red and green well above blue
    r, g, b = pixel(after, xy[4])
    assert r > b + 40 and g > b + 20


def test_pick_at_each_device_returns_that_device(grid):
    view, off = grid
    off.render()
    for i, xy in enumerate(centers(view, off)):
        assert off.pick(*xy) == i
    assert off.pick(2, 2) is None  # background


def test_stale_device_is_hatched_not_flat(grid):
    from twinview.twin.vocabulary import DeviceFlag

    FLAG_STALE = int(DeviceFlag.STALE)

    view, off = grid
    view.set_look(0, (0.1, 0.8, 0.1, 1.0), 0)
    view.set_look(1, (0.1, 0.8, 0.1, 1.0), FLAG_STALE)
    image = off.render().astype(float)
    xy = centers(view, off)

    def patch(i):
        x, y = (int(round(v)) for v in xy[i])
        return image[y - 3 : y + 4, x - 3 : x + 4, :3]

    good, stale = patch(0), patch(1)
    assert good[..., 1].mean() > good[..., 0].mean() + 60, "a good value shows its colour"
    assert abs(stale[..., 1].mean() - stale[..., 0].mean()) < 40, "a stale value is greyed"
    assert stale.std(axis=(0, 1)).mean() > 2 * good.std(axis=(0, 1)).mean() + 5, "a stale value is hatched"


def test_rotation_moves_the_blade_on_the_gpu(grid):
    view, off = grid
    centre = view.project(view.geometry.device_centers[4:5], off.size)[0]
    tip = view.project(view.geometry.device_centers[4:5] + np.array([[1.05, 0.6, 0.0]]), off.size)[0]
    start = np.r_[0, np.cumsum([len(d.motions) for d in view.site.devices])]  # the twin's motion entries
    view.bind_motions(start)
    blade = np.asarray([start[4]])
    view.set_motion_targets(blade, np.asarray([0.0]), now=0.0)
    view.advance_clock(0.0)
    at_rest = pixel(off.render(), tip)
    view.set_motion_targets(blade, np.asarray([1.0]), now=0.0)  # one revolution per second
    view.advance_clock(0.25)  # a quarter turn later the blade points along z
    turned = pixel(off.render(), tip)
    view.set_motion_targets(blade, np.asarray([0.0]), now=0.25)
    assert view.animating is False
    assert at_rest.max() < 90, f"blade tip is dark at rest, got {at_rest}"
    assert turned.min() > 90, f"after a quarter turn the floor shows at the old tip, got {turned}"
    assert np.isfinite(centre).all()
