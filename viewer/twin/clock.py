"""The runtime's clock, injected: the wall clock when live, a clock a test or a replay steps otherwise.

Everything time-based in the twin (staleness deadlines, command timeouts) asks
the runtime's clock, never time.time(), so the same code runs live, replayed
faster than real time, and in tests that move time by hand.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, as the twin should see them now."""

    live: bool

    def now(self) -> float: ...


class WallClock:
    """The present: time.time()."""

    live = True

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told: tests and replays step it."""

    live = False

    def __init__(self, start: float = 1_700_000_000.0):
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        """Move to `t` (never backwards: a twin's deadlines only move forward)."""
        self._t = max(self._t, float(t))

    def advance(self, seconds: float) -> float:
        self._t += max(0.0, float(seconds))
        return self._t
