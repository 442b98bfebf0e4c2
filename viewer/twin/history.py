"""A bounded, lazily grown ring buffer of (time, value) for one numeric point."""

from __future__ import annotations

import numpy as np

INITIAL_CAPACITY = 16


class History:
    """Keeps at most `max_len` samples, one per `min_interval` seconds.

    Storage starts at INITIAL_CAPACITY and doubles up to max_len, so a large site
    whose points mostly are never charted does not pay for full buffers up front.
    Time is cut into buckets of min_interval (the chart's resolution,
    history_seconds / max_len); within a bucket the newest sample replaces the
    previous one, so the last entry is always the latest value.
    """

    __slots__ = ("max_len", "min_interval", "_t", "_v", "_start", "_n", "last_t", "_bucket")

    def __init__(self, max_len: int, min_interval: float = 0.0):
        self.max_len = max(2, int(max_len))
        self.min_interval = min_interval
        self._t: np.ndarray | None = None
        self._v: np.ndarray | None = None
        self._start = 0
        self._n = 0
        self.last_t = -np.inf
        self._bucket = -np.inf  # when the newest entry's bucket began

    def append(self, t: float, v: float) -> bool:
        """Store one sample; False when it replaced the newest entry (same bucket)."""
        self.last_t = t
        if self._n and t - self._bucket < self.min_interval:
            i = (self._start + self._n - 1) % self._t.shape[0]  # type: ignore[union-attr]
            self._t[i] = t  # type: ignore[index]
            self._v[i] = v  # type: ignore[index]
            return False
        self._bucket = t
        if self._t is None:
            cap = min(INITIAL_CAPACITY, self.max_len)
            self._t = np.empty(cap)
            self._v = np.empty(cap)
        cap = self._t.shape[0]
        if self._n == cap and cap < self.max_len:
            self._grow(min(cap * 2, self.max_len))
            cap = self._t.shape[0]
        if self._n < cap:
            i = (self._start + self._n) % cap
            self._n += 1
        else:  # full: overwrite the oldest
            i = self._start
            self._start = (self._start + 1) % cap
        self._t[i] = t
        self._v[i] = v
        return True

    def _grow(self, cap: int) -> None:
        t, v = self.arrays()
        self._t = np.empty(cap)
        self._v = np.empty(cap)
        self._t[: len(t)] = t
        self._v[: len(v)] = v
        self._start = 0

    def arrays(self, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (times, values), oldest first, optionally only those at or after `since`."""
        if self._t is None or self._n == 0:
            return np.empty(0), np.empty(0)
        cap = self._t.shape[0]
        idx = (self._start + np.arange(self._n)) % cap
        t, v = self._t[idx], self._v[idx]
        if since is not None:
            keep = t >= since
            t, v = t[keep], v[keep]
        return t, v

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        return 0 if self._t is None else self._t.nbytes + self._v.nbytes
