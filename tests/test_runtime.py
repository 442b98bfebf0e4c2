"""The runtime: one place applies, typed events in order, one thread writes, per-link staleness, the CLI view."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from broker import LocalBroker, mosquitto_pub, require_mosquitto, wait_until

from twinview.connectors.mqtt.telemetry import MqttConnector
from twinview.connectors.wire.topics import TopicMap
from twinview.twin.clock import ManualClock
from twinview.twin.events import DevicesChanged, LinkChanged, QualityChanged, SamplesApplied
from twinview.twin.runtime import Runtime, ThreadError
from twinview.twin.samples import Availability, Sample
from twinview.twin.vocabulary import DeviceFlag, Quality

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_718_000_000.0


class Recorder:
    """A subscriber that keeps every event it is given, in order."""

    def __init__(self, runtime: Runtime):
        self.events: list = []
        for kind in (SamplesApplied, DevicesChanged, QualityChanged, LinkChanged):
            runtime.events.subscribe(kind, self.events.append, owner=self)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def test_a_step_applies_evaluates_and_publishes_in_order(plant):
    clock = ManualClock(T0)
    runtime = Runtime(plant, clock)
    seen = Recorder(runtime)
    p101 = runtime.device_index("P-101")
    runtime.submit(Sample("P-101", "speed", 1500.0, T0, T0))
    runtime.submit(Sample("P-101", "state", "fault", T0, T0))
    devices = runtime.step()
    assert devices.tolist() == [p101]
    assert seen.kinds() == ["SamplesApplied", "DevicesChanged"]
    applied = seen.events[0]
    assert applied.rows.size == 2 and sorted(applied.values.tolist()) == [2.0, 1500.0]  # "fault" is state 2
    assert runtime.looks.flags[p101] & DeviceFlag.ALARM  # the device's look was evaluated in the same step
    assert runtime.looks.motion_target[runtime.looks.motion_start[p101]] == pytest.approx(2.5)

    seen.events.clear()
    assert runtime.step().size == 0 and seen.events == []  # nothing queued, nothing published
    clock.advance(3.5)  # speed's period is 1 s, stale_factor 3
    assert runtime.step().tolist() == [p101]
    assert seen.kinds() == ["QualityChanged", "DevicesChanged"] and seen.events[0].reason == "silence"
    assert runtime.state.point("P-101", "speed").quality is Quality.STALE
    assert runtime.looks.flags[p101] & DeviceFlag.STALE


def test_only_the_runtime_thread_writes_and_other_threads_submit(plant):
    runtime = Runtime(plant, ManualClock(T0))
    runtime.step()  # this thread is the runtime's now
    errors: list[BaseException] = []

    def step_elsewhere() -> None:
        try:
            runtime.step()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=step_elsewhere)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], ThreadError)

    devices = [d.id for d in plant.devices if any(p.id == "speed" for p in d.points)][:4]

    def submit(device: str) -> None:
        for k in range(500):
            runtime.submit(Sample(device, "speed", float(k), T0 + k * 1e-3, T0 + k * 1e-3), device)

    threads = [threading.Thread(target=submit, args=(d,)) for d in devices]
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        runtime.step()
    runtime.step()
    for d in devices:
        p = runtime.state.point(d, "speed")
        assert p.value == 499.0 and p.updates == 500  # every sample applied, the last one shown


def test_one_failing_subscriber_does_not_stop_the_others(plant):
    runtime = Runtime(plant, ManualClock(T0))
    got: list = []
    runtime.events.subscribe(DevicesChanged, lambda e: 1 / 0)
    runtime.events.subscribe(DevicesChanged, got.append, owner="view")
    runtime.submit(Sample("T-101", "level", 50.0, T0))
    runtime.step()
    assert len(got) == 1 and runtime.events.errors == 1 and "ZeroDivisionError" in runtime.events.last_error
    assert runtime.counted_errors()["event_handler_errors"] == 1
    runtime.events.release("view")
    runtime.submit(Sample("T-101", "level", 60.0, T0 + 1))
    runtime.step()
    assert len(got) == 1  # released: no more events for that owner


def test_offline_and_pending_are_flags_of_the_look(plant):
    runtime = Runtime(plant, ManualClock(T0))
    i = runtime.device_index("P-102")
    runtime.submit(Availability("P-102", False, T0))
    runtime.step()
    assert runtime.looks.flags[i] == DeviceFlag.OFFLINE


@pytest.mark.broker
def test_two_links_one_goes_down_and_only_its_points_go_stale(plant, tmp_path):
    require_mosquitto()
    a = LocalBroker(workdir=tmp_path / "a").start()
    b = LocalBroker(workdir=tmp_path / "b").start()
    runtime = Runtime(plant)
    conn_a = MqttConnector(a.url, TopicMap(plant), name="mqtt a", reconnect_min=0.2, reconnect_max=1.0, keepalive=5)
    conn_b = MqttConnector(b.url, TopicMap(plant), name="mqtt b", reconnect_min=0.2, reconnect_max=1.0, keepalive=5)
    runtime.add_connector(conn_a)
    runtime.add_connector(conn_b)
    links: list[tuple[str, str]] = []
    runtime.events.subscribe(LinkChanged, lambda e: links.append((e.connector, e.state)))
    state = runtime.state

    def settle(predicate, timeout: float = 10.0) -> bool:
        def step_then_check() -> bool:
            runtime.step()
            return predicate()

        return wait_until(step_then_check, timeout)

    try:
        runtime.start()
        assert conn_a.wait_subscribed(10) and conn_b.wait_subscribed(10)
        mosquitto_pub(a, "plant/P-101/speed", "1000")
        mosquitto_pub(b, "plant/T-101/level", "40")
        assert settle(lambda: state.point("P-101", "speed").quality.current and state.point("T-101", "level").quality.current)
        b.kill()  # one link goes away, without a goodbye
        assert settle(lambda: state.point("T-101", "level").quality is Quality.STALE, timeout=15)
        assert "link down (mqtt b" in state.point("T-101", "level").note
        assert state.point("P-101", "speed").quality is Quality.GOOD  # fed by the other link: still current
        assert ("mqtt b", "down") in links and ("mqtt a", "down") not in links
    finally:
        runtime.stop()
        a.close()
        b.close()


def test_state_command_lists_every_point_of_the_demo_with_its_quality():
    demo = ROOT / "assets" / "demo"
    out = subprocess.run([sys.executable, "-m", "twinview.cli", "state", str(demo), "--sim", "--wait", "3", "--json"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    from twinview.site import load_manifest

    site, _ = load_manifest(demo)
    expected = {(d.id, p.id) for d in site.devices for p in d.points}
    assert {(r["device"], r["point"]) for r in rows} == expected and len(rows) == len(expected)
    assert {r["quality"] for r in rows} <= {"good", "no data", "stale", "bad", "offline"}
    assert sum(r["quality"] == "good" for r in rows) > len(rows) // 2  # three seconds of the simulator
    good = next(r for r in rows if r["quality"] == "good")
    assert good["ts"] and good["age_s"] is not None and isinstance(good["device_flags"], list)


def test_state_command_says_when_the_source_cannot_be_reached():
    from twinview.connectors.mqtt.localbroker import free_port

    demo = ROOT / "assets" / "demo"
    out = subprocess.run([sys.executable, "-m", "twinview.cli", "state", str(demo), "--mqtt",
                          f"mqtt://127.0.0.1:{free_port()}", "--wait", "1.5", "--device", "P-101"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 4, out.stdout + out.stderr
    assert "could not be reached" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout.count("no data") >= 4  # every point of P-101 listed, none shown as current
    none = subprocess.run([sys.executable, "-m", "twinview.cli", "state", str(demo)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert none.returncode == 2 and "name a source" in none.stderr


def test_columnar_looks_match_the_per_device_rules(plant):
    """The vectorised evaluation gives what the one-value-at-a-time rules give, device by device."""
    from twinview.bench.baseline import PerDevicePath
    from twinview.connectors.simulator.plant import Simulator

    clock = ManualClock(T0)
    runtime = Runtime(plant, clock)
    sim = Simulator(plant, seed=5, batched=True, fault_interval=5.0)
    reference = PerDevicePath(runtime, view=None)
    for _ in range(300):
        now = clock.advance(0.5)
        for event in sim.step(now):
            runtime.submit(event, "simulator")
        runtime.step()
    looks = runtime.looks
    kinds = set()
    for i in range(len(plant.devices)):
        rgba, flags, motions, label = reference.look(i)
        assert int(looks.flags[i]) == flags, plant.devices[i].id
        kinds.add(flags)
        if rgba is None:
            assert looks.rgba[i, 3] == 0
        else:
            assert np.allclose(looks.rgba[i], rgba, atol=1e-5), plant.devices[i].id
        got = runtime.looks.look(i)
        assert got.motions == pytest.approx(motions) and got.label == label
    assert len(kinds) >= 3  # good, stale and alarmed devices were all compared


def test_a_timestamp_from_the_future_is_counted_where_every_view_reads_errors(plant):
    runtime = Runtime(plant, ManualClock(T0))
    runtime.submit(Sample("T-101", "level", 50.0, T0, T0 + 3600.0))  # received now, stamped an hour ahead
    runtime.step()
    assert runtime.counted_errors()["clock_skew"] == 1
    assert runtime.state.point("T-101", "level").source_ts <= T0 + 1e-6  # clamped to when it arrived
