"""Telemetry benchmarks: MQTT ingest against bare paho, the pipeline down to GPU buffers, latency,
and the per-frame update cost when 1% or 100% of a site changes."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from .table import print_table


def bench_telemetry(workdir: Path, sizes: list[int], only: set[str]) -> None:
    if not only or "ingest" in only:
        _ingest()
    if not only or "pipeline" in only:
        _pipeline(workdir, sizes)


def _ingest() -> None:
    from twinview.connectors.bench_ingest import bench_latency, bench_mqtt_ingest

    r = bench_mqtt_ingest(messages=20000, devices=1000)
    bare, ours = r["bare"], r["pipeline"]
    rows = [
        ["bare paho subscriber (counts only)", f"{bare['msgs_per_s']:,.0f}", f"{bare['delivered']:,} / {r['messages']:,}", "baseline"],
        ["twinview: decode, inbox, twin, overlays", f"{ours['msgs_per_s']:,.0f}", f"{ours['delivered']:,} / {r['messages']:,}",
         f"{r['pipeline_vs_bare']:.2f}x bare"],
    ]  # fmt: skip
    print_table(
        f"MQTT ingest on loopback (mosquitto, QoS {r['qos']}, {r['messages']:,} messages over {r['devices']:,} devices)",
        ["subscriber", "msg/s", "delivered / sent", "ratio"],
        rows,
    )
    lat = bench_latency(messages=2000, rate=1000.0)
    print_table(
        f"Publish-to-apply latency ({lat['publish_rate']:.0f} msg/s, render loop at {1000 / lat['frame_ms']:.0f} fps)",
        ["delivered / sent", "p50 ms", "p99 ms", "max ms"],
        [[f"{lat['delivered']:,} / {lat['messages']:,}", f"{lat['p50_ms']:.1f}", f"{lat['p99_ms']:.1f}", f"{lat['max_ms']:.1f}"]],
    )


def _pipeline(workdir: Path, sizes: list[int]) -> None:
    """Simulator -> inbox -> TwinState -> overlays -> SiteView buffer writes, timed in process."""
    from twinview.app.live import LiveSite
    from twinview.connectors.base import Sample
    from twinview.connectors.simulator import Simulator
    from twinview.scene.view import SiteView
    from twinview.site import open_site
    from twinview.site.synthetic import generate_site

    rows = []
    for n in sizes:
        site_dir = workdir / f"site-{n}"
        if not (site_dir / "site.toml").exists():
            generate_site(site_dir, n, seed=0)
        loaded = open_site(site_dir)
        view = SiteView(loaded)
        live = LiveSite(loaded, connectors=[])
        live.attach(view)
        live._started = True  # driven by hand below: no connector threads
        sim = Simulator(loaded.site, seed=0, faults=False)
        now = time.time()
        samples = 0
        busy = 0.0
        for _ in range(100):  # 10 simulated seconds in 0.1 s steps
            now += 0.1
            events = sim.step(now)
            t0 = time.perf_counter()
            for event in events:
                live.inbox.put(event)
            live.update(now)
            busy += time.perf_counter() - t0
            samples += len(events)
        rows.append([f"{n:,}", f"{samples:,}", f"{samples / busy:,.0f}", "simulator to GPU buffers"])

        # Frame update cost when a share of devices gets a new value, against a frame with none.
        pts = [(d.id, d.points[0]) for d in loaded.site.devices if d.points]
        for share in (0.0, 0.01, 1.0):
            k = int(len(pts) * share)
            costs = []
            for rep in range(5):
                now += 1.0
                chosen = np.random.default_rng(rep).choice(len(pts), size=k, replace=False) if k else []
                for j in chosen:
                    device, spec = pts[j]
                    lo, hi = spec.range or (0.0, 100.0)
                    value = lo + (hi - lo) * ((rep + j) % 10) / 10 if spec.kind == "number" else None
                    if value is not None:
                        live.inbox.put(Sample(device, spec.id, value, now, now))
                t0 = time.perf_counter()
                live.update(now)
                costs.append(time.perf_counter() - t0)
            ms = statistics.median(costs) * 1000
            rows.append([f"{n:,}", f"{k:,} changed", f"{ms:.2f} ms/frame", f"{share:.0%} of devices change per frame"])
    print_table(
        "Pipeline in process (one update per frame: drain, apply, evaluate overlays, write GPU buffers)",
        ["devices", "samples", "samples/s or cost", "what"],
        rows,
    )
