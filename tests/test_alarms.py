"""Alarms at the edges: deadband, on/off delays, acknowledgement roles and audit, shelving, chatter,
floods, suppression by design, persistence across a restart, and the rules' linter."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from twinview.security.auth import Principal
from twinview.site.manifest import load_manifest
from twinview.twin.alarms import compile_rules, lint
from twinview.twin.clock import ManualClock
from twinview.twin.events import AlarmsChanged
from twinview.twin.runtime import Runtime
from twinview.twin.samples import Availability, Sample
from twinview.twin.vocabulary import ALARM_SEVERITY_SHIFT, DeviceFlag

T0 = 1_718_000_000.0
OPERATOR = Principal("olga", "operator")
VIEWER = Principal("vic", "viewer")

SITE = """
[site]
name = "Alarm plant"
model = "plant.glb"
topic_prefix = "plant"

[types.pump]
points = [
  { id = "state", kind = "enum", states = ["stopped", "running", "fault"], alarm_states = ["fault"], period = 60 },
  { id = "pressure", unit = "bar", range = [0, 10], period = 60 },
  { id = "temp", unit = "degC", range = [0, 150], period = 60 },
  { id = "flow", unit = "m3/h", range = [0, 500], period = 60 },
  { id = "flow_sp", unit = "m3/h", range = [0, 500], period = 60 },
]
commands = [{ name = "start", success = { point = "state", equals = "running" }, timeout = 5 }]

[[types.pump.alarms]]
point = "temp"
kind = "high"
limit = 80
deadband = 5
severity = "high"
message = "motor {value:.1f} {unit} above {limit:g}"

[[types.pump.alarms]]
point = "temp"
kind = "high_high"
limit = 100
on_delay = 5
off_delay = 3
severity = "critical"

[[types.pump.alarms]]
point = "pressure"
kind = "low"
limit = 2
severity = "medium"
suppress_when = "state != 'running'"

[[types.pump.alarms]]
point = "flow"
kind = "deviation"
setpoint = "flow_sp"
limit = 50
severity = "low"

[[types.pump.alarms]]
point = "pressure"
kind = "rate"
limit = 1
severity = "low"

[[types.pump.alarms]]
point = "temp"
kind = "quality"
qualities = ["bad", "offline"]
severity = "low"

[[types.pump.alarms]]
kind = "command"
severity = "medium"

[[devices]]
id = "P-1"
type = "pump"
area = "intake"

