"""Ingest benchmarks: what the telemetry path costs, measured on loopback with a real broker.

Each function returns a plain dict (printing is the caller's job):
- bench_mqtt_ingest: K messages through mosquitto into (a) a bare paho subscriber
  that only counts and (b) the twin (MqttConnector -> decode -> the runtime's
  step on a driver thread -> looks of changed devices). Reports sent and delivered
  counts next to the rates: a broker may drop QoS 0 for a slow subscriber.
- bench_pipeline: the same model work in-process (Simulator batches -> runtime).
- bench_latency: publish-to-apply latency (p50/p99) at a steady publish rate,
  with a render-like loop draining the inbox every `frame` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from twinview.connectors.mqtt.localbroker import LocalBroker
from twinview.connectors.mqtt.telemetry import MqttConnector, parse_url
from twinview.connectors.simulator.plant import Simulator, synthetic_site
from twinview.connectors.wire.decode import encode
from twinview.connectors.wire.topics import TopicMap
from twinview.twin.events import SamplesApplied
from twinview.twin.runtime import Driver, Runtime
from twinview.twin.samples import SampleBatch


def _messages(site, count: int, ts: bool = True) -> list[tuple[str, bytes]]:
    """count (topic, payload) pairs cycling over the site's numeric points, values in range."""
    specs = [p for d in site.devices for p in d.points if p.kind == "number"]
    rng = np.random.default_rng(0)
    now = time.time()
    out = []
    for k in range(count):
        p = specs[k % len(specs)]
        lo, hi = p.range or (0.0, 100.0)
        value = round(float(lo + (hi - lo) * rng.random()), 2)
        out.append((p.topic, encode(p, value, now if ts else None)))
    return out


def _client(url: str, name: str) -> mqtt.Client:
    addr = parse_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{time.monotonic_ns() % 10**8}", protocol=mqtt.MQTTv5)
    c.max_queued_messages_set(0)
    c.connect(addr.host, addr.port, keepalive=30)
    return c


def _publish_all(url: str, messages: list[tuple[str, bytes]], qos: int) -> float:
    """Publish every message as fast as paho can; returns seconds taken."""
    pub = _client(url, "pub")
    pub.loop_start()
    t0 = time.perf_counter()
    info = None
    for topic, payload in messages:
        info = pub.publish(topic, payload, qos=qos)
    if info is not None:
        info.wait_for_publish(60.0)
    elapsed = time.perf_counter() - t0
    pub.disconnect()
    pub.loop_stop()
    return elapsed


def _wait_count(get, target: int, idle: float, timeout: float) -> None:
    last, last_change = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = get()
        if n >= target:
            return
        if n != last:
            last, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > idle:
            return
        time.sleep(0.01)


def _bare(url: str, site, messages, qos: int, timeout: float) -> dict[str, Any]:
    times: list[float] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{time.monotonic_ns() % 10**8}", protocol=mqtt.MQTTv5)

    def on_message(c, u, m):
        times.append(time.perf_counter())

    sub.on_message = on_message
    sub.on_subscribe = lambda c, u, mid, rc, p: ready.set()
    addr = parse_url(url)
    sub.connect(addr.host, addr.port)
    sub.subscribe(f"{site.topic_prefix}/#", qos=qos)
    sub.loop_start()
    ready.wait(10)
    pub_s = _publish_all(url, messages, qos)
    _wait_count(lambda: len(times), len(messages), 2.0, timeout)
    sub.disconnect()
    sub.loop_stop()
    n = len(times)
    span = (times[-1] - times[0]) if n > 1 else 0.0
    return {"sent": len(messages), "delivered": n, "msgs_per_s": n / span if span > 0 else 0.0,
            "publish_s": pub_s}  # fmt: skip


class _Frames:
    """The runtime on a driver thread at a frame rate, counting what it applies (a subscriber)."""

    def __init__(self, runtime: Runtime, frame: float, latency: bool = False):
        self.runtime = runtime
        self.applied = 0
        self.first: float | None = None
        self.last = 0.0
        self.latencies: list[float] = []
        self._want_latency = latency
        runtime.events.subscribe(SamplesApplied, self._on_samples)
        self.driver = Driver(runtime, rate=1.0 / frame)

    def _on_samples(self, event: SamplesApplied) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.applied += int(event.rows.size)
        self.last = now
        if self._want_latency:
            self.latencies.extend((time.time() - event.times).tolist())

    def start(self) -> "_Frames":
        self.driver.start()
        return self

    def stop(self) -> None:
        self.driver.stop()


def _pipeline(url: str, site, messages, qos: int, timeout: float, frame: float) -> dict[str, Any]:
    runtime = Runtime(site)
    conn = MqttConnector(url, TopicMap(site), reconnect_min=0.2)
    runtime.add_connector(conn)
    frames = _Frames(runtime, frame).start()
    conn.wait_subscribed(10)
    pub_s = _publish_all(url, messages, qos)
    _wait_count(lambda: frames.applied, len(messages), 2.0, timeout)
    frames.stop()
    runtime.stop()
    span = (frames.last - frames.first) if frames.first else 0.0
    return {"sent": len(messages), "delivered": frames.applied, "received": conn.stats.received,
            "bad": conn.stats.bad, "msgs_per_s": frames.applied / span if span > 0 else 0.0,
            "publish_s": pub_s}  # fmt: skip


