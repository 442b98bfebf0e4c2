"""`twinview bench --only alarms`: what alarm evaluation adds to a runtime step.

A synthetic site (pumps, tanks, valves, sensors with band and state alarms) is
stepped with a batch of new values for a share of its points each step, once
with the alarm engine and once without; the difference is the engine's cost.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from .table import print_table


def _step_ms(n: int, share: float, alarms: bool, steps: int = 30) -> tuple[float, int]:
    from twinview.connectors.simulator.plant import synthetic_site
    from twinview.twin.clock import ManualClock
    from twinview.twin.runtime import Runtime
    from twinview.twin.samples import SampleBatch

    site = synthetic_site(n)
    clock = ManualClock(1_700_000_000.0)
    rt = Runtime(site, clock)
    rules = len(rt.enable_alarms().rules) if alarms else 0
    table = rt.state.table
    rng = np.random.default_rng(0)
    lo = np.array([s.range[0] if s.range else 0.0 for s in table.specs])
    hi = np.array([s.range[1] if s.range else 1.0 for s in table.specs])
    k = max(1, int(len(table) * share))
    times = []
    current = lo + rng.random(len(table)) * (hi - lo)
    for i in range(steps + 3):
        clock.advance(0.05)
        rows = rng.choice(len(table), k, replace=False)
        # a random walk of 3 % of the range per update: some values cross a band, most do not
        current[rows] = np.clip(current[rows] + rng.normal(0, 0.03, k) * (hi[rows] - lo[rows]), lo[rows], hi[rows])
        values = current[rows]
        stamp = np.full(k, clock.now())
        rt.submit(SampleBatch(rows, values, stamp, stamp, "bench"), "bench")
        t0 = time.perf_counter()
        rt.step()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    activations = int(rt.alarms.counters["activations"]) if alarms else 0
    return statistics.median(times), rules, activations / (steps + 3)


def bench_alarms(sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        for share in (0.01, 0.1):
            base, _, _ = _step_ms(n, share, False)
            ours, rules, per_step = _step_ms(n, share, True)
            rows.append([f"{n:,}", f"{rules:,}", f"{share:.0%}", f"{per_step:.1f}", f"{base:.2f}", f"{ours:.2f}",
                         f"{ours - base:+.2f}"])  # fmt: skip
    print_table("Alarms (runtime step, new values for a share of the points as a random walk; median of 30 steps)",
                ["devices", "alarm rules", "points changed", "activations/step", "step ms without", "step ms with alarms",
                 "alarms add ms"], rows)  # fmt: skip
