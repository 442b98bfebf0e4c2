"""Alarms in the desktop app and the scene: the list filters, sorts, acknowledges and shelves (roles checked),
a click flies to the device; the device is painted by severity; a zoomed-out area shows its badge."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sitegen import dominant_channel, grid_site, top_down

from twinview.connectors.base import Sample
from twinview.security.auth import Principal
from twinview.site import open_site

pytestmark = pytest.mark.gpu

ALARMS = """
[[types.box.alarms]]
point = "temp"
kind = "high"
limit = 80
deadband = 2
severity = "critical"
message = "{device} hot: {value:.0f} degC"

[[types.box.alarms]]
point = "temp"
kind = "low"
limit = 10
severity = "low"
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rendercanvas.offscreen import RenderCanvas

    from twinview.app.desktop import DesktopApp
    from twinview.scene.binding import SceneBinding
    from twinview.scene.view import SiteView
    from twinview.twin.runtime import Runtime

    root = grid_site(tmp_path_factory.mktemp("grid"))
    text = (root / "site.toml").read_text()
    head, _, devices = text.partition("[[devices]]")
    (root / "site.toml").write_text(head + ALARMS + "\n[[devices]]" + devices)
    loaded = open_site(root)
    view = SiteView(loaded)
    live = Runtime(loaded.site)
    live.enable_alarms(None, tmp_path_factory.mktemp("audit") / "audit.jsonl")
    live.principal = Principal("olga", "operator")
    SceneBinding(live, view)
    canvas = RenderCanvas(size=(1400, 900), pixel_ratio=1)
    app = DesktopApp(view, canvas, live)
    top_down(view)
    canvas.draw()
    return app


def pixel_of(app, index: int, image: np.ndarray) -> np.ndarray:
    aim = app.view.geometry.device_centers[index].copy()
    aim[1] = 1.0
    x, y = app.view.project(aim[None], tuple(app.canvas.get_logical_size()))[0]
    return image[int(y), int(x)]


def test_the_alarm_list_acks_shelves_and_flies_to_the_device(app):
    live, panel = app.live, app.alarm_panel
    now = time.time()
    for i, (device, value) in enumerate((("B-0-0", 95.0), ("B-1-1", 5.0), ("B-2-2", 90.0))):
        live.submit(Sample(device, "temp", value, now, now))
    app.canvas.draw()
    rows = panel.rows()
    assert [r["id"] for r in rows][:1] and {r["id"] for r in rows} == {"B-0-0/temp.high", "B-1-1/temp.low", "B-2-2/temp.high"}
    assert next(r for r in rows if r["id"] == "B-0-0/temp.high")["message"] == "B-0-0 hot: 95 degC"
    panel.filter.severities = {"critical"}
    assert {r["id"] for r in panel.rows()} == {"B-0-0/temp.high", "B-2-2/temp.high"}
    panel.filter.area = "Row 2"
    assert [r["id"] for r in panel.rows()] == ["B-2-2/temp.high"]
    panel.filter.area, panel.filter.severities = "", {"critical", "high", "medium", "low"}
    panel.filter.sort, panel.filter.descending = "device", False
    assert [r["device"] for r in panel.rows()] == ["B-0-0", "B-1-1", "B-2-2"]

    panel.go_to(rows[0] if rows[0]["device"] == "B-2-2" else next(r for r in rows if r["device"] == "B-2-2"))
    assert app.view.selected == app.view.index_of("B-2-2")
    center = app.view.geometry.device_centers[app.view.selected]
    assert np.linalg.norm(np.asarray(app.view.camera.world.position) - center) < 10  # flew close to it

    live.principal = Principal("vic", "viewer")
    assert not panel.acknowledge("B-2-2/temp.high") and "operator" in panel.message
    live.principal = Principal("olga", "operator")
    assert panel.acknowledge("B-2-2/temp.high")
    assert panel.shelve("B-1-1/temp.low", 3600, "calibration")
    frames = panel.frames
    app.canvas.draw()  # the list, the inspector's alarm section and history draw without error
    assert panel.frames == frames + 1
    states = {r["id"]: r["state"] for r in panel.rows()}
    assert states == {"B-0-0/temp.high": "unacknowledged", "B-1-1/temp.low": "shelved", "B-2-2/temp.high": "acknowledged"}
    assert panel.acknowledge_all(panel.rows()) == 1


def test_alarmed_devices_are_painted_by_severity_and_areas_get_badges(app):
    from twinview.scene.offscreen import OffscreenView

    live = app.live
    now = time.time()
    live.submit(Sample("B-0-1", "temp", 99.0, now, now))
    live.submit(Sample("B-0-2", "temp", 50.0, now, now))
    live.step()
    engine = live.alarms
    assert engine.acknowledge("B-0-1/temp.high", live.principal)[0]  # steady, not blinking: a stable pixel
    live.step()
    app.view.select(None)
    top_down(app.view, height=40.0)  # zoomed out
    off = OffscreenView(app.view, (640, 480))
    image = np.asarray(off.render())
    assert dominant_channel(pixel_of_view(app, off, "B-0-1", image)) == 0  # red: critical
    badges = app.view.badges.shown()
    assert badges["Row 0"] == "Row 0: 2 alarms"  # B-0-0 and B-0-1 active (B-0-2 is normal)
    counts = app.view.badges.counts
    app.view.badges.set_counts({})
    without = np.asarray(off.render()).astype(int)
    app.view.badges.set_counts(counts)
    assert (np.abs(image.astype(int) - without).sum(axis=2) > 60).sum() > 200  # the badge is drawn
    top_down(app.view, height=3.0)  # zoomed in: no badges
    app.view.before_render((640, 480))
    assert app.view.badges.shown() == {}


def pixel_of_view(app, off, device, image):
    index = app.view.index_of(device)
    aim = app.view.geometry.device_centers[index].copy()
    aim[1] = 1.0
    h, w = image.shape[:2]
    x, y = app.view.project(aim[None], (w, h))[0]
    return image[int(y), int(x)]
