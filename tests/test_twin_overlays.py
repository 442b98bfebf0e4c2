"""Overlays: colour maps, thresholds, state colours, flags, motion targets, labels, legends."""

from __future__ import annotations

import numpy as np
import pytest

from twinview.connectors.base import Availability, LinkState, Sample
from twinview.site.manifest import ColorOverlay, LabelOverlay, PointSpec
from twinview.twin import colormaps
from twinview.twin.looks import Looks
from twinview.twin.overlays import NO_VALUE, color_for, format_value, legend
from twinview.twin.state import TwinState
from twinview.twin.vocabulary import DeviceFlag

ALARM, BAD, OFFLINE, STALE = DeviceFlag.ALARM, DeviceFlag.BAD, DeviceFlag.OFFLINE, DeviceFlag.STALE


def evaluate(device, state):
    """One device's look, evaluated column-wise by the runtime's Looks."""
    looks = Looks(state)
    i = state.index(device.id) if device in state.devices else state.index(device.id)
    if device is not state.devices[i]:  # a device edited by the test: evaluate a site holding it
        from dataclasses import replace

        site = replace(state.site, devices=tuple(device if d.id == device.id else d for d in state.devices))
        twin = TwinState(site)
        twin.value[:], twin.good[:], twin.quality[:] = state.value, state.good, state.quality
        looks = Looks(twin)
    looks.evaluate(np.asarray([i]))
    return looks.look(i)

T0 = 1_718_000_000.0
GREY = (128 / 255, 128 / 255, 128 / 255, 1.0)
GREEN = (0x22 / 255, 0xCC / 255, 0x44 / 255, 1.0)
RED = (0xEE / 255, 0x22 / 255, 0x22 / 255, 1.0)


@pytest.fixture
def state(plant):
    return TwinState(plant)


def pump_samples(t: float, state="running", speed=1500.0, pressure=5.0, temp=60.0):
    return [
        Sample("P-101", "state", state, t),
        Sample("P-101", "speed", speed, t),
        Sample("P-101", "pressure", pressure, t),
        Sample("P-101", "motor_temp", temp, t),
    ]


@pytest.mark.parametrize("name", colormaps.NAMES)
def test_colormaps_are_smooth_tables(name):
    lut = colormaps.lut(name)
    assert lut.shape == (256, 4) and lut.dtype == np.float32
    assert np.all((lut >= 0) & (lut <= 1)) and np.all(lut[:, 3] == 1)
    assert np.abs(np.diff(lut[:, :3], axis=0)).max() < 0.1  # no jumps between neighbours
    assert colormaps.sample(name, -5) == colormaps.sample(name, 0.0)  # clamped
    assert colormaps.sample(name, 7) == pytest.approx(tuple(lut[-1]))
    mid = colormaps.sample(name, 0.5)
    many = colormaps.sample_many(name, np.array([0.0, 0.5, 1.0]))
    assert many[1] == pytest.approx(mid, abs=1e-6)


def test_colormap_character():
    lum = lambda c: 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]  # noqa: E731
    assert lum(colormaps.sample("blues", 0)) > lum(colormaps.sample("blues", 1))  # light to dark
    assert lum(colormaps.sample("viridis", 0)) < lum(colormaps.sample("viridis", 1))
    cold, hot = colormaps.sample("coolwarm", 0), colormaps.sample("coolwarm", 1)
    assert cold[2] > cold[0] and hot[0] > hot[2]
    g, r = colormaps.sample("traffic", 0), colormaps.sample("traffic", 1)
    assert g[1] > g[0] and r[0] > r[1]


def test_stops_pick_the_highest_stop_at_or_below():
    spec = PointSpec("p", "t", range=(0, 100))
    o = ColorOverlay("p", stops=((0.0, (1, 0, 0, 1)), (50.0, (0, 1, 0, 1)), (80.0, (0, 0, 1, 1))))
    assert color_for(o, spec, -3.0) == (1, 0, 0, 1)  # below every stop: the first
    assert color_for(o, spec, 0.0) == (1, 0, 0, 1)
    assert color_for(o, spec, 49.99) == (1, 0, 0, 1)
    assert color_for(o, spec, 50.0) == (0, 1, 0, 1)
    assert color_for(o, spec, 100.0) == (0, 0, 1, 1)
    assert color_for(o, spec, None) is None


def test_state_colours_for_enum_and_bool():
    spec = PointSpec("s", "t", kind="enum", states=("a", "b"))
    o = ColorOverlay("s", states={"a": (1, 0, 0, 1)})
    assert color_for(o, spec, "a") == (1, 0, 0, 1)
    assert color_for(o, spec, "b") is None  # no colour for it: keep the model's
    b = ColorOverlay("r", states={"true": (0, 1, 0, 1), "false": (0.5, 0.5, 0.5, 1)})
    assert color_for(b, PointSpec("r", "t", kind="bool"), True) == (0, 1, 0, 1)
    assert color_for(b, PointSpec("r", "t", kind="bool"), False) == (0.5, 0.5, 0.5, 1)


