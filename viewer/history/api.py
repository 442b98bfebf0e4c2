"""What every history store offers, and the numpy helpers they share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

# Quality codes, as in twinview.twin.vocabulary.Quality (kept as plain ints here: the
# store holds bytes, not enums).
GOOD, NO_DATA, STALE, BAD, OFFLINE = 0, 1, 2, 3, 4

ROLLUP_SECONDS = 600  # one rollup level: 10-minute min/max/sum/count per point
DAY = 86400.0


@dataclass
class State:
    """The last sample at or before `at` of every point that had one; sorted by id."""

    at: float
    ids: np.ndarray  # int32
    t: np.ndarray  # float64 epoch seconds
    v: np.ndarray  # float64
    q: np.ndarray  # uint8

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass
class Series:
    """One point over [t0, t1]: raw samples, or buckets (min/max/mean/count) when there are too many.

    level is "raw" (t, v, q are the samples; vmin = vmax = v), "raw-binned" (raw
    samples aggregated here into buckets) or "rollup" (read from stored
    10-minute rollups, never touching raw samples).
    """

    point: int
    level: str
    t: np.ndarray
    v: np.ndarray  # value, or bucket mean
    vmin: np.ndarray
    vmax: np.ndarray
    count: np.ndarray
    q: np.ndarray | None = None
    bucket_seconds: float = 0.0

    def __len__(self) -> int:
        return int(self.t.size)


@dataclass
class Retention:
    """Raw samples are kept raw_days, rollups rollup_days (None: forever)."""

    raw_days: float | None = None
    rollup_days: float | None = None

    def cutoffs(self, now: float) -> tuple[float | None, float | None]:
        raw = None if self.raw_days is None else now - self.raw_days * DAY
        roll = None if self.rollup_days is None else now - self.rollup_days * DAY
        return raw, roll


@dataclass
class Stats:
    samples: int = 0  # samples received by append()
    written: int = 0  # samples durable in the write-ahead file or in blocks
    bytes: int = 0  # bytes on disk
    extra: dict = field(default_factory=dict)


def as_batch(point_ids, t, v, quality=None):
    """Validate and convert one append() batch to (int32, float64, float64, uint8) arrays."""
    ids = np.ascontiguousarray(point_ids, np.int32)
    t = np.ascontiguousarray(t, np.float64)
    v = np.ascontiguousarray(v, np.float64)
    if quality is None:
        q = np.zeros(ids.shape, np.uint8)
    else:
        q = np.ascontiguousarray(quality, np.uint8)
    if not (ids.ndim == t.ndim == v.ndim == q.ndim == 1) or not (ids.size == t.size == v.size == q.size):
        raise ValueError("append: point_ids, t, v and quality must be 1-D arrays of one length")
    if ids.size and ids.min() < 0:
        raise ValueError("append: point ids must be >= 0 (see Store.ids)")
    if not np.all(np.isfinite(t)):
        raise ValueError("append: sample times must be finite")
    return ids, t, v, q


class LastValues:
    """Per point, the newest (t, v, q) seen so far; merge() keeps the newer (later source wins ties)."""

    def __init__(self, size: int = 0):
        self.t = np.full(size, -np.inf)
        self.v = np.zeros(size)
        self.q = np.zeros(size, np.uint8)

    def _grow(self, n: int) -> None:
        if n > self.t.size:
            extra = max(n, 2 * self.t.size) - self.t.size
            self.t = np.concatenate((self.t, np.full(extra, -np.inf)))
            self.v = np.concatenate((self.v, np.zeros(extra)))
            self.q = np.concatenate((self.q, np.zeros(extra, np.uint8)))

    def merge(self, ids, t, v, q, at: float | None = None, unique: bool = False) -> None:
        """Fold in samples (only those at or before `at`); unique: ids has no repeats."""
        if at is not None:
            keep = t <= at
            if not keep.all():
                ids, t, v, q = ids[keep], t[keep], v[keep], q[keep]
        if ids.size == 0:
            return
        self._grow(int(ids.max()) + 1)
        if not unique:
            if ids.size > 1 and not np.all(t[1:] >= t[:-1]):
                order = np.argsort(t, kind="stable")
                ids, t, v, q = ids[order], t[order], v[order], q[order]
            last = np.full(self.t.size, -1, np.int64)
            np.maximum.at(last, ids, np.arange(ids.size))
            pick = last[last >= 0]
            ids, t, v, q = ids[pick], t[pick], v[pick], q[pick]
        newer = t >= self.t[ids]
        ids = ids[newer]
        self.t[ids] = t[newer]
        self.v[ids] = v[newer]
        self.q[ids] = q[newer]

    def drop_before(self, cutoff: float) -> None:
        old = self.t < cutoff
        self.t[old] = -np.inf

    def state(self, at: float, only: np.ndarray | None = None) -> State:
        ids = np.flatnonzero(np.isfinite(self.t)).astype(np.int32)
        if only is not None:
            ids = np.intersect1d(ids, np.asarray(only, np.int32))
        return State(at, ids, self.t[ids].copy(), self.v[ids].copy(), self.q[ids].copy())


def bin_series(point: int, t: np.ndarray, v: np.ndarray, q: np.ndarray, t0: float, t1: float,
               max_points: int) -> Series:
    """Raw samples as a Series: as they are when few enough, else min/max/mean buckets."""
    if t.size <= max_points:
        return Series(point, "raw", t, v, v.copy(), v.copy(), np.ones(t.size, np.int64), q)
    width = _nice_width((t1 - t0) / max_points)
    good = (q == GOOD) & np.isfinite(v)
    b = np.floor(t[good] / width).astype(np.int64)
    return _buckets(point, "raw-binned", b, v[good], v[good], v[good], np.ones(b.size, np.int64), width)


def bin_rollups(point: int, bucket: np.ndarray, n: np.ndarray, vmin: np.ndarray, vmax: np.ndarray,
                vsum: np.ndarray, t0: float, t1: float, max_points: int) -> Series:
    """Stored rollup rows (bucket start seconds) regrouped into at most max_points buckets."""
    # a whole multiple of the stored level, so every stored bucket falls in one of ours
    width = float(ROLLUP_SECONDS * max(1, math.ceil((t1 - t0) / max(max_points, 1) / ROLLUP_SECONDS)))
    b = np.floor(bucket / width).astype(np.int64)
    return _buckets(point, "rollup", b, vmin, vmax, vsum, n, width, sums=True)


def _buckets(point, level, b, vmin, vmax, vsum_or_v, n, width, sums=False) -> Series:
    if b.size == 0:
        e = np.zeros(0)
        return Series(point, level, e, e, e, e, np.zeros(0, np.int64), None, width)
    order = np.argsort(b, kind="stable")
    b, vmin, vmax, s, n = b[order], vmin[order], vmax[order], vsum_or_v[order], n[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    cnt = np.add.reduceat(n, starts)
    total = np.add.reduceat(s if sums else s * 1.0, starts)
    return Series(
        point, level, b[starts] * width, total / np.maximum(cnt, 1),
        np.minimum.reduceat(vmin, starts), np.maximum.reduceat(vmax, starts), cnt, None, width,
    )


def _nice_width(seconds: float) -> float:
    """A bucket width of at least `seconds` from 1-2-5 steps of seconds, minutes, hours, days."""
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    for s in steps:
        if s >= seconds:
            return float(s)
    return 86400.0 * math.ceil(seconds / 86400.0)


def ids_array(ids: Iterable[int] | np.ndarray | None) -> np.ndarray | None:
    return None if ids is None else np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int32)
