"""Record raw telemetry to a file and play it back, deterministically.

Format: JSON Lines. The first line is a header, each further line one message:
    {"twinview_recording": 1, "start": 1718000000.0}
    {"t": 0.012, "topic": "plant/P-101/speed", "payload": "1450.0"}
    {"t": 0.250, "topic": "plant/P-101/raw", "payload_b64": "AAEC"}
`t` is seconds since the start; a payload that is not UTF-8 text is stored as
base64. Files without a header play from start 0.

Playback maps recording time onto a new start time (the wall clock when started,
or the one given): receive times and the payloads' own timestamps are shifted and
scaled by `speed` together, so a recording from last week still shows fresh
values. The same file with the same start_time always yields the same events.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from twinview.connectors.base import Availability, Connector, LinkState, Sample, Sink
from twinview.connectors.wire.routing import Router

FORMAT_KEY = "twinview_recording"
MAX_LINE_BYTES = 1024 * 1024


class Recorder:
    """Appends raw messages to a recording. Thread-safe; pass `record` as a connector's tap."""

    def __init__(self, path: str | Path, start: float | None = None, flush_every: int = 100):
        self.path = Path(path)
        self.start = time.time() if start is None else start
        self.count = 0
        self._flush_every = flush_every
        self._lock = threading.Lock()
        self._file = open(self.path, "w", encoding="utf-8")
        self._file.write(json.dumps({FORMAT_KEY: 1, "start": self.start}) + "\n")

    def record(self, topic: str, payload: bytes | str, recv_ts: float | None = None) -> None:
        t = (time.time() if recv_ts is None else recv_ts) - self.start
        entry: dict = {"t": round(t, 6), "topic": topic}
        if isinstance(payload, str):
            entry["payload"] = payload
        else:
            try:
                entry["payload"] = bytes(payload).decode("utf-8")
            except UnicodeDecodeError:
                entry["payload_b64"] = base64.b64encode(bytes(payload)).decode("ascii")
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line)
            self.count += 1
            if self.count % self._flush_every == 0:
                self._file.flush()

    __call__ = record

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Message:
    t: float
    topic: str
    payload: bytes


@dataclass
class Recording:
    start: float
    messages: list[Message]
    bad_lines: int = 0

    @property
    def duration(self) -> float:
        return self.messages[-1].t if self.messages else 0.0


def read_recording(path: str | Path) -> Recording:
    """Parse a recording; malformed lines are counted and skipped. Messages sorted by t (stable)."""
    start = 0.0
    messages: list[Message] = []
    bad = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            if len(raw) > MAX_LINE_BYTES:
                bad += 1
                continue
            line = raw.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
                if n == 0 and isinstance(entry, dict) and FORMAT_KEY in entry:
                    start = float(entry.get("start", 0.0))
                    continue
                t = float(entry["t"])
                topic = entry["topic"]
                if "payload_b64" in entry:
                    payload = base64.b64decode(entry["payload_b64"], validate=True)
                else:
                    payload = str(entry["payload"]).encode("utf-8")
                if not isinstance(topic, str) or not t >= 0 or t == float("inf"):
                    raise ValueError("bad t or topic")
            except (ValueError, KeyError, TypeError, RecursionError):
                bad += 1
                continue
            messages.append(Message(t, topic, payload))
    messages.sort(key=lambda m: m.t)
    return Recording(start, messages, bad)


class ReplayConnector(Connector):
    """Plays a recording through a TopicMap, in real time (scaled by speed) or stepped by hand."""

    name = "replay"

    def __init__(
        self,
        path: str | Path,
        topic_map,
        speed: float = 1.0,
        loop: bool = False,
        start_time: float | None = None,
        name: str | None = None,
    ):
        super().__init__()
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.path = Path(path)
        self.topic_map = topic_map
        self.speed = float(speed)
        self.loop = loop
        self.start_time = start_time
        if name:
            self.name = name
        self.recording = read_recording(self.path)
        self.stats.bad += self.recording.bad_lines
        self._collected: list = []
        self._router = Router(topic_map, self.stats, self._collected.append)
        self._pos = 0  # index of the next message
        self._lap = 0
        self._t = 0.0  # recording-time position of the play head within the current lap
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.finished = False

    # --- stepping (deterministic, no sleeping) ----------------------------------------

    @property
    def lap_length(self) -> float:
        """Recording seconds per lap when looping (duration plus one second of quiet)."""
        return self.recording.duration + 1.0

    def _begin(self) -> float:
        if self.start_time is None:
            self.start_time = time.time()
        return self.start_time

    def _events_for(self, m: Message) -> list:
        """Decode one message at its original time, then move it onto the playback clock."""
        rec = self.recording
        lap_offset = self._lap * self.lap_length
        original_recv = rec.start + m.t
        self._collected.clear()
        self._router.handle(m.topic, m.payload, original_recv)
        start = self._begin()
        out = []
        for ev in self._collected:
            recv = start + (m.t + lap_offset) / self.speed
            if type(ev) is Sample:
                src = ev.source_ts
                if src is not None:
                    src = start + (src - rec.start + lap_offset) / self.speed
                ev = replace(ev, recv_ts=recv, source_ts=src)
            elif type(ev) is Availability:
                ev = replace(ev, recv_ts=recv)
            out.append(ev)
        self._collected.clear()
        return out

    def step(self, until: float) -> list:
        """Events of every message with recording time <= until (seconds since start,
        counting laps when looping). Never sleeps."""
        self._begin()
        out: list = []
        msgs = self.recording.messages
        if not msgs:
            self.finished = True
            return out
        while True:
            if self._pos >= len(msgs):
                if not self.loop:
                    self.finished = True
                    break
                self._lap += 1
                self._pos = 0
            m = msgs[self._pos]
            if m.t + self._lap * self.lap_length > until:
                break
            out.extend(self._events_for(m))
            self._pos += 1
        self._t = until
        return out

    def drain(self) -> list:
        """Every remaining event of the recording (one lap when looping)."""
        if self.loop:
            return self.step((self._lap + 1) * self.lap_length - 1e-9)
        return self.step(float("inf"))

    def iter_batches(self, frame: float = 1 / 30) -> Iterator[tuple[float, list]]:
        """(playback time, events) per frame of recording time; stops at the end (no loop)."""
        t = 0.0
        end = self.recording.duration
        while t <= end + frame:
            t += frame
            yield self._begin() + t / self.speed, self.step(t)

    # --- real time ----------------------------------------------------------------

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._begin()
        sink(LinkState(self.name, "up", str(self.path), time.time()))
        self.stats.state = "up"
        self._thread = threading.Thread(target=self._run, args=(sink,), name="twinview-replay", daemon=True)
        self._thread.start()

    def _run(self, sink: Sink) -> None:
        wall0 = time.monotonic()
        while not self._stop.is_set():
            until = (time.monotonic() - wall0) * self.speed
            for ev in self.step(until):
                sink(ev)
            if self.finished:
                self.stats.state = "ended"
                return
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2.0)