[[devices]]
id = "P-2"
type = "pump"
area = "intake"
"""


@pytest.fixture
def site(tmp_path):
    (tmp_path / "site.toml").write_text(SITE, encoding="utf-8")
    return load_manifest(tmp_path)[0]


def make(site, store=None, audit=None, clock=None):
    clock = clock or ManualClock(T0)
    rt = Runtime(site, clock)
    engine = rt.enable_alarms(store, audit)
    seen: list = []
    rt.events.subscribe(AlarmsChanged, lambda e: seen.extend(e.alarms))
    return rt, engine, clock, seen


def feed(rt, clock, device, point, value, after=1.0):
    clock.advance(after)
    rt.submit(Sample(device, point, value, clock.now(), clock.now()))
    rt.step()


def state(engine, aid):
    return engine.describe(engine.index[aid])["state"]


def activations(seen, aid):
    return sum(1 for a in seen if a["id"] == aid and a["active"] and a["state"] == "unacknowledged" and a["activations"] and
               a == next(b for b in seen if b["id"] == aid and b["activations"] == a["activations"]))


def test_the_rules_compile_with_legacy_shorthands(site):
    rules = compile_rules(site)
    assert rules.errors == []
    ids = {r.id for r in rules.rules}
    assert {"P-1/temp.high", "P-1/temp.high_high", "P-1/pressure.low", "P-1/flow.deviation", "P-1/pressure.rate",
            "P-1/temp.quality", "P-1/command", "P-1/state.state"} <= ids  # state.state from alarm_states


def test_noise_smaller_than_the_deadband_alarms_once_and_a_return_past_it_clears(site):
    rt, engine, clock, seen = make(site)
    aid = "P-1/temp.high"
    k = engine.index[aid]
    feed(rt, clock, "P-1", "temp", 79.9)
    assert state(engine, aid) == "normal"
    for v in (80.5, 77.0, 80.4, 75.5, 81.0, 76.0):  # wobbles across the limit by less than the 5 degC deadband
        feed(rt, clock, "P-1", "temp", v)
        assert engine.active[k]
    assert int(engine.activations[k]) == 1  # one alarm, never a second one from the noise
    p1 = rt.device_index("P-1")
    flags = int(rt.looks.flags[p1])
    assert flags & DeviceFlag.ALARM and flags & DeviceFlag.ALARM_UNACK
    assert (flags >> ALARM_SEVERITY_SHIFT) & 3 == 2  # high
    assert engine.describe(k)["message"] == "motor 80.5 degC above 80"  # the value at activation
    feed(rt, clock, "P-1", "temp", 75.01)  # still inside the deadband: stays active
    assert engine.active[k]
    feed(rt, clock, "P-1", "temp", 74.9)  # back past limit - deadband: returns to normal
    assert not engine.active[k]
    assert state(engine, aid) == "returned_unacknowledged"
    assert engine.acknowledge(aid, OPERATOR) == (True, "")
    assert state(engine, aid) == "normal"
    rt.step()  # the look follows at the next step
    assert not rt.looks.flags[p1] & (DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK)


def test_a_value_beyond_the_limit_for_less_than_the_on_delay_never_alarms_for_longer_exactly_once(site):
    rt, engine, clock, seen = make(site)
    aid = "P-1/temp.high_high"  # on_delay 5 s, off_delay 3 s
    k = engine.index[aid]
    feed(rt, clock, "P-1", "temp", 101.0)
    clock.advance(4.9)
    rt.step()
    feed(rt, clock, "P-1", "temp", 99.0, after=0.05)  # back after 4.95 s
    clock.advance(30)
    rt.step()
    assert int(engine.activations[k]) == 0 and state(engine, aid) == "normal"
    feed(rt, clock, "P-1", "temp", 105.0)
    clock.advance(4.99)
    rt.step()
    assert not engine.active[k]
    clock.advance(0.02)
    rt.step()  # 5.01 s after the crossing
    assert engine.active[k] and int(engine.activations[k]) == 1
    assert engine.describe(k)["activated_at"] == pytest.approx(clock.now() - 0.01, abs=1e-6)  # when the delay ended
    for _ in range(20):
        feed(rt, clock, "P-1", "temp", 106.0)
    assert int(engine.activations[k]) == 1
    assert [a["state"] for a in seen if a["id"] == aid] == ["unacknowledged"]
    feed(rt, clock, "P-1", "temp", 50.0)  # off_delay 3 s
    clock.advance(2.9)
    rt.step()
    assert engine.active[k]
    clock.advance(0.2)
    rt.step()
    assert not engine.active[k] and state(engine, aid) == "returned_unacknowledged"


def test_acknowledging_needs_the_operator_role_and_every_attempt_is_audited(site, tmp_path):
    audit = tmp_path / "audit.jsonl"
    rt, engine, clock, seen = make(site, audit=audit)
    aid = "P-1/temp.high"
    feed(rt, clock, "P-1", "temp", 90.0)
    ok, why = engine.acknowledge(aid, VIEWER)
    assert not ok and "operator" in why
    assert state(engine, aid) == "unacknowledged"
    ok, why = engine.acknowledge(aid, None)
    assert not ok and why == "not signed in"
    assert engine.acknowledge(aid, OPERATOR) == (True, "")
    rt.step()
    assert state(engine, aid) == "acknowledged"
    assert not rt.looks.flags[rt.device_index("P-1")] & DeviceFlag.ALARM_UNACK  # steady, no longer blinking
    assert rt.looks.flags[rt.device_index("P-1")] & DeviceFlag.ALARM
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(r["user"], r["state"], r["command"], r["alarm"]) for r in lines] == [
        ("vic", "refused", "alarm.acknowledge", aid),
        ("anonymous", "refused", "alarm.acknowledge", aid),
        ("olga", "acknowledged", "alarm.acknowledge", aid),
    ]
    assert lines[0]["outcome"] == "failed" and lines[2]["outcome"] == "succeeded"
    assert engine.acknowledge(aid, OPERATOR) == (False, "nothing to acknowledge")


def test_a_shelve_hides_the_alarm_for_its_duration_then_expires(site, tmp_path):
    rt, engine, clock, seen = make(site, audit=tmp_path / "audit.jsonl")
    aid = "P-1/temp.high"
    p1 = rt.device_index("P-1")
    feed(rt, clock, "P-1", "temp", 90.0)
    assert engine.shelve(aid, VIEWER, 60, "sensor being replaced")[0] is False
    assert engine.shelve(aid, OPERATOR, 60, "  ")[1] == "shelving needs a reason"
    assert engine.shelve(aid, OPERATOR, 10 * 24 * 3600, "too long")[0] is False
    assert engine.shelve(aid, OPERATOR, 60, "sensor being replaced") == (True, "")
    rt.step()
    a = engine.describe(engine.index[aid])
    assert a["state"] == "shelved" and a["shelve_reason"] == "sensor being replaced" and a["shelved_by"] == "olga"
    assert not rt.looks.flags[p1] & (DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK)
    clock.advance(59.5)
    rt.step()
    assert rt.needs_steps  # the expiry is a timer on the runtime's clock, due within a second
    assert state(engine, aid) == "shelved"
    clock.advance(1.0)
    rt.step()
    assert state(engine, aid) == "unacknowledged"  # still active: shown again, waiting for an acknowledgement
    assert rt.looks.flags[p1] & DeviceFlag.ALARM_UNACK
    assert any(r["ev"] == "unshelved" and r.get("reason") == "shelve expired" for r in engine.history(aid))


def test_a_chattering_signal_is_marked_and_shown_once(site):
    rt, engine, clock, seen = make(site)
    aid = "P-1/state.state"  # fault state, no deadband possible on a discrete signal
    k = engine.index[aid]
    feed(rt, clock, "P-1", "state", "fault")
    assert engine.acknowledge(aid, OPERATOR)[0]
    for i in range(6):  # 7 activations within a minute (limit: 5 per minute)
        feed(rt, clock, "P-1", "state", "running", after=2)
        feed(rt, clock, "P-1", "state", "fault", after=2)
        if i < 4:
            assert not engine.chattering[k]
            assert engine.acknowledge(aid, OPERATOR)[0]
    assert engine.chattering[k]
    assert int(engine.activations[k]) == 7
    assert engine.acknowledge(aid, OPERATOR)[0]
    feed(rt, clock, "P-1", "state", "running", after=2)
    feed(rt, clock, "P-1", "state", "fault", after=2)
    assert state(engine, aid) == "acknowledged"  # a further toggle does not annunciate it again
    assert sum(1 for a in engine.alarms() if a["id"] == aid) == 1
    assert any(r["ev"] == "chattering" for r in engine.history(aid))
    feed(rt, clock, "P-1", "state", "running", after=2)
    clock.advance(61)
    rt.step()
    assert not engine.chattering[k]


def test_a_stopped_pump_suppresses_its_own_low_pressure_alarm_by_design(site):
    rt, engine, clock, seen = make(site)
    aid = "P-1/pressure.low"
    feed(rt, clock, "P-1", "state", "running")
    feed(rt, clock, "P-1", "pressure", 1.0)
    assert state(engine, aid) == "unacknowledged"
    assert engine.acknowledge(aid, OPERATOR)[0]
    feed(rt, clock, "P-1", "pressure", 5.0)
    assert state(engine, aid) == "normal"
    for a in engine.alarms():  # the jump from 1 to 5 bar also raised the rate alarm: acknowledge it
        engine.acknowledge(a["id"], OPERATOR)
    feed(rt, clock, "P-1", "state", "stopped")
    for p in (4.2, 3.4, 2.6, 1.8, 1.0):  # run-down slower than the 1 bar/s rate alarm
        feed(rt, clock, "P-1", "pressure", p)
    a = engine.describe(engine.index[aid])
    assert a["state"] == "suppressed" and a["active"]
    assert not rt.looks.flags[rt.device_index("P-1")] & (DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK)
    clock.advance(200)  # the pump falls silent: its state is stale, the suppression stays as it was
    rt.step()
    assert rt.state.point("P-1", "state").quality.label == "stale"
    assert state(engine, aid) == "suppressed"
    feed(rt, clock, "P-1", "state", "running")  # started, pressure still low: the alarm is shown
    assert state(engine, aid) == "unacknowledged"


def test_deviation_rate_quality_and_command_rules(site):
    rt, engine, clock, seen = make(site)
    feed(rt, clock, "P-1", "flow_sp", 200.0)
    feed(rt, clock, "P-1", "flow", 240.0)
    assert state(engine, "P-1/flow.deviation") == "normal"
    feed(rt, clock, "P-1", "flow", 260.0)
    assert state(engine, "P-1/flow.deviation") == "unacknowledged"
    feed(rt, clock, "P-1", "pressure", 5.0)
    feed(rt, clock, "P-1", "pressure", 5.5, after=1.0)
    assert state(engine, "P-1/pressure.rate") == "normal"
    feed(rt, clock, "P-1", "pressure", 8.0, after=1.0)  # 2.5 bar/s
    assert state(engine, "P-1/pressure.rate") == "unacknowledged"
    assert engine.describe(engine.index["P-1/pressure.rate"])["value"] == pytest.approx(2.5)
    clock.advance(61)  # no change for longer than the point's period (60 s): the rate is 0
    rt.step()
    assert state(engine, "P-1/pressure.rate") == "returned_unacknowledged"
    feed(rt, clock, "P-1", "temp", 50.0)
    clock.advance(1)
    rt.submit(Availability("P-1", False, clock.now()))
    rt.step()
    a = engine.describe(engine.index["P-1/temp.quality"])
    assert a["state"] == "unacknowledged" and a["value"] == "offline"
    engine._on_command(type("E", (), {"command": {"device": "P-1", "command": "start", "state": "timed_out"}})())
    rt.step()
    a = engine.describe(engine.index["P-1/command"])
    assert a["state"] == "unacknowledged" and a["value"] == "start timed out"


def test_a_flood_marks_the_first_alarm_first_out(tmp_path):
    points = ", ".join(f'{{ id = "t{i}", range = [0, 100], alarm = [0, 50], period = 60 }}' for i in range(12))
    (tmp_path / "site.toml").write_text(f"""
