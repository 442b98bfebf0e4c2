"""Labels that must yield never do so silently, and the one that says a device is in trouble stays.

A 17-device site of labelled boxes, packed so that at 800x450 with the default camera
some labels overlap: the view hides some, says how many in the picture's corner, and
an offline device's label is shown whatever its distance.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sitegen import grid_site

from twinview.site import open_site
from twinview.twin.samples import Availability, Sample
from twinview.twin.vocabulary import DeviceFlag

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def site17(tmp_path_factory):
    root = grid_site(tmp_path_factory.mktemp("s17"), rows=3, cols=6, spacing=1.7)
    manifest = root / "site.toml"
    text = manifest.read_text()
    manifest.write_text(text[: text.rindex("[[devices]]")])  # 17 devices; the 18th box is scenery
    return open_site(root)


def live_view(loaded, size):
    from twinview.scene.binding import SceneBinding
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView
    from twinview.twin.runtime import Runtime

    runtime = Runtime(loaded.site)
    view = SiteView(loaded)
    off = OffscreenView(view, size)
    view.fit()
    SceneBinding(runtime, view)
    now = time.time()
    for d in loaded.site.devices:
        runtime.submit(Sample(d.id, "temp", 42.0, now))
    runtime.step(now)
    return runtime, view, off


def counter_pixels(image: np.ndarray) -> int:
    """Dark text pixels in the bottom-right corner, where the count of hidden labels is drawn."""
    h, w = image.shape[:2]
    corner = image[h - 40 :, w - 320 :, :3].astype(int)
    return int((corner.sum(axis=2) < 200).sum())


def test_offline_label_is_never_the_one_dropped_and_hidden_labels_are_counted(site17, tmp_path):
    assert len(site17.site.devices) == 17
    runtime, view, off = live_view(site17, (800, 450))
    image = off.render()
    labels = view.labels
    shown = set(labels.slot_of)
    hidden = sorted(set(labels.labelled.tolist()) - shown)
    assert hidden, "the test needs a site whose labels do not all fit"
    assert labels.hidden == len(hidden)
    assert labels.counter_text == f"{len(hidden)} label{'s' if len(hidden) != 1 else ''} hidden"
    assert counter_pixels(image) > 30, "the count is drawn in the picture"

    victim = hidden[-1]
    device = site17.site.devices[victim]
    runtime.submit(Availability(device.id, False, time.time()))
    runtime.step()
    assert runtime.looks.flags[victim] & DeviceFlag.OFFLINE
    image = off.render()
    from PIL import Image

    Image.fromarray(image[:, :, :3]).save(tmp_path / "labels-800.png")
    assert victim in labels.slot_of, f"{device.id} is offline: its label must show"
    assert labels.texts[victim].endswith("(offline)")
    assert labels.hidden >= 1 and labels.counter_text.startswith(f"{labels.hidden} label")
    assert "offline" not in labels.counter_text


def test_worst_condition_wins_among_overlapping_labels(site17):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(site17)
    off = OffscreenView(view, (320, 180))  # so small that most labels overlap
    view.fit()
    labels = view.labels
    for i in labels.labelled.tolist():
        labels.set_text(i, "a long label text")
    off.render()
    shown = set(labels.slot_of)
    hidden = sorted(set(labels.labelled.tolist()) - shown)
    assert len(hidden) >= 4
    bad, alarm, stale = hidden[:3]
    labels.set_rank([bad, alarm, stale], [3, 2, 1])
    off.render()
    assert bad in labels.slot_of
    assert "bad" not in labels.counter_text
    if alarm not in labels.slot_of:
        assert labels.counter_text.endswith("hidden (1 in alarm)"), labels.counter_text
    assert "stale" not in labels.counter_text, "stale is common: the count names only offline, bad and alarm"
    # The selected device always shows, even over a bad one.
    view.select(hidden[3])
    off.render()
    assert hidden[3] in labels.slot_of


def test_a_site_whose_labels_all_fit_shows_no_count(site17):
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(site17)
    off = OffscreenView(view, (1280, 720))
    view.focus(0)  # close to one device: its label and a few others, none overlapping
    for i in view.labels.labelled.tolist():
        view.labels.set_text(i, "7")
    off.render()
    assert view.labels.slot_of and view.labels.hidden == 0
    assert view.labels.counter_text == ""


def test_the_desktop_shows_the_count_clear_of_its_panels(site17, tmp_path):
    from rendercanvas.offscreen import RenderCanvas

    from twinview.app.desktop import DesktopApp
    from twinview.scene.view import SiteView
    from twinview.twin.runtime import Runtime

    view = SiteView(site17)
    live = Runtime(site17.site)
    canvas = RenderCanvas(size=(1100, 620), pixel_ratio=1)
    app = DesktopApp(view, canvas, live)
    view.camera.aspect = 1100 / 620
    view.fit()
    for i in view.labels.labelled.tolist():
        view.labels.set_text(i, "a long label text")
    image = np.asarray(canvas.draw())
    from PIL import Image

    Image.fromarray(image[:, :, :3]).save(tmp_path / "desktop.png")
    assert view.labels.hidden > 0 and view.labels.counter_text.endswith("hidden")
    # Right of the device tree, below the toolbar: dark text on the light sky, no panel over it.
    region = image[84:104, 306:520, :3].astype(int)
    assert int((region.sum(axis=2) < 200).sum()) > 30, "the count of hidden labels shows in the desktop"


def test_the_first_frame_places_labels_with_its_own_projection(site17):
    """The camera learned the picture's size only while rendering, after the labels were chosen:
    a one-frame render (twinview render) showed the labels chosen for a square picture."""
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    view = SiteView(site17)
    off = OffscreenView(view, (800, 450))
    view.fit()
    for i in view.labels.labelled.tolist():
        view.labels.set_text(i, "21 degC (offline)")
    off.render()
    first = (dict(view.labels.slot_of), view.labels.hidden)
    view.labels.update_visible(view.camera, (800, 450), force=True)  # now with the rendered frame's projection
    assert (dict(view.labels.slot_of), view.labels.hidden) == first
