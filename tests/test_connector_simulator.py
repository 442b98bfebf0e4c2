"""The simulator: plausible values for every point, commands that act, faults, scale, MQTT mode."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker import require_mosquitto, wait_until
from twinview.connectors.base import Availability, Sample
from twinview.connectors.mqtt.telemetry import MqttConnector
from twinview.connectors.simulator.plant import Simulator, run_as_mqtt_publisher, synthetic_site
from twinview.twin.vocabulary import Quality
from twinview.twin.state import TwinState
from twinview.connectors.wire.topics import TopicMap

T0 = 1_718_000_000.0


def run(sim: Simulator, state: TwinState, seconds: float, step: float = 0.5, t0: float = T0) -> tuple[float, list]:
    events: list = []
    now = t0
    for _ in range(int(seconds / step)):
        now += step
        batch = sim.step(now)
        events.extend(batch)
        state.apply(batch)
        state.tick(now)
    return now, events


def check_value(spec, value):
    if spec.kind == "number":
        assert isinstance(value, float) and np.isfinite(value), (spec.id, value)
        if spec.range:
            assert spec.range[0] <= value <= spec.range[1], (spec.id, value, spec.range)
    elif spec.kind == "bool":
        assert isinstance(value, bool), (spec.id, value)
    else:
        assert value in spec.states, (spec.id, value)


@pytest.mark.parametrize("which", ["plant", "demo_site"])
def test_every_point_gets_plausible_values(which, request):
    site = request.getfixturevalue(which)
    sim = Simulator(site, seed=1)
    state = TwinState(site)
    _, events = run(sim, state, 120.0)
    samples = [e for e in events if isinstance(e, Sample)]
    for s in samples:
        check_value(site.device(s.device).point(s.point), s.value)
        assert s.error is None and s.source_ts == s.recv_ts
    seen = {(s.device, s.point) for s in samples}
    assert seen == {(d.id, p.id) for d in site.devices for p in d.points}
    # about once per period (silenced devices publish less)
    for d in site.devices[:20]:
        for p in d.points:
            n = sum(1 for s in samples if s.device == d.id and s.point == p.id)
            assert n <= 120.0 / p.period * 1.3 + 2, (d.id, p.id, n)
    assert state.counters["bad"] == 0 and state.counters["out_of_order"] == 0


def test_physics_is_plausible(plant):
    sim = Simulator(plant, seed=2, faults=False)
    state = TwinState(plant)
    run(sim, state, 60.0)
    v = lambda d, p: state.point(d, p).value  # noqa: E731
    for pump in ("P-101", "P-102"):
        if v(pump, "state") == "running":
            assert v(pump, "speed") > 1000 and v(pump, "pressure") > 1.0
        else:
            assert v(pump, "speed") == 0.0
    hvac_supply, hvac_return = v("H-301", "supply_temp"), v("H-301", "return_temp")
    assert 10.0 <= hvac_supply <= 28.0 and hvac_return > hvac_supply
    speeds = state.history("C-401", "speed")[1]
    assert len(speeds) > 10
    items = [s.value for s in sim.step(T0 + 61) if s.point == "items"]
    assert all(float(i).is_integer() for i in items)


def test_stop_command_ramps_a_pump_down(demo_site):
    pump = next(d for d in demo_site.devices if d.type == "pump")
    sim = Simulator(demo_site, seed=0, faults=False)
    state = TwinState(demo_site)
    now, _ = run(sim, state, 10.0)
    sim.handle_command(pump.id, "start", {})
    now, _ = run(sim, state, 20.0, t0=now)
    assert state.point(pump.id, "state").value == "running" and state.point(pump.id, "speed").value > 0
    assert sim.handle_command(pump.id, "stop", {}) == (True, "stopping")
    now, _ = run(sim, state, 2.0, t0=now)
    assert state.point(pump.id, "state").value == "stopped"
    assert state.point(pump.id, "speed").value > 0  # still spinning down
    now, _ = run(sim, state, 20.0, t0=now)
    assert state.point(pump.id, "speed").value == 0.0
    assert state.point(pump.id, "state").value == "stopped"
    assert state.point(pump.id, "speed").quality is Quality.GOOD


def test_commands_act_and_bad_ones_are_refused(plant):
    sim = Simulator(plant, seed=0, faults=False)
    state = TwinState(plant)
    now, _ = run(sim, state, 5.0)
    assert sim.handle_command("P-101", "set_speed", {"speed": 1800}) == (True, "speed setpoint changed")
    sim.handle_command("P-101", "start", {})
    assert sim.handle_command("V-101", "set_position", {"position": 30}) == (True, "moving")
    sim.handle_command("F-201", "stop", {})
    sim.handle_command("C-401", "start", {})
    level0 = state.point("T-101", "level").value
    sim.handle_command("T-101", "open_drain", {})
    for pump in ("P-101", "P-102"):
        sim.handle_command(pump, "stop", {})
    sim.handle_command("X-601", "set_rpm", {"rpm": 450})
    now, _ = run(sim, state, 40.0, t0=now)
    assert state.point("P-101", "state").value == "stopped"  # stopped again above
    assert state.point("V-101", "position").value == pytest.approx(30.0, abs=0.5)
    assert state.point("F-201", "running").value is False and state.point("F-201", "speed").value == 0.0
    assert state.point("C-401", "running").value is True
    assert state.point("T-101", "drain").value is True
    assert state.point("T-101", "level").value < level0 - 5  # pumps off, drain open: it empties
    assert abs(state.point("X-601", "rpm").value - 450) < 100  # generic walk around the new mean
    sim.handle_command("P-101", "start", {})
    now, _ = run(sim, state, 30.0, t0=now)
    assert state.point("P-101", "speed").value == pytest.approx(1800, abs=60)

    assert sim.handle_command("nope", "stop", {})[0] is False
    assert sim.handle_command("P-101", "dance", {})[0] is False
    assert sim.handle_command("P-101", "set_speed", {"speed": 99999}) == (False, "99999 is outside 0..3000")
    assert sim.handle_command("P-101", "set_speed", {})[0] is False
    assert sim.handle_command("S-501", "start", {})[0] is False


def test_command_messages_in_the_device_contract(plant):
    sim = Simulator(plant, seed=0, faults=False)
    answers: list = []
    sim.on_response = lambda topic, payload: answers.append((topic, json.loads(payload)))
    body = {"id": "c-1", "device": "P-101", "command": "stop", "args": {}, "expires_at": 4e9}
    assert sim.publish("plant/P-101/cmd/stop", json.dumps(body).encode(), response_topic="r/1")
    assert answers[-1] == ("r/1", {"id": "c-1", "status": "accepted", "reason": "stopping"})
    sim.publish("plant/P-101/cmd/stop", json.dumps({**body, "id": "c-2", "expires_at": 1.0}).encode())
    assert answers[-1] == ("plant/P-101/cmd_response", {"id": "c-2", "status": "rejected", "reason": "expired before it arrived"})
    with pytest.raises(ValueError):
        sim.publish("plant/P-101/telemetry", json.dumps(body).encode())
    sim.publish("plant/P-101/cmd", b"[[[")
    assert answers[-1][1]["status"] == "rejected"
    sim.publish("plant/P-101/cmd", json.dumps({**body, "id": "c-3", "device": "P-102"}).encode())
    assert "addressed to" in answers[-1][1]["reason"]


def test_faults_show_up_in_a_few_minutes(demo_site):
    sim = Simulator(demo_site, seed=7)
    state = TwinState(demo_site)
    _, events = run(sim, state, 600.0)
    kinds = {what for _, _, what in sim.fault_log}
    assert {"fault", "silent", "offline", "online"} <= kinds
    assert len(sim.fault_log) < 60  # rare: a handful per minute at most
    pump_faults = [e for e in events if isinstance(e, Sample) and e.point == "state" and e.value == "fault"]
    assert pump_faults
    assert state.counters["stale_by_tick"] > 0  # silence was noticed by the twin
    assert any(isinstance(e, Availability) and not e.online for e in events)


def test_same_seed_same_events(plant):
    a = Simulator(plant, seed=5)
    b = Simulator(plant, seed=5)
    c = Simulator(plant, seed=6)
    ta = [a.step(T0 + k * 0.3) for k in range(300)]
    tb = [b.step(T0 + k * 0.3) for k in range(300)]
    tc = [c.step(T0 + k * 0.3) for k in range(300)]
    assert ta == tb and ta != tc


def test_twenty_thousand_devices():
    site = synthetic_site(20000, period=1.0)
    sim = Simulator(site, seed=0)
    state = TwinState(site)
    npoints = sum(len(d.points) for d in site.devices)
    first = sim.step(T0)
    assert len(first) == npoints  # everything reports once at start
    total = 0
    for k in range(1, 21):
        batch = sim.step(T0 + k * 0.1)
        total += len(batch)
        state.apply(batch)
    # 2 s of one update per point per second, give or take the jitter
    assert 0.8 * npoints * 2 < total < 1.2 * npoints * 2
    assert all(type(e) is Sample for e in batch)


def test_runs_on_a_thread(plant, make_loop):
    loop = make_loop(plant)
    sim = Simulator(plant, tick=0.05)
    sim.start(loop.inbox.put)
    try:
        assert loop.run_until(lambda: loop.state.samples > 40, timeout=5)
    finally:
        sim.stop()
    assert sim.stats.received > 0 and sim.stats.bad == 0


@pytest.mark.broker
def test_simulator_as_an_external_mqtt_fleet(broker, plant, make_loop):
    loop = make_loop(plant)
    conn = MqttConnector(broker.url, TopicMap(plant), reconnect_min=0.2)
    conn.start(loop.inbox.put)
    assert conn.wait_subscribed(10)
    stop = threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_as_mqtt_publisher(plant, broker.url, 2.0, stop)))
    thread.start()
    try:
        twin = loop.state
        everything = [(d.id, p.id) for d in plant.devices for p in d.points]
        assert loop.run_until(lambda: all(twin.point(d, p).quality is Quality.GOOD for d, p in everything), timeout=10)
        # a command over MQTT in the command service's device contract, answered on the response topic
        answers: list = []
        subscribed = threading.Event()
        responses = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        responses.on_message = lambda c, u, m: answers.append((m.topic, json.loads(m.payload)))
        responses.on_subscribe = lambda *a: subscribed.set()
        responses.connect(broker.host, broker.port)
        responses.subscribe("plant/+/cmd_response", qos=1)
        responses.loop_start()
        assert subscribed.wait(10)
        # a hand-made publish (no id, user, expiry) is refused like a careful device would, and does nothing
        responses.publish("plant/P-102/cmd/stop", b'{"command": "stop"}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: answers, timeout=5)
        assert answers[0][1]["status"] == "rejected" and "refused" in answers[0][1]["reason"]
        answers.clear()
        body = {"id": "cmd-7", "device": "P-102", "command": "stop", "args": {}, "user": "olga", "expires_at": 4e9}
        responses.publish("plant/P-102/cmd/stop", json.dumps(body).encode(), qos=1).wait_for_publish(5)
        assert wait_until(lambda: answers, timeout=5)
        assert answers[0] == ("plant/P-102/cmd_response", {"id": "cmd-7", "status": "accepted", "reason": "stopping"})
        # a redelivery of the same id is answered again but acted on once
        responses.publish("plant/P-102/cmd/stop", json.dumps(body).encode(), qos=1).wait_for_publish(5)
        assert wait_until(lambda: len(answers) == 2, timeout=5)
        assert answers[1] == answers[0]
        assert loop.run_until(lambda: twin.point("P-102", "speed").value == 0.0, timeout=15)
        responses.disconnect()
        responses.loop_stop()
    finally:
        stop.set()
        thread.join(10)
        conn.stop()
    assert result["published"] > 0 and result["commands"] == 2 and result["commands_rejected"] == 1 and result["duplicates"] == 1
    assert not thread.is_alive()


@pytest.mark.broker
def test_after_a_broker_restart_births_bring_every_point_back_at_once(tmp_path, plant, make_loop):
    """Slow points (a minute apart) are current again within seconds of a restart, not after their period:
    devices report everything when they (re)connect, and a twin that (re)connects asks them to (rebirth)."""
    from dataclasses import replace

    from twinview.connectors.mqtt.localbroker import LocalBroker
    from twinview.connectors.simulator.fleet import run_publisher

    require_mosquitto()
    slow = replace(plant, devices=tuple(replace(d, points=tuple(replace(p, period=60.0) for p in d.points))
                                        for d in plant.devices[:6]))  # fmt: skip
    broker = LocalBroker(workdir=tmp_path / "b", persistence=False).start()  # a restart loses retained values too
    loop = make_loop(slow)
    conn = MqttConnector(broker.url, TopicMap(slow), reconnect_min=0.2, reconnect_max=0.5, keepalive=2)
    conn.start(loop.inbox.put)
    stop = threading.Event()
    stats: dict = {}
    fleet = threading.Thread(target=lambda: stats.update(run_publisher(slow, broker.url, 1.0, stop, seed=1)))
    fleet.start()
    twin = loop.state
    everything = [(d.id, p.id) for d in slow.devices for p in d.points]
    try:
        assert conn.wait_subscribed(10)
        assert loop.run_until(lambda: all(twin.point(d, p).quality is Quality.GOOD for d, p in everything), timeout=15)
        broker.kill()
        assert loop.run_until(lambda: twin.point(*everything[0]).quality is Quality.STALE, timeout=10)
        broker.start()
        t0 = time.monotonic()
        assert loop.run_until(lambda: all(twin.point(d, p).quality is Quality.GOOD for d, p in everything), timeout=15)
        assert time.monotonic() - t0 < 10  # far sooner than the 60 s period: reported at once, not waited for
        assert conn.rebirths >= 2  # the twin asked at its first connect and after the restart
        late = MqttConnector(broker.url, TopicMap(slow), reconnect_min=0.2)  # a second twin joins
        late.start(lambda event: None)
        assert late.wait_subscribed(10) and late.rebirths == 1
        time.sleep(1.0)  # the fleet answers the request on its next step
        late.stop()
    finally:
        stop.set()
        fleet.join(10)
        conn.stop()
        broker.close()
    assert stats.get("rebirths", 0) >= 1
