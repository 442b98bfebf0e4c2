"""Ingest benchmarks: what the telemetry path costs, measured on loopback with a real broker.

Each function returns a plain dict (printing is the caller's job):
- bench_mqtt_ingest: K messages through mosquitto into (a) a bare paho subscriber
  that only counts and (b) the viewer's pipeline (MqttConnector -> decode -> Inbox
  -> TwinState.apply -> overlays for changed devices). Reports sent and delivered
  counts next to the rates: a broker may drop QoS 0 for a slow subscriber.
- bench_pipeline: the same model work in-process (Simulator -> TwinState -> overlays).
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

from ..twin.decode import encode
from ..twin.inbox import Inbox
from ..twin.overlays import evaluate_many
from ..twin.state import TwinState
from ..twin.topics import TopicMap
from .base import Sample
from .localbroker import LocalBroker
from .mqtt import MqttConnector, parse_url
from .simulator import Simulator, synthetic_site


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
    """A render-like loop on a thread: drain, apply, tick, evaluate overlays of changed devices."""

    def __init__(self, state: TwinState, inbox: Inbox, frame: float, latency: bool = False):
        self.state, self.inbox, self.frame = state, inbox, frame
        self.applied = 0
        self.looks = 0
        self.first: float | None = None
        self.last = 0.0
        self.latencies: list[float] = []
        self._want_latency = latency
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "_Frames":
        self._thread.start()
        return self

    def _run(self) -> None:
        state, inbox = self.state, self.inbox
        while not self._stop.is_set():
            batch = inbox.drain()
            if batch:
                if self.first is None:
                    self.first = time.perf_counter()
                changed = state.apply(batch)
                changed |= state.tick(time.time())
                self.looks += len(evaluate_many(state, changed))
                now = time.time()
                self.applied += sum(1 for e in batch if type(e) is Sample)
                self.last = time.perf_counter()
                if self._want_latency:
                    self.latencies.extend(now - e.source_ts for e in batch if type(e) is Sample and e.source_ts)
            else:
                self._stop.wait(self.frame)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _pipeline(url: str, site, messages, qos: int, timeout: float, frame: float) -> dict[str, Any]:
    state = TwinState(site)
    inbox: Inbox = Inbox()
    conn = MqttConnector(url, TopicMap(site), reconnect_min=0.2)
    frames = _Frames(state, inbox, frame).start()
    conn.start(inbox.put)
    conn.wait_subscribed(10)
    pub_s = _publish_all(url, messages, qos)
    _wait_count(lambda: frames.applied, len(messages), 2.0, timeout)
    frames.stop()
    conn.stop()
    span = (frames.last - frames.first) if frames.first else 0.0
    return {"sent": len(messages), "delivered": frames.applied, "received": conn.stats.received,
            "bad": conn.stats.bad, "msgs_per_s": frames.applied / span if span > 0 else 0.0,
            "overlay_evaluations": frames.looks, "publish_s": pub_s, "inbox_dropped": inbox.dropped}  # fmt: skip


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
    """In-process: Simulator.step -> TwinState.apply/tick -> overlays, over `seconds` of simulated time."""
    site = synthetic_site(devices)
    t0 = time.perf_counter()
    sim = Simulator(site, seed=0)
    state = TwinState(site)
    setup = time.perf_counter() - t0
    now = time.time()
    t_sim = t_apply = t_look = 0.0
    samples = looks = 0
    for _ in range(int(seconds / step)):
        now += step
        a = time.perf_counter()
        events = sim.step(now)
        b = time.perf_counter()
        changed = state.apply(events)
        changed |= state.tick(now)
        c = time.perf_counter()
        looks += len(evaluate_many(state, changed))
        d = time.perf_counter()
        t_sim, t_apply, t_look = t_sim + b - a, t_apply + c - b, t_look + d - c
        samples += len(events)
    total = t_sim + t_apply + t_look
    return {
        "devices": devices, "points": sum(len(d.points) for d in site.devices), "simulated_s": seconds,
        "samples": samples, "setup_s": setup, "sim_s": t_sim, "apply_s": t_apply, "overlays_s": t_look,
        "overlay_evaluations": looks, "samples_per_s": samples / total if total else 0.0,
        "apply_samples_per_s": samples / t_apply if t_apply else 0.0,
        "us_per_overlay": 1e6 * t_look / looks if looks else 0.0,
        "history_bytes": state.history_bytes(),
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
        state = TwinState(site)
        inbox: Inbox = Inbox()
        conn = MqttConnector(url, TopicMap(site), reconnect_min=0.2)
        frames = _Frames(state, inbox, frame, latency=True).start()
        conn.start(inbox.put)
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
        conn.stop()
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
