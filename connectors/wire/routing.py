"""The one path every raw (topic, payload) message takes into events: decode, count, deliver.

Used by the MQTT, websocket and replay connectors. It never raises: whatever a
payload does, it is counted in the connector's stats and, when its topic names a
point, delivered as a bad Sample so the point shows it.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from twinview.connectors.base import ConnectorStats, Sample, Sink

Tap = Callable[[str, bytes, float], None]
RESTART_GAP = 1000  # a sequence number this far below the last one: the device restarted and counts anew


class Router:
    """Decodes raw messages with a TopicMap and hands the events to a sink."""

    def __init__(self, topic_map, stats: ConnectorStats, sink: Sink | None = None, tap: Tap | None = None):
        self.topic_map = topic_map
        self.stats = stats
        self.sink = sink
        self.tap = tap  # sees every raw message before decoding (e.g. a Recorder)
        self.internal_errors = 0
        self.on_loss: Callable[[int, str], None] | None = None  # called with (missing, topic) on a sequence gap
        self._seq: dict[str, int] = {}

    def handle(self, topic: str, payload: bytes, recv_ts: float | None = None) -> int:
        """Process one message; returns how many events were delivered."""
        if recv_ts is None:
            recv_ts = time.time()
        try:
            if self.tap is not None:
                self.tap(topic, payload, recv_ts)
            events = self.topic_map.events(topic, payload, recv_ts)
            if events is None:
                with self.stats._lock:
                    self.stats.unknown_topic += 1
                return 0
            self.stats.count()
            if b'"seq"' in (payload if isinstance(payload, bytes) else payload.encode("utf-8", "replace")):
                self._sequence(topic, payload)
            sink = self.sink
            for ev in events:
                if type(ev) is Sample and ev.error is not None:
                    self.stats.count_bad(f"{topic}: {_preview(payload)}", ev.error)
                if sink is not None:
                    sink(ev)
            return len(events)
        except Exception as exc:  # noqa: BLE001 - the boundary: nothing may escape into an I/O thread
            return self._fail(topic, payload, recv_ts, exc)

    def _sequence(self, topic: str, payload: bytes | str) -> None:
        """Devices that number their messages per topic ("seq") let the twin count what never arrived."""
        try:
            seq = json.loads(payload).get("seq")
        except (ValueError, AttributeError, RecursionError):
            return
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        last = self._seq.get(topic)
        self._seq[topic] = seq if last is None or seq > last or seq < last - RESTART_GAP else last
        if last is not None and last < seq:
            missing = seq - last - 1
            if missing > 0:
                with self.stats._lock:
                    self.stats.lost += missing
                if self.on_loss is not None:
                    self.on_loss(missing, topic)

    def _fail(self, topic: str, payload: bytes, recv_ts: float, exc: BaseException) -> int:
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"[:200]
        try:
            self.stats.count()
            self.stats.count_bad(f"{topic}: {_preview(payload)}", str(reason))
            if not hasattr(exc, "reason"):
                self.internal_errors += 1
            targets = self.topic_map.points.get(topic) if isinstance(topic, str) else None
            if not targets or self.sink is None:
                return 0
            for device, spec in targets:
                self.sink(Sample(device, spec.id, None, recv_ts, None, str(reason)))
            return len(targets)
        except Exception:  # noqa: BLE001
            self.internal_errors += 1
            return 0


def _preview(payload: bytes | str) -> str:
    try:
        head = payload[:60]
        if isinstance(head, (bytes, bytearray, memoryview)):
            head = bytes(head).decode("utf-8", "replace")
        return head + ("..." if len(payload) > 60 else "")
    except Exception:  # noqa: BLE001
        return "<unprintable>"
