"""TwinState: values, quality transitions, out-of-order samples, alarms, history, and cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinview.connectors.base import Availability, LinkState, Sample
from twinview.connectors.simulator.plant import synthetic_site
from twinview.site.manifest import Device, PointSpec, Site
from twinview.twin.vocabulary import Quality, worst
from twinview.twin.state import TwinState

T0 = 1_718_000_000.0
G, N, S, B, O = Quality.GOOD, Quality.NONE, Quality.STALE, Quality.BAD, Quality.OFFLINE


def site_of(*devices: Device, stale_factor: float = 3.0) -> Site:
    return Site("t", Path("."), Path("m.glb"), tuple(devices), "p", stale_factor=stale_factor)


def dev(did: str, *points: PointSpec) -> Device:
    return Device(id=did, name=did, type="x", node=did, points=points, availability_topic=f"p/{did}/availability")


SPEED = PointSpec("speed", "p/A/speed", range=(0.0, 100.0), alarm=(0.0, 80.0), period=1.0)
STATE = PointSpec("state", "p/A/state", kind="enum", states=("stopped", "running", "fault"), alarm_states=("fault",), period=1.0)
RUN = PointSpec("run", "p/A/run", kind="bool", alarm_states=("false",), period=10.0)


def devs(state: TwinState, rows) -> set[int]:
    """The devices owning the point rows a state call returned."""
    return set(state.table.device[rows].tolist())


@pytest.fixture
def two():
    site = site_of(dev("A", SPEED, STATE, RUN), dev("B", PointSpec("level", "p/B/level", range=(0.0, 100.0), period=2.0)))
    return TwinState(site)


def test_quality_order():
    assert G < N < S < B < O
    assert worst(G, S, N) is S
    assert worst() is N
    assert [q.label for q in Quality] == ["good", "no data", "stale", "bad", "offline"]


def test_good_sample_sets_value_and_reports_the_device(two):
    assert two.point("A", "speed").quality is N
    changed = two.apply([Sample("A", "speed", 42.0, T0, T0 - 0.1)])
    assert devs(two, changed) == {0}
    rec = two.point("A", "speed")
    assert (rec.value, rec.quality, rec.source_ts, rec.recv_ts) == (42.0, G, T0 - 0.1, T0)
    assert two.samples == 1
    # same value again: nothing visible changed
    assert devs(two, two.apply([Sample("A", "speed", 42.0, T0 + 1, T0 + 0.9)])) == set()
    assert devs(two, two.apply([Sample("B", "level", 3.0, T0)])) == {1}


def test_unknown_points_are_counted_not_fatal(two):
    assert devs(two, two.apply([Sample("Z", "speed", 1.0, T0), Sample("A", "nope", 1.0, T0), Availability("Z", False, T0)])) == set()
    assert two.unknown == 3


def test_out_of_order_sample_does_not_overwrite(two):
    two.apply([Sample("A", "speed", 50.0, T0 + 2, T0 + 2)])
    changed = two.apply([Sample("A", "speed", 10.0, T0 + 3, T0 + 1)])  # older source time, arrived later
    rec = two.point("A", "speed")
    assert devs(two, changed) == set()
    assert rec.value == 50.0 and rec.source_ts == T0 + 2
    assert rec.out_of_order == 1 and two.out_of_order == 1
    two.apply([Sample("A", "speed", 60.0, T0 + 4, T0 + 3)])
    assert rec.value == 60.0
    # samples without a device timestamp are ordered by arrival
    two.apply([Sample("A", "speed", 61.0, T0 + 5)])
    assert rec.value == 61.0 and rec.out_of_order == 1


def test_bad_sample_marks_bad_keeps_display_value_and_recovers(two):
    two.apply([Sample("A", "speed", 40.0, T0)])
    changed = two.apply([Sample("A", "speed", 140.0, T0 + 1, None, "out of range [0, 100]")])
    rec = two.point("A", "speed")
    assert devs(two, changed) == {0}
    assert rec.quality is B and rec.value == 140.0 and rec.good_value == 40.0
    assert rec.error == "out of range [0, 100]" and two.bad == 1 and rec.bad == 1
    two.apply([Sample("A", "speed", None, T0 + 2, None, "not UTF-8 text")])
    assert rec.value == 140.0 and rec.error == "not UTF-8 text"  # no decoded value: keep what is shown
    two.apply([Sample("A", "speed", 41.0, T0 + 3)])
    assert rec.quality is G and rec.value == 41.0 and rec.error is None and rec.last_error == "not UTF-8 text"


def test_silence_makes_a_point_stale_via_tick(two):
    two.apply([Sample("A", "speed", 40.0, T0)])  # period 1, stale_factor 3: stale after 3 s
    assert devs(two, two.tick(T0 + 2.9)) == set()
    two.apply([Sample("A", "speed", 41.0, T0 + 2.0)])  # refreshed: deadline moves to T0 + 5
    assert devs(two, two.tick(T0 + 4.9)) == set()
    assert two.point("A", "speed").quality is G
    assert devs(two, two.tick(T0 + 5.1)) == {0}
    rec = two.point("A", "speed")
    assert rec.quality is S and "silent" in rec.note
    assert devs(two, two.tick(T0 + 100)) == set()  # already stale: nothing more to do
    two.apply([Sample("A", "speed", 42.0, T0 + 101)])
    assert rec.quality is G
    assert devs(two, two.tick(T0 + 103.9)) == set() and devs(two, two.tick(T0 + 104.1)) == {0}


def test_tick_cost_follows_deadlines_not_site_size():
    site = synthetic_site(2000, period=1.0)
    state = TwinState(site)
    samples = [Sample(d.id, p.id, 1.0 if p.kind == "number" else ("running" if p.kind == "enum" else True), T0)
               for d in site.devices for p in d.points]  # fmt: skip
    npoints = len(samples)
    for k in range(5):
        state.apply([Sample(s.device, s.point, s.value, T0 + k) for s in samples])
    assert state.tick(T0 + 5).size == 0  # a deadline could have passed: one vectorised check, nothing due
    scans = state.scans
    assert state.tick(T0 + 5.5).size == 0 and state.scans == scans  # no deadline before T0 + 7: no work at all
    # every point falls silent together: all go stale in one pass, then cost nothing
    changed = state.tick(T0 + 4 + 3.01)
    assert changed.size == npoints and state.stale_by_tick == npoints
    assert len(devs(state, changed)) == 2000
    scans = state.scans
    assert state.tick(T0 + 1000).size == 0 and state.scans == scans


def test_link_down_stales_what_the_connector_feeds(two):
    two.apply([Sample("A", "speed", 40.0, T0), Sample("B", "level", 5.0, T0)], "mqtt a")
    two.apply([Sample("A", "state", None, T0, None, "bad")], "mqtt a")
    changed = two.apply([LinkState("mqtt a", "down", "connection lost", T0 + 1)], "mqtt a")
    assert devs(two, changed) == {0, 1}
    assert two.point("A", "speed").quality is S and "link down" in two.point("A", "speed").note
    assert two.point("A", "state").quality is B  # bad stays bad
    assert two.point("A", "run").quality is N  # never received stays "no data"
    assert two.links["mqtt a"].state == "down"
    two.apply([LinkState("mqtt a", "up", "", T0 + 2), Sample("A", "speed", 41.0, T0 + 2)], "mqtt a")
    assert two.point("A", "speed").quality is G and two.point("B", "level").quality is S


def test_link_down_of_one_connector_only_stales_its_points(two):
    two.apply([Sample("A", "speed", 40.0, T0)], "mqtt")
    two.apply([Sample("B", "level", 5.0, T0)], "ws")
    assert devs(two, two.apply([LinkState("ws", "down", "", T0)], "ws")) == {1}
    assert two.point("A", "speed").quality is G and two.point("B", "level").quality is S


def test_availability_offline_then_online(two):
    two.apply([Sample("A", "speed", 40.0, T0), Sample("A", "state", "running", T0)])
    assert devs(two, two.apply([Availability("A", False, T0 + 1)])) == {0}
    assert two.device_quality("A") is O and two.device_offline(0)
    assert {r.quality for r in two.points("A")} == {O}
    # values while offline update the shown value but not the quality
    two.apply([Sample("A", "speed", 45.0, T0 + 2)])
    assert two.point("A", "speed").value == 45.0 and two.point("A", "speed").quality is O
    assert devs(two, two.apply([Availability("A", False, T0 + 3)])) == set()  # repeated: no change
    assert devs(two, two.apply([Availability("A", True, T0 + 4)])) == {0}
    assert two.point("A", "speed").quality is S  # back, but no fresh value yet
    assert two.point("A", "run").quality is N
    two.apply([Sample("A", "speed", 46.0, T0 + 5)])
    assert two.point("A", "speed").quality is G


def test_sample_that_arrives_already_old_is_stale(two):
    two.apply([Sample("A", "speed", 40.0, T0, T0 - 60)])  # retained or queued: a minute old
    rec = two.point("A", "speed")
    assert rec.quality is S and "arrived stale" in rec.note and rec.value == 40.0
    assert two.stale_on_arrival == 1


def test_alarms(two):
    two.apply([Sample("A", "speed", 70.0, T0), Sample("A", "state", "running", T0), Sample("A", "run", True, T0)])
    assert not two.device_alarm("A")
    assert devs(two, two.apply([Sample("A", "speed", 85.0, T0 + 1)])) == {0}
    assert two.device_alarm(0) and two.point("A", "speed").alarm
    two.apply([Sample("A", "speed", 70.0, T0 + 2), Sample("A", "state", "fault", T0 + 2)])
    assert two.device_alarm("A") and two.point("A", "state").alarm
    two.apply([Sample("A", "state", "running", T0 + 3), Sample("A", "run", False, T0 + 3)])
    assert two.point("A", "run").alarm  # bool alarm_states use "true"/"false"
    two.apply([Sample("A", "run", True, T0 + 4)])
    assert not two.device_alarm("A")
    # an out-of-range (bad) value does not move the alarm: it is judged on good values
    two.apply([Sample("A", "speed", 150.0, T0 + 5, None, "out of range")])
    assert not two.device_alarm("A")


def test_device_quality_is_the_worst_point(two):
    assert two.device_quality("A") is N
    two.apply([Sample("A", "speed", 1.0, T0), Sample("A", "state", "running", T0), Sample("A", "run", True, T0)])
    assert two.device_quality(0) is G
    two.apply([Sample("A", "state", None, T0, None, "bad")])
    assert two.device_quality("A") is B
    with pytest.raises(KeyError):
        two.device_quality("nope")
    with pytest.raises(KeyError):
        two.point("A", "nope")


def test_history_is_ordered_bounded_and_decimated():
    p = PointSpec("v", "p/A/v", period=1.0)
    state = TwinState(site_of(dev("A", p)), history_seconds=100.0, history_len=50)
    assert state.history("A", "v")[0].size == 0 and state.history_bytes() == 0  # nothing before the first value
    for k in range(400):
        state.apply([Sample("A", "v", float(k), T0 + k * 0.5, T0 + k * 0.5)])
    t, v = state.history("A", "v")
    assert len(t) == len(v) <= 50
    assert np.all(np.diff(t) >= 2.0 - 1e-9)  # one entry per history_seconds / history_len
    assert t[-1] - t[0] <= 100.0
    assert v[-1] == 399.0 and t[-1] == T0 + 399 * 0.5  # the newest sample is always kept
    assert np.all(v == (t - T0) * 2)  # times and values stay paired
    assert state.history_bytes() <= 2 * 8 * 50


def test_history_of_bool_and_enum_points(two):
    for k, (s, r) in enumerate([("stopped", False), ("running", True), ("fault", True)]):
        two.apply([Sample("A", "state", s, T0 + 10 * k), Sample("A", "run", r, T0 + 10 * k)])
    assert two.history("A", "state")[1].tolist() == [0.0, 1.0, 2.0]
    assert two.history("A", "run")[1].tolist() == [0.0, 1.0, 1.0]
    assert two.history("B", "level")[0].size == 0


def test_big_site_allocates_history_lazily_within_a_budget():
    site = synthetic_site(20000)
    state = TwinState(site, history_budget_bytes=32 * 2**20)
    assert state.history_bytes() == 0
    npoints = sum(len(d.points) for d in site.devices)
    assert state.history_len * 16 * npoints <= 32 * 2**20 * 1.01
    d = site.devices[0]
    state.apply([Sample(d.id, "speed", 10.0, T0)])
    assert 0 < state.history_bytes() <= 32 * 2**20 * 1.01  # reserved once, within the budget
    assert state.history(d.id, "speed")[1].tolist() == [10.0]


def test_snapshot_reflects_state(two):
    a = two.snapshot()
    two.apply([Sample("A", "speed", 1.0, T0)])
    b = two.snapshot()
    assert a != b and len(a) == len(b) == 4
