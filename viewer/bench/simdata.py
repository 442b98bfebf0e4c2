"""Realistic telemetry for benchmarks and tests: the project's own plant simulator, as numpy batches.

`simulated_batches(site, seconds)` steps connectors.simulator.Simulator over a
site (a synthetic site from twinview.site.synthetic, or the demo plant) and
turns its Sample events into (names, [(ids, t, v, q), ...]) batches, one per
step: numbers as they are, booleans 0/1, enum states as their index.
Timestamps are milliseconds (what devices put in their payloads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinview.history.api import BAD, GOOD


def point_names(site) -> list[str]:
    return [f"{d.id}/{p.id}" for d in site.devices for p in d.points]


def simulated_batches(site, seconds: float, step: float = 0.1, start: float = 1_767_225_600.0, seed: int = 0,
                      rate: float = 1.0):
    """(names, batches): every sample of `seconds` of simulated time over `site` (a manifest Site)."""
    from twinview.connectors.base import Sample
    from twinview.connectors.simulator.plant import Simulator

    names = point_names(site)
    index = {n: i for i, n in enumerate(names)}
    states = {f"{d.id}/{p.id}": {s: k for k, s in enumerate(p.states)} for d in site.devices for p in d.points
              if p.kind == "enum"}
    sim = Simulator(site, seed=seed, faults=True, rate=rate)
    batches = []
    steps = int(round(seconds / step))
    for k in range(1, steps + 1):
        now = round(start + k * step, 3)
        ids, vals, qs = [], [], []
        for e in sim.step(now):
            if not isinstance(e, Sample):
                continue
            key = f"{e.device}/{e.point}"
            i = index.get(key)
            if i is None:
                continue
            v, q = e.value, GOOD
            if isinstance(v, bool):
                v = 1.0 if v else 0.0
            elif isinstance(v, str):
                v = float(states.get(key, {}).get(v, -1))
                q = GOOD if v >= 0 else BAD
            elif v is None:
                v, q = float("nan"), BAD
            ids.append(i)
            vals.append(float(v))
            qs.append(q)
        if ids:
            n = len(ids)
            batches.append((np.array(ids, np.int32), np.full(n, now), np.array(vals), np.array(qs, np.uint8)))
    return names, batches


def synthetic_site(workdir: Path, devices: int):
    """A generated site of `devices` devices (cached in workdir), loaded as a manifest Site."""
    from twinview.site.manifest import load_manifest
    from twinview.site.synthetic import generate_site

    site_dir = Path(workdir) / f"site-{devices}"
    if not (site_dir / "site.toml").exists():
        generate_site(site_dir, devices, seed=0)
    site, _ = load_manifest(site_dir)
    return site


def shifted(batches, seconds: float):
    """The same batches `seconds` later (to extend a simulated recording without re-simulating)."""
    return [(i, t + seconds, v, q) for i, t, v, q in batches]
