"""The twin remembers: a runtime recorded into the history store, and the whole scene as it was at a past instant."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sitegen import grid_site, top_down

from twinview.connectors.simulator.plant import Simulator
from twinview.history import open_store
from twinview.site import open_site
from twinview.twin.clock import ManualClock
from twinview.twin.memory import PastTwin, StoreRecorder
from twinview.twin.runtime import Runtime
from twinview.twin.samples import Availability, Sample

T0 = 1_790_000_000.0


def test_the_past_twin_equals_what_was_live_then(plant, tmp_path):
    clock = ManualClock(T0)
    live = Runtime(plant, clock)
    store = open_store(tmp_path / "store", plant.name)
    StoreRecorder(live, store)
    sim = Simulator(plant, seed=4, batched=True, fault_interval=20.0)
    seen = {}
    for k in range(1, 601):  # five simulated minutes, faults included
        now = clock.advance(0.5)
        for event in sim.step(now):
            live.submit(event, "simulator")
        live.step()
        if k in (100, 350, 600):
            seen[now] = (live.state.value.copy(), live.state.shown_quality().copy())
    store.flush()
    past = PastTwin(plant, store)
    for at, (values, qualities) in seen.items():
        past.seek(at)
        assert past.runtime.mode == "past"
        assert np.array_equal(past.runtime.state.shown_quality(), qualities), at
        known = ~np.isnan(values)
        assert np.allclose(past.runtime.state.value[known], values[known]), at
    assert (seen[max(seen)][1] != 0).any()  # the recording held some not-good moments to compare
    store.close()


def test_playback_moves_the_scene_forward(plant, tmp_path):
    clock = ManualClock(T0)
    live = Runtime(plant, clock)
    store = open_store(tmp_path / "store", plant.name)
    StoreRecorder(live, store)
    for k, level in enumerate((10.0, 20.0, 30.0)):
        live.submit(Sample("T-101", "level", level, T0 + 10 * k, T0 + 10 * k))
        live.step(T0 + 10 * k)
    live.submit(Availability("T-101", False, T0 + 35))
    live.step(T0 + 35)
    store.flush()
    past = PastTwin(plant, store)
    past.seek(T0 + 5)
    assert past.runtime.state.point("T-101", "level").value == 10.0
    past.advance(10.0)
    assert past.runtime.state.point("T-101", "level").value == 20.0
    past.advance(20.0)
    point = past.runtime.state.point("T-101", "level")
    assert point.value == 30.0 and point.quality.label == "offline"  # the device said it was gone at T0 + 35
    assert past.runtime.commands is None  # the past never reaches a device
    store.close()


@pytest.mark.gpu
def test_render_at_two_instants_shows_the_colours_of_those_instants(tmp_path):
    from twinview.scene.binding import SceneBinding
    from twinview.scene.offscreen import OffscreenView
    from twinview.scene.view import SiteView

    site_dir = grid_site(tmp_path / "grid")
    loaded = open_site(site_dir)
    clock = ManualClock(T0)
    live = Runtime(loaded.site, clock)
    store_dir = tmp_path / "store"
    store = open_store(store_dir, loaded.site.name)
    StoreRecorder(live, store)
    live.submit(Sample("B-1-1", "temp", 5.0, T0, T0))
    live.step(T0)
    live.submit(Sample("B-1-1", "temp", 95.0, T0 + 100, T0 + 100))
    live.step(T0 + 100)
    store.close()

    def pixel_at(at: float) -> np.ndarray:
        reader = open_store(store_dir, loaded.site.name, readonly=True)
        past = PastTwin(loaded.site, reader)
        view = SiteView(loaded)
        top_down(view)
        SceneBinding(past.runtime, view)
        past.seek(at)
        off = OffscreenView(view, (320, 240))
        x, y = view.project(view.geometry.device_centers[4:5] + np.array([[0.0, 0.9, 0.3]]), off.size)[0]
        rgb = off.render()[int(y), int(x), :3].astype(int)
        reader.close()
        return rgb

    cold, hot = pixel_at(T0 + 50), pixel_at(T0 + 150)
    assert hot[0] > cold[0] + 60, (cold, hot)  # 95 degC is red on the heat map, 5 degC is not

    out = subprocess.run([sys.executable, "-m", "twinview.cli", "render", str(site_dir), "--at", str(T0 + 150),
                          "--store", str(store_dir), "--out", str(tmp_path / "then.png"), "--size", "160x120"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-1500:]
    assert "as it was at" in out.stdout and (tmp_path / "then.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "twinview.cli", "render", str(site_dir), "--at", "yesterday-ish",
                          "--store", str(store_dir), "--out", str(tmp_path / "x.png")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "--at" in bad.stderr and "Traceback" not in bad.stderr


def test_events_are_found_before_and_after_a_moment(plant, tmp_path):
    clock = ManualClock(T0)
    live = Runtime(plant, clock)
    store = open_store(tmp_path / "store", plant.name)
    StoreRecorder(live, store)
    live.submit(Sample("T-101", "level", 10.0, T0, T0))
    live.step(T0)
    live.submit(Availability("T-101", False, T0 + 1800))  # an event half an hour in
    live.step(T0 + 1800)
    live.submit(Availability("T-101", True, T0 + 1900))
    live.submit(Sample("T-101", "level", 12.0, T0 + 1900, T0 + 1900))
    live.step(T0 + 1900)
    store.flush()
    past = PastTwin(plant, store)
    assert past.event_near(T0 + 5, forward=True) == pytest.approx(T0 + 1800)
    assert past.event_near(T0 + 7200, forward=False) == pytest.approx(T0 + 1900)  # back online: stale until fresh
    assert past.event_near(T0 + 1800, forward=False) is None  # nothing went wrong before it
    store.close()