[site]
name = "Flood"
model = "m.glb"
[[devices]]
id = "D-1"
area = "north"
points = [{points}]
""")
    site = load_manifest(tmp_path)[0]
    rt, engine, clock, seen = make(site)
    floods = []
    rt.events.subscribe(AlarmsChanged, lambda e: floods.append(e.floods))
    for i in range(10):
        feed(rt, clock, "D-1", f"t{i}", 60.0, after=30)
    assert engine.floods == {}
    feed(rt, clock, "D-1", "t10", 60.0, after=30)  # the 11th in 10 minutes
    assert list(engine.floods) == ["north"]
    assert engine.floods["north"]["first_out"] == "D-1/t0.high"
    assert engine.describe(engine.index["D-1/t0.high"])["first_out"]
    assert floods[-1][0]["area"] == "north" and floods[-1][0]["count"] == 11
    clock.advance(600)
    rt.step()
    assert engine.floods == {} and not engine.first_out.any()


def test_state_and_history_survive_a_restart(site, tmp_path):
    store = tmp_path / "alarms.jsonl"
    rt, engine, clock, _ = make(site, store=store)
    feed(rt, clock, "P-1", "temp", 90.0)  # P-1/temp.high unacknowledged
    feed(rt, clock, "P-2", "temp", 91.0)
    assert engine.acknowledge("P-2/temp.high", OPERATOR)[0]
    feed(rt, clock, "P-2", "state", "fault")
    assert engine.shelve("P-2/state.state", OPERATOR, 3600, "known fault, fitter on site")[0]
    rt.step()
    rt.stop()

    rt2, engine2, _, _ = make(site, store=store, clock=ManualClock(clock.now() + 5))
    assert state(engine2, "P-1/temp.high") == "unacknowledged"
    assert state(engine2, "P-2/temp.high") == "acknowledged"
    a = engine2.describe(engine2.index["P-2/state.state"])
    assert a["state"] == "shelved" and a["shelve_reason"] == "known fault, fitter on site"
    assert engine2.describe(engine2.index["P-2/temp.high"])["acked_by"] == "olga"
    assert rt2.looks.flags[rt2.device_index("P-1")] & DeviceFlag.ALARM_UNACK  # the scene shows it before any value
    assert [r["ev"] for r in engine2.history("P-1/temp.high")] == ["activated"]
    by_loop = {s: 0 for s in engine2.counts()}
    for k in range(len(engine2.rules)):
        by_loop[engine2.state_of(k).value] += 1
    assert engine2.counts() == by_loop and by_loop["shelved"] == 1 and by_loop["unacknowledged"] == 1
    # the alarm keeps its hysteresis across the restart: a value inside the deadband does not clear it
    feed(rt2, rt2.clock, "P-1", "temp", 78.0)
    assert state(engine2, "P-1/temp.high") == "unacknowledged"
    feed(rt2, rt2.clock, "P-1", "temp", 70.0)
    assert state(engine2, "P-1/temp.high") == "returned_unacknowledged"
    rt2.stop()
    snap = json.loads((tmp_path / "alarms.jsonl.snapshot.json").read_text())
    assert snap["states"]["P-1/temp.high"]["active"] is False
    rt3, engine3, _, _ = make(site, store=store, clock=ManualClock(clock.now() + 10))
    assert state(engine3, "P-1/temp.high") == "returned_unacknowledged"
    rt3.stop()


def test_a_torn_last_line_is_skipped_and_counted(site, tmp_path):
    store = tmp_path / "alarms.jsonl"
    rt, engine, clock, _ = make(site, store=store)
    feed(rt, clock, "P-1", "temp", 90.0)
    rt.stop()
    (tmp_path / "alarms.jsonl.snapshot.json").unlink()
    with open(store, "a") as f:
        f.write('{"ts": 1, "id": "P-1/temp.high", "st": {"acked": tr')  # a power cut mid-line
    rt2, engine2, _, _ = make(site, store=store, clock=ManualClock(clock.now() + 1))
    assert state(engine2, "P-1/temp.high") == "unacknowledged"
    rt2.stop()


LINT_SITE = """
[site]
name = "Lint"
model = "m.glb"

