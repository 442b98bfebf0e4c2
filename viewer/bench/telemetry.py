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
    from twinview.bench.ingest import bench_latency, bench_mqtt_ingest

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


SIM_RATE = 60.0  # the simulated fleet publishes this many times faster than its devices' periods
FRAME_S = 1 / 30  # rendercanvas draws on demand at up to 30 frames a second


def _pipeline(workdir: Path, sizes: list[int]) -> None:
    """Simulator -> runtime (apply, tick, looks) -> scene GPU buffers, timed in process, against the per-device path."""
    from twinview.connectors.simulator.plant import Simulator
    from twinview.scene.binding import SceneBinding
    from twinview.scene.view import SiteView
    from twinview.site import open_site
    from twinview.site.synthetic import generate_site
    from twinview.twin.clock import ManualClock
    from twinview.twin.runtime import Runtime
    from twinview.twin.samples import SampleBatch

    from .baseline import PerDevicePath

    rows = []
    for n in sizes:
        site_dir = workdir / f"site-{n}"
        if not (site_dir / "site.toml").exists():
            generate_site(site_dir, n, seed=0)
        loaded = open_site(site_dir)
        view = SiteView(loaded)
        clock = ManualClock()
        runtime = Runtime(loaded.site, clock)
        SceneBinding(runtime, view)
        runtime.start()
        # Capacity: the simulator publishing SIM_RATE times faster than its devices' periods, one step a frame;
        # the first simulated second warms up (first values, chart buffers) and is not timed.
        sim = Simulator(loaded.site, seed=0, faults=False, batched=True, rate=SIM_RATE)
        samples = 0
        busy = 0.0
        for step in range(int(6 / FRAME_S)):
            now = clock.advance(FRAME_S)
            events = sim.step(now)
            t0 = time.perf_counter()
            for event in events:
                runtime.submit(event, "simulator")
            runtime.step(now)
            if step >= int(1 / FRAME_S):
                busy += time.perf_counter() - t0
                samples += sum(len(e) if type(e) is SampleBatch else 1 for e in events)
        rows.append([f"{n:,}", "runtime (columnar)", f"simulator ({SIM_RATE:g}x rate) to GPU buffers",
                     f"{samples:,} samples", f"{samples / busy:,.0f} samples/s", "goal ≥ 500,000 samples/s"])  # fmt: skip

        # A frame in which a share of devices gets a new value: the columnar runtime, then the per-device path.
        table = runtime.state.table
        first = np.asarray([int(table.start[i]) for i, d in enumerate(loaded.site.devices) if d.points], np.int64)
        specs = [table.specs[r] for r in first.tolist()]
        lo = np.asarray([(s.range or (0.0, 100.0))[0] if s.kind == "number" else 0.0 for s in specs])
        hi = np.asarray([(s.range or (0.0, 100.0))[1] if s.kind == "number" else 0.0 for s in specs])
        states = np.asarray([len(s.states) if s.kind == "enum" else 2 for s in specs])
        numeric = np.asarray([s.kind == "number" for s in specs])
        baseline = PerDevicePath(runtime, view)
        for share in (0.01, 1.0):
            k = max(1, int(len(first) * share))
            costs, base_costs = [], []
            for rep in range(7):
                chosen = np.random.default_rng(rep).choice(len(first), size=k, replace=False)
                values = np.where(numeric[chosen], lo[chosen] + (hi[chosen] - lo[chosen]) * ((rep + chosen) % 10) / 10,
                                  (rep + chosen) % np.maximum(states[chosen], 1))
                now = clock.advance(1.0)
                stamp = np.full(k, now)
                runtime.submit(SampleBatch(first[chosen], values, stamp, stamp), "bench")
                t0 = time.perf_counter()
                runtime.step(now)
                costs.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                baseline.paint(np.unique(table.device[first[chosen]]))
                base_costs.append(time.perf_counter() - t0)
            ms, base_ms = statistics.median(costs) * 1000, statistics.median(base_costs) * 1000
            goal = "goal ≤ 10 ms" if share == 1.0 else "goal ≤ 1 ms"
            rows.append([f"{n:,}", "runtime (columnar)", f"{share:.0%} of devices change", f"{k:,} changed",
                         f"{ms:.2f} ms/frame", f"{base_ms / ms:.0f}x faster than baseline; {goal}"])  # fmt: skip
            rows.append([f"{n:,}", "baseline: per-device path", f"{share:.0%} of devices change", f"{k:,} changed",
                         f"{base_ms:.2f} ms/frame", "baseline"])  # fmt: skip
        runtime.stop()
    print_table(
        "Pipeline in process (one runtime step per frame: drain, apply, evaluate looks, write GPU buffers)",
        ["devices", "path", "what", "work", "cost or rate", "comparison"],
        rows,
    )
    print("baseline: the per-device path the runtime replaced (each changed device's look evaluated in Python\n"
          "from per-point objects, then written to the view one device at a time), on the same state and view.")
