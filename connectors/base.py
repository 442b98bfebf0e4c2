"""The one small interface every telemetry source implements.

A connector runs its own I/O (a thread, a socket loop, a timer) and never
touches twin state or the scene: it hands decoded Samples and status events to
a sink, which only enqueues. The render loop drains that queue once per frame
(see twinview.twin.inbox). Commands go the other way through publish().
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from twinview.twin.samples import Availability, Event, LinkState, Sample, SampleBatch

# What a connector hands the twin (defined by the twin: twinview.twin.samples).
__all__ = ["Availability", "Connector", "ConnectorStats", "Event", "LinkState", "Sample", "SampleBatch", "Sink"]

Sink = Callable[[Event], None]


@dataclass
class ConnectorStats:
    """Counters a status panel shows; updated from the I/O thread, read from the UI."""

    state: str = "idle"
    received: int = 0
    bad: int = 0
    unknown_topic: int = 0
    lost: int = 0  # messages that never arrived, from gaps in the devices' sequence numbers
    last_error: str = ""
    bad_examples: deque = field(default_factory=lambda: deque(maxlen=5))
    _rate_window: deque = field(default_factory=lambda: deque(maxlen=64))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, n: int = 1, now: float | None = None) -> None:
        with self._lock:
            self.received += n
            self._rate_window.append((now or time.monotonic(), self.received))

    def count_bad(self, example: str, error: str) -> None:
        with self._lock:
            self.bad += 1
            self.last_error = error
            self.bad_examples.append((example[:120], error[:200]))

    def rate(self, now: float | None = None) -> float:
        """Messages per second over the last few seconds."""
        now = now or time.monotonic()
        with self._lock:
            window = [(t, n) for t, n in self._rate_window if now - t <= 5.0]
        if len(window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = window[0], window[-1]
        return (n1 - n0) / max(t1 - t0, 1e-3) if t1 > t0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state,
                "received": self.received,
                "bad": self.bad,
                "unknown_topic": self.unknown_topic,
                "lost": self.lost,
                "last_error": self.last_error,
                "bad_examples": list(self.bad_examples),
            }


class Connector(ABC):
    """A source of telemetry and, optionally, a sink for commands."""

    name: str = "connector"

    def __init__(self) -> None:
        self.stats = ConnectorStats()

    @abstractmethod
    def start(self, sink: Sink) -> None:
        """Begin delivering events to sink (from any thread). Must not block for long."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering and release resources. Idempotent."""

    def publish(self, topic: str, payload: bytes, **options: Any) -> Any:
        """Send a command payload. Connectors that cannot send raise NotImplementedError."""
        raise NotImplementedError(f"{self.name} cannot publish commands")