[types.tank]
points = [{ id = "level", range = [0, 100] }, { id = "mode", kind = "enum", states = ["auto", "manual"] }]
alarms = [
  { point = "level", kind = "high", limit = 90, deadband = 85 },
  { point = "level", kind = "high_high", limit = 85 },
  { point = "level", kind = "low", limit = 10 },
  { point = "level", kind = "low_low", limit = -5 },
  { point = "levle", kind = "high", limit = 1, name = "typo" },
  { point = "mode", kind = "state", states = ["broken"] },
  { point = "level", kind = "high", limit = 50, name = "fmt", message = "{valeu}" },
  { point = "level", kind = "low", limit = 5, name = "sup", suppress_when = "mode == 'stopped'" },
  { point = "level", kind = "hihg", limit = 5, name = "k" },
]

[[devices]]
id = "T-1"
type = "tank"
"""


def test_lint_names_every_mistake(tmp_path):
    (tmp_path / "site.toml").write_text(LINT_SITE)
    problems = [str(p) for p in lint(load_manifest(tmp_path)[0])]
    text = "\n".join(problems)
    assert "unknown point 'levle'" in text
    assert "-5 is outside level's range 0..100" in text
    assert "limits in the wrong order: high 90 must be below high_high 85" in text
    assert "deadband 85 is wider than the band it clears into (80)" in text
    assert "mode has no state 'broken'" in text
    assert "unknown field {valeu}" in text
    assert "has no state 'stopped'" in text  # the suppression condition is checked like an interlock
    assert "expected one of 'high_high'" in text


def test_the_demo_plant_shows_an_alarm_within_a_minute():
    from twinview.connectors.simulator.plant import Simulator

    demo = load_manifest(Path(__file__).resolve().parents[1] / "assets" / "demo")[0]
    assert compile_rules(demo).errors == []
    clock = ManualClock(T0)
    rt = Runtime(demo, clock)
    engine = rt.enable_alarms()
    sim = Simulator(demo, seed=0, batched=True)
    shown_at = None
    while clock.now() < T0 + 60 and shown_at is None:
        clock.advance(0.25)
        for ev in sim.step(clock.now()):
            rt.submit(ev, "sim")
        rt.step()
        if any(a["state"] == "unacknowledged" and a["active"] for a in engine.alarms()):
            shown_at = clock.now() - T0
    assert shown_at is not None and shown_at < 60
    assert any(what.endswith("over its limit") for _, _, what in sim.fault_log)


def test_a_rejected_command_raises_the_command_alarm_through_the_real_service(site, tmp_path):
    from twinview.connectors.simulator.commands import SimulatorTransport
    from twinview.connectors.simulator.plant import Simulator

    clock = ManualClock(T0)
    rt = Runtime(site, clock)
    sim = Simulator(site, seed=1, faults=False)
    rt.add_connector(sim)
    rt.enable_commands(SimulatorTransport(sim), OPERATOR, tmp_path / "audit.jsonl")
    engine = rt.enable_alarms(None, tmp_path / "audit.jsonl")
    sim.models["pump"].trip(0, time.time(), 600.0)  # P-1 in fault (its thread runs on the wall clock): a start is rejected
    cmd = rt.request_command("P-1", "start", {}, confirmed=False)
    for _ in range(50):
        clock.advance(0.1)
        rt.step()
        if cmd.final:
            break
    rt.step()
    assert cmd.state == "rejected"
    a = engine.describe(engine.index["P-1/command"])
    assert a["state"] == "unacknowledged" and a["value"] == "start rejected" and a["severity"] == "medium"
    rt.stop()


def test_suppression_follows_a_point_no_rule_watches(tmp_path):
    (tmp_path / "site.toml").write_text("""
[site]
name = "Suppress"
model = "m.glb"
[[devices]]
id = "T-1"
points = [{ id = "level", range = [0, 100], period = 60 }, { id = "enabled", kind = "bool", period = 60 }]
alarms = [{ point = "level", kind = "low", limit = 10, suppress_when = "not enabled" }]
""")
    rt, engine, clock, _ = make(load_manifest(tmp_path)[0])
    feed(rt, clock, "T-1", "enabled", False)
    feed(rt, clock, "T-1", "level", 5.0)
    assert state(engine, "T-1/level.low") == "suppressed"
    feed(rt, clock, "T-1", "enabled", True)
    assert state(engine, "T-1/level.low") == "unacknowledged"
