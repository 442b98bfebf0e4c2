"""Recording and replay: same file, same events, same twin state sequence."""

from __future__ import annotations

import json
import time

import pytest

from broker import mosquitto_pub
from twinview.connectors.base import Availability, LinkState, Sample
from twinview.connectors.mqtt.telemetry import MqttConnector
from twinview.connectors.replay.recording import Recorder, ReplayConnector, read_recording
from twinview.twin.vocabulary import Quality
from twinview.twin.state import TwinState
from twinview.connectors.wire.topics import TopicMap

START = 1_718_000_000.0


def write_recording(path):
    with Recorder(path, start=START) as rec:
        for k in range(40):
            t = START + k * 0.25
            rec.record("plant/P-101/speed", json.dumps({"value": 1000 + k, "ts": t}).encode(), t)
            rec.record("plant/P-101/state", json.dumps({"value": "running" if k % 10 else "fault", "ts": t - 0.1}).encode(), t)
            if k % 8 == 0:
                rec.record("plant/T-101/level", f"{k * 2.5:.1f}", t)
        rec.record("plant/P-101/speed", b"\xff\x00 binary garbage", START + 10.1)
        rec.record("plant/P-101/speed", b"NaN", START + 10.2)
        rec.record("plant/P-101/speed", json.dumps({"value": 5, "ts": START + 9.0}).encode(), START + 10.3)  # late
        rec.record("plant/P-101/availability", b"offline", START + 10.4)
        rec.record("plant/nobody/x", b"1", START + 10.5)
    return path


def run(path, plant, start_time=START + 3600.0, frame=0.1):
    """Replay in frames like a render loop; returns (events, [state snapshot after each frame])."""
    replay = ReplayConnector(path, TopicMap(plant), speed=2.0, start_time=start_time)
    state = TwinState(plant)
    events, snapshots = [], []
    for now, batch in replay.iter_batches(frame):
        events.extend(batch)
        state.apply(batch)
        state.tick(now)
        snapshots.append(state.snapshot())
    return events, snapshots, state, replay


def test_recording_format_round_trips(tmp_path):
    path = write_recording(tmp_path / "rec.jsonl")
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"twinview_recording": 1, "start": START}
    assert json.loads(lines[1]) == {"t": 0.0, "topic": "plant/P-101/speed", "payload": json.dumps({"value": 1000, "ts": START})}
    assert any("payload_b64" in line for line in lines)
    rec = read_recording(path)
    assert rec.start == START and rec.bad_lines == 0
    assert rec.messages[-5].payload == b"\xff\x00 binary garbage"
    assert rec.duration == pytest.approx(10.5)


def test_replay_is_deterministic(tmp_path, plant):
    path = write_recording(tmp_path / "rec.jsonl")
    events1, snaps1, state1, _ = run(path, plant)
    events2, snaps2, state2, _ = run(path, plant)
    assert events1 == events2
    assert snaps1 == snaps2 and len(snaps1) > 50
    assert len(set(snaps1)) > 20  # the state really moved through many distinct steps
    assert state1.counters == state2.counters
    assert state1.counters["bad"] == 2 and state1.counters["out_of_order"] == 1
    assert state1.device_quality("P-101") is Quality.OFFLINE


def test_replay_moves_time_onto_the_playback_clock(tmp_path, plant):
    path = write_recording(tmp_path / "rec.jsonl")
    base = START + 3600.0
    events, _, state, replay = run(path, plant, start_time=base)
    samples = [e for e in events if isinstance(e, Sample)]
    first = samples[0]
    assert first.recv_ts == base and first.value == 1000.0
    state_samples = [s for s in samples if s.point == "state"]
    # recorded 0.25 s apart at speed 2: 0.125 s apart now; device timestamps shifted the same way
    assert state_samples[1].recv_ts - state_samples[0].recv_ts == pytest.approx(0.125)
    assert state_samples[0].source_ts == pytest.approx(base - 0.05)
    assert any(isinstance(e, Availability) and not e.online for e in events)
    assert replay.finished and replay.stats.unknown_topic == 1 and replay.stats.bad == 2
    # values are fresh on the new clock: good now, stale once the new clock passes their window
    assert state.point("T-101", "level").quality is Quality.GOOD
    assert set(state.table.device[state.tick(base + 20.0)].tolist()) == {state.index("T-101")}
    assert state.point("T-101", "level").quality is Quality.STALE


def test_replay_loop_and_drain(tmp_path, plant):
    path = write_recording(tmp_path / "rec.jsonl")
    replay = ReplayConnector(path, TopicMap(plant), loop=True, start_time=0.0)
    lap1 = replay.drain()
    lap2 = replay.drain()
    assert len(lap1) == len(lap2) > 0 and not replay.finished
    s1 = [e for e in lap1 if isinstance(e, Sample)]
    s2 = [e for e in lap2 if isinstance(e, Sample)]
    assert [(e.point, e.value) for e in s1] == [(e.point, e.value) for e in s2]
    assert s2[0].recv_ts == pytest.approx(s1[0].recv_ts + replay.lap_length)


def test_replay_in_real_time(tmp_path, plant, make_loop):
    path = write_recording(tmp_path / "rec.jsonl")
    loop = make_loop(plant)
    replay = ReplayConnector(path, TopicMap(plant), speed=50.0)
    replay.start(loop.inbox.put)
    try:
        assert loop.run_until(lambda: replay.finished and loop.runtime.stats.events >= len(loop.events), timeout=5)
    finally:
        replay.stop()
    assert isinstance(loop.events[0], LinkState) and loop.events[0].state == "up"
    samples = [e for e in loop.events if isinstance(e, Sample)]
    assert abs(samples[0].recv_ts - time.time()) < 5  # played on today's clock
    assert loop.state.point("P-101", "speed").value == 1039.0


def test_malformed_recording_lines_are_skipped(tmp_path, plant):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"t": 0, "topic": "plant/P-101/speed", "payload": "1"}\n'
        "not json\n"
        '{"t": "soon", "topic": "plant/P-101/speed", "payload": "2"}\n'
        '{"t": 1, "topic": "plant/P-101/speed"}\n'
        '{"t": 2, "topic": "plant/P-101/speed", "payload_b64": "!!!"}\n'
        + "[" * 5000 + "\n"
        + '{"t": 3, "topic": "plant/P-101/speed", "payload": "4"}\n'
    )
    replay = ReplayConnector(path, TopicMap(plant), start_time=0.0)
    assert replay.recording.bad_lines == 5
    assert [e.value for e in replay.drain()] == [1.0, 4.0]


@pytest.mark.broker
def test_record_live_mqtt_then_replay_gives_the_same_values(tmp_path, broker, plant, make_loop):
    path = tmp_path / "live.jsonl"
    loop = make_loop(plant)
    with Recorder(path) as recorder:
        conn = MqttConnector(broker.url, TopicMap(plant), tap=recorder.record)
        conn.start(loop.inbox.put)
        try:
            assert conn.wait_subscribed(10)
            mosquitto_pub(broker, "plant/P-102/speed", lines=["100", "200", "300"])
            mosquitto_pub(broker, "plant/P-102/state", "fault")
            assert loop.run_until(lambda: loop.state.point("P-102", "state").value == "fault")
        finally:
            conn.stop()
    live = [(e.device, e.point, e.value) for e in loop.events if isinstance(e, Sample)]
    replayed = [(e.device, e.point, e.value) for e in ReplayConnector(path, TopicMap(plant)).drain() if isinstance(e, Sample)]
    assert replayed == live and len(live) == 4