def bench_mqtt_ingest(
    messages: int = 20000, devices: int = 1000, qos: int = 0, url: str | None = None, timeout: float = 60.0, frame: float = 1 / 60
) -> dict[str, Any]:
    """Loopback MQTT ingest: bare paho subscriber vs the viewer pipeline."""
    site = synthetic_site(devices)
    msgs = _messages(site, messages)
    broker = None
    if url is None:
        broker = LocalBroker(persistence=False).start()
        url = broker.url
    try:
        bare = _bare(url, site, msgs, qos, timeout)
        pipeline = _pipeline(url, site, msgs, qos, timeout, frame)
    finally:
        if broker is not None:
            broker.close()
    ratio = pipeline["msgs_per_s"] / bare["msgs_per_s"] if bare["msgs_per_s"] else 0.0
    return {"messages": messages, "devices": devices, "qos": qos, "bare": bare, "pipeline": pipeline,
            "pipeline_vs_bare": ratio}  # fmt: skip


def bench_pipeline(devices: int = 20000, seconds: float = 10.0, step: float = 0.1) -> dict[str, Any]:
    """In-process: the simulator's batches through the runtime (apply, tick, looks), over `seconds` of simulated time."""
    site = synthetic_site(devices)
    t0 = time.perf_counter()
    sim = Simulator(site, seed=0, batched=True)
    runtime = Runtime(site)
    setup = time.perf_counter() - t0
    now = time.time()
    t_sim = t_step = 0.0
    samples = 0
    for _ in range(int(seconds / step)):
        now += step
        a = time.perf_counter()
        events = sim.step(now)
        b = time.perf_counter()
        for event in events:
            runtime.submit(event, "simulator")
        runtime.step(now)
        c = time.perf_counter()
        t_sim, t_step = t_sim + b - a, t_step + c - b
        samples += sum(len(e) if type(e) is SampleBatch else 1 for e in events)
    total = t_sim + t_step
    return {
        "devices": devices, "points": len(runtime.state.table), "simulated_s": seconds,
        "samples": samples, "setup_s": setup, "sim_s": t_sim, "step_s": t_step,
        "samples_per_s": samples / total if total else 0.0,
        "step_samples_per_s": samples / t_step if t_step else 0.0,
        "history_bytes": runtime.state.history_bytes(),
    }  # fmt: skip


def bench_latency(
    messages: int = 2000, rate: float = 1000.0, devices: int = 200, qos: int = 0, url: str | None = None, frame: float = 1 / 60
) -> dict[str, Any]:
    """Publish-to-apply latency at a steady publish rate (payload carries the publish time)."""
    site = synthetic_site(devices)
    specs = [p for d in site.devices for p in d.points if p.kind == "number"]
    broker = None
    if url is None:
        broker = LocalBroker(persistence=False).start()
        url = broker.url
    try:
        runtime = Runtime(site)
        conn = MqttConnector(url, TopicMap(site), reconnect_min=0.2)
        runtime.add_connector(conn)
        frames = _Frames(runtime, frame, latency=True).start()
        conn.wait_subscribed(10)
        pub = _client(url, "lat")
        pub.loop_start()
        interval = 1.0 / rate
        t_next = time.perf_counter()
        for k in range(messages):
            p = specs[k % len(specs)]
            lo, hi = p.range or (0.0, 100.0)
            pub.publish(p.topic, encode(p, (lo + hi) / 2, time.time()), qos=qos)
            t_next += interval
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        _wait_count(lambda: frames.applied, messages, 2.0, 30.0)
        frames.stop()
        runtime.stop()
        pub.disconnect()
        pub.loop_stop()
    finally:
        if broker is not None:
            broker.close()
    lat = np.array(frames.latencies) * 1000.0
    return {
        "messages": messages, "delivered": frames.applied, "publish_rate": rate, "frame_ms": frame * 1000,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "max_ms": float(lat.max()) if lat.size else None,
        "note": "timestamps are rounded to 1 ms in the payload",
    }  # fmt: skip


def run_all(quick: bool = False) -> dict[str, Any]:
    """Every ingest benchmark; quick=True for a smoke-sized run."""
    if quick:
        return {
            "mqtt_ingest": bench_mqtt_ingest(messages=2000, devices=200),
            "pipeline": bench_pipeline(devices=2000, seconds=2.0),
            "latency": bench_latency(messages=300, rate=500.0),
        }
    return {
        "mqtt_ingest": bench_mqtt_ingest(),
        "pipeline": bench_pipeline(),
        "latency": bench_latency(),
    }