def test_map_colour_over_range(state, plant):
    tank = plant.device("T-101")
    state.apply([Sample("T-101", "level", 0.0, T0), Sample("T-101", "temperature", 20.0, T0), Sample("T-101", "drain", False, T0)])
    assert evaluate(tank, state).rgba == pytest.approx(colormaps.sample("blues", 0.0))
    state.apply([Sample("T-101", "level", 75.0, T0 + 1)])
    look = evaluate(tank, state)
    assert look.rgba == pytest.approx(colormaps.sample("blues", 0.75))
    assert look.motions == (pytest.approx(0.75),)
    assert look.label == "75 %"
    assert look.flags == 0


def test_pump_look_good_then_stale_then_bad_then_offline(state, plant):
    pump = plant.device("P-101")
    i = state.index("P-101")
    never = evaluate(pump, state)
    assert never.rgba is None and never.motions == (None,) and never.flags == STALE
    assert never.label == NO_VALUE + " (no data)"  # a label says when its points never reported

    state.apply(pump_samples(T0, speed=1500.0))
    look = evaluate(pump, state)
    assert look.rgba == pytest.approx(GREEN) and look.flags == 0
    assert look.motions == (pytest.approx(2.5),)  # 1500 of 0..3000 rpm -> 2.5 of 0..5 rev/s
    assert look.label == "1500 rpm  5 bar"

    assert i in state.table.device[state.tick(T0 + 100)]  # everything silent
    stale = evaluate(pump, state)
    assert stale.flags & STALE and stale.rgba == pytest.approx(GREEN)  # colour of the last good value
    assert stale.motions == look.motions  # motion holds the last good value
    assert stale.label.endswith("(stale)")

    state.apply(pump_samples(T0 + 101, speed=1500.0))
    state.apply([Sample("P-101", "speed", 9999.0, T0 + 102, None, "out of range [0, 3000]")])
    bad = evaluate(pump, state)
    assert bad.flags & BAD and not bad.flags & STALE
    assert bad.motions == look.motions  # out-of-range value is shown in the label, not driven into motion
    assert bad.label == "9999 rpm  5 bar (bad)"

    state.apply([Availability("P-101", False, T0 + 103)])
    off = evaluate(pump, state)
    assert off.flags & OFFLINE and not off.flags & (BAD | STALE)
    assert off.label.endswith("(offline)")


def test_motion_clamps_to_its_range(state, plant):
    pump = plant.device("P-101")
    state.apply(pump_samples(T0, speed=0.0))
    assert evaluate(pump, state).motions == (0.0,)
    state.apply(pump_samples(T0 + 1, speed=3000.0))
    assert evaluate(pump, state).motions == (5.0,)


def test_alarm_flag(state, plant):
    pump = plant.device("P-101")
    state.apply(pump_samples(T0, state="fault"))
    look = evaluate(pump, state)
    assert look.flags & ALARM and look.rgba == pytest.approx(RED)
    state.apply(pump_samples(T0 + 1, state="running", pressure=9.0))  # above the 0..8 bar band
    assert evaluate(pump, state).flags & ALARM
    state.apply(pump_samples(T0 + 2, state="stopped"))
    look = evaluate(pump, state)
    assert not look.flags & ALARM and look.rgba == pytest.approx(GREY)


def test_link_down_stales_what_that_link_delivered(state, plant):
    state.apply(pump_samples(T0), "mqtt")
    state.apply([Sample("T-101", "level", 10.0, T0)], "replay")
    changed = state.apply([LinkState("mqtt", "down", "", T0 + 1)], "mqtt")
    assert set(state.table.device[changed].tolist()) == {state.index("P-101")}
    assert evaluate(plant.device("P-101"), state).flags & STALE
    assert state.point("T-101", "level").quality.current  # fed by another link: still good


def test_format_strings_are_filled_safely(state, plant):
    from dataclasses import replace

    tank = plant.device("T-101")
    state.apply([Sample("T-101", "level", 42.4, T0), Sample("T-101", "temperature", 21.0, T0), Sample("T-101", "drain", True, T0)])
    for fmt, expected in [
        ("{level:.1f} % / {temperature}°C", "42.4 % / 21.0°C"),
        ("{level.__class__}", "—"),  # no attribute access: the whole field is a point id
        ("{level[0]}", "—"),
        ("{drain}", "on"),
        ("{level:>8.2f}", "   42.40"),
        ("{level:d}", "42.4"),  # a spec that does not fit falls back to the plain value
        ("{", "{"),
        ("{missing} x", "— x"),
    ]:
        d = replace(tank, label=LabelOverlay(("level", "temperature", "drain"), fmt))
        assert evaluate(d, state).label == expected, fmt


def test_format_value():
    assert format_value(PointSpec("a", "t", unit="bar"), 5.0) == "5 bar"
    assert format_value(PointSpec("a", "t", unit="bar"), 5.234) == "5.23 bar"
    assert format_value(PointSpec("a", "t"), 1234.56) == "1235"
    assert format_value(PointSpec("a", "t", kind="bool"), False) == "off"
    assert format_value(PointSpec("a", "t"), None) == NO_VALUE


def test_legends(plant):
    pump, tank, valve = plant.device("P-101"), plant.device("T-101"), plant.device("V-101")
    assert [e[0] for e in legend(pump.color)] == ["stopped", "running", "fault"]
    entries = legend(tank.color, tank.point("level"), steps=5)
    assert [e[0] for e in entries] == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    assert entries[2][1] == pytest.approx(colormaps.sample("blues", 0.5))
    steps = legend(valve.color, valve.point("position"))
    assert [e[0] for e in steps] == ["0 – 50 %", "≥ 50 %"]
