"""The desktop app on an offscreen canvas: clicks select devices, panels show live values,
and the demo plant closes the command loop through the embedded simulator."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from sitegen import grid_site, top_down

from twinview.connectors.base import Sample
from twinview.site import open_site

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rendercanvas.offscreen import RenderCanvas

    from twinview.app.desktop import DesktopApp
    from twinview.history import open_store
    from twinview.scene.view import SiteView
    from twinview.twin.memory import StoreRecorder
    from twinview.twin.runtime import Runtime

    loaded = open_site(grid_site(tmp_path_factory.mktemp("grid")))
    view = SiteView(loaded)
    live = Runtime(loaded.site)
    live.recorder = StoreRecorder(live, open_store(tmp_path_factory.mktemp("store"), loaded.site.name))
    canvas = RenderCanvas(size=(1400, 900), pixel_ratio=1)
    app = DesktopApp(view, canvas, live)
    top_down(view)
    canvas.draw()
    return app


def pointer(app, kind: str, x: float, y: float) -> None:
    app.renderer.convert_event(
        {"event_type": kind, "x": x, "y": y, "button": 1, "buttons": (1,) if kind == "pointer_down" else (),
         "modifiers": (), "ntouches": 0, "touches": {}, "time_stamp": time.perf_counter()}
    )


def screen_of(app, index: int) -> np.ndarray:
    aim = app.view.geometry.device_centers[index].copy()
    aim[1] = 1.0
    aim[2] += 0.32
    return app.view.project(aim[None], tuple(app.canvas.get_logical_size()))[0]


def test_click_on_a_device_selects_it_and_the_inspector_has_its_values(app):
    live = app.live
    live.submit(Sample("B-1-2", "temp", 73.2, time.time()))
    app.canvas.draw()  # the frame drains the inbox and applies it
    x, y = screen_of(app, 5)
    pointer(app, "pointer_down", x, y)
    pointer(app, "pointer_up", x, y)
    assert app.view.selected == 5
    assert app.view.site.devices[5].id == "B-1-2"
    state = live.point_state("B-1-2", "temp")
    assert state.value == 73.2 and state.quality.name == "GOOD"
    assert live.looks.label(5) == "73 degC"
    app.canvas.draw()  # inspector, history chart and panels draw for the selection without error


def test_click_on_empty_floor_clears_the_selection_and_escape_too(app):
    x, y = screen_of(app, 3)
    pointer(app, "pointer_down", x, y)
    pointer(app, "pointer_up", x, y)
    assert app.view.selected == 3
    floor = (app.view.geometry.device_centers[4] + app.view.geometry.device_centers[5]) / 2
    floor[1] = 0.0
    fx, fy = app.view.project(floor[None], tuple(app.canvas.get_logical_size()))[0]
    pointer(app, "pointer_down", fx, fy)
    pointer(app, "pointer_up", fx, fy)
    assert app.view.selected is None
    app.select(3)
    app.renderer.convert_event({"event_type": "key_down", "key": "Escape", "modifiers": (), "time_stamp": 0})
    assert app.view.selected is None


def test_a_drag_orbits_instead_of_selecting(app):
    app.select(None)
    x, y = screen_of(app, 4)
    before = np.array(app.view.camera.world.position)
    pointer(app, "pointer_down", x, y)
    app.renderer.convert_event({"event_type": "pointer_move", "x": x + 60, "y": y + 10, "button": 0, "buttons": (1,),
                                "modifiers": (), "ntouches": 0, "touches": {}, "time_stamp": time.perf_counter()})
    pointer(app, "pointer_up", x + 60, y + 10)
    assert app.view.selected is None
    for _ in range(3):  # the controller moves the camera as frames are drawn
        app.canvas.draw()
    assert np.linalg.norm(np.array(app.view.camera.world.position) - before) > 1e-3


def test_tree_and_scene_selection_stay_in_sync(app):
    app.tree.on_select(7)
    assert app.view.selected == 7
    assert app.tree.state.scroll_to_selected
    assert app.view.flags(7) & 1


@pytest.mark.slow
def test_demo_stop_pump_closes_the_loop_through_the_simulator(tmp_path):
    from twinview.cli.sources import runtime_from_args
    from twinview.cli import demo_site_path

    loaded = open_site(demo_site_path())
    args = SimpleNamespace(mqtt=None, replay=None, ws_ingest=None, no_sim=False, audit=str(tmp_path / "audit.jsonl"))
    live = runtime_from_args(loaded, args)
    try:
        live.start()
        deadline = time.monotonic() + 30
        running = None
        while time.monotonic() < deadline:  # wait for a pump that reports running
            live.step()
            running = next((d.id for d in loaded.site.devices if d.type == "pump"
                            and live.point_state(d.id, "state").value == "running"), None)
            if running:
                break
            time.sleep(0.05)
        assert running, "no pump reported running"
        cmd = live.request_command(running, "stop", {}, confirmed=True)
        while time.monotonic() < deadline and not cmd.final:
            live.step()
            time.sleep(0.05)
        assert cmd.state == "confirmed", (cmd.state, cmd.reason)
        assert live.point_state(running, "state").value == "stopped"
        audit = (tmp_path / "audit.jsonl").read_text()
        assert cmd.id in audit and '"confirmed"' in audit
        refused = live.commands.request(
            __import__("twinview.security.auth", fromlist=["Principal"]).Principal("visitor", "viewer"), running, "start", {}, False
        )
        assert refused.state == "refused"
    finally:
        live.stop()


def test_orbiting_after_focus_turns_around_the_focused_device(app):
    size = tuple(app.canvas.get_logical_size())
    app.select_and_focus(4)
    app.canvas.draw()
    centre = app.view.geometry.device_centers[4][None]
    before = app.view.project(centre, size)[0]
    assert np.allclose(before, np.array(size) / 2, atol=3), before
    x, y = size[0] / 2, size[1] / 2
    start = np.array(app.view.camera.world.position)
    pointer(app, "pointer_down", x, y)
    for step in range(1, 6):
        app.renderer.convert_event({"event_type": "pointer_move", "x": x + 30 * step, "y": y + 5 * step, "button": 0,
                                    "buttons": (1,), "modifiers": (), "ntouches": 0, "touches": {},
                                    "time_stamp": time.perf_counter()})
    pointer(app, "pointer_up", x + 150, y + 25)
    for _ in range(3):
        app.canvas.draw()
    after = app.view.project(centre, size)[0]
    assert np.linalg.norm(np.array(app.view.camera.world.position) - start) > 0.5, "the drag orbited the camera"
    assert np.allclose(after, np.array(size) / 2, atol=12), f"the focused device drifted to {after}"


def test_the_timeline_shows_the_past_and_says_so(app):
    """Scrub back: the scene shows the value of that moment, the sky turns amber, commands are disabled."""
    live = app.runtime
    i = live.device_index("B-2-0")
    live.submit(Sample("B-2-0", "temp", 10.0, time.time() - 30, time.time() - 30))
    app.canvas.draw()
    then = time.time() - 20
    live.submit(Sample("B-2-0", "temp", 90.0, time.time(), time.time()))
    app.canvas.draw()
    now_rgba = app.view.devices.data[i, 0].copy()
    app.timeline.go_to(then)
    app.canvas.draw()
    assert app.view.mode == "past" and app.live.mode == "past" and app.live.commands is None
    past_rgba = app.view.devices.data[i, 0].copy()
    assert past_rgba[0] < now_rgba[0] - 0.2  # 10 degC then is not the red of 90 degC now
    assert app.live.point_state("B-2-0", "temp").value == 10.0  # the inspector reads the past too
    shot = np.asarray(app.canvas.draw())
    x = int(app.canvas.get_logical_size()[0]) // 2
    r, g, b = shot[60, x, :3].astype(int)  # the banner under the toolbar: amber
    assert r > b + 80 and g > b + 40, (r, g, b)
    app.timeline.go_live()
    app.canvas.draw()
    assert app.view.mode == "live" and app.live.point_state("B-2-0", "temp").value == 90.0
    assert np.allclose(app.view.devices.data[i, 0], now_rgba)
