"""Shared helpers for the history tests: simulated telemetry and brute-force answers to compare with."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def demo_batches(seconds: float = 300.0, step: float = 0.5):
    """(names, batches) of the demo plant's simulator, `seconds` of simulated time."""
    from twinview.cli import demo_site_path
    from twinview.bench.simdata import simulated_batches
    from twinview.site.manifest import load_manifest

    site, _ = load_manifest(demo_site_path())
    names, batches = simulated_batches(site, seconds, step=step)
    return tuple(names), tuple(batches)


def concat(batches):
    return tuple(np.concatenate(c) for c in zip(*batches))


def brute_state(batches, at: float) -> dict[int, tuple[float, float, int]]:
    """Point -> (t, v, q) of the last sample at or before `at` (the later one wins a tie)."""
    ids, t, v, q = concat(batches)
    last: dict[int, tuple[float, float, int]] = {}
    for i, tt, vv, qq in zip(ids.tolist(), t.tolist(), v.tolist(), q.tolist()):
        if tt <= at and (i not in last or tt >= last[i][0]):
            last[i] = (tt, vv, qq)
    return last


def assert_state_equals(state, want: dict) -> None:
    assert state.ids.tolist() == sorted(want), "points with a value at T"
    for k, pid in enumerate(state.ids.tolist()):
        tt, vv, qq = want[pid]
        assert state.t[k] == tt, (pid, state.t[k], tt)
        assert np.array_equal(np.float64(state.v[k]).view(np.int64), np.float64(vv).view(np.int64)), (pid, state.v[k], vv)
        assert state.q[k] == qq, pid


def step_batch(k: int, points: int = 300, start: float = 1_767_225_600.0):
    """Batch number k of a deterministic recording (any process can regenerate it)."""
    rng = np.random.default_rng(k)
    ids = rng.choice(points, size=points // 3, replace=False).astype(np.int32)
    t = np.full(ids.size, round(start + k * 0.1, 3))
    v = np.round(50 + 10 * np.sin(k / 50 + ids) + rng.normal(0, 0.2, ids.size), 2)
    q = np.where(rng.random(ids.size) < 0.02, 3, 0).astype(np.uint8)
    return ids, t, v, q
