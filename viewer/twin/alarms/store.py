"""Alarm state and history on disk: an append-only JSONL journal plus a snapshot.

A stop-gap until the history store (twinview.history) takes alarm history: the
engine talks to the small `AlarmStore` interface below, so moving is a new
class, not a new engine.

Journal ({site state folder}/alarms.jsonl, beside the audit log): one JSON
line per lifecycle event, written with one write() on an O_APPEND descriptor
and fsync'd per batch:

    {"ts": 1700000000.0, "w": "<writer>", "id": "P-101/motor_temp.high", "ev": "activated",
     "st": {"active": true, "acked": false, ...}, "dev": "P-101", "area": "...", "sev": "high", ...}

`st` holds the fields of the alarm's state that the event changed (the engine
writes them all; `twinview alarms ack` only what it changed), so the state of
every alarm is the merge of its `st`s in file order. The snapshot
(alarms.snapshot.json, replaced atomically) holds that merge up to a byte
offset of the journal, so loading reads the snapshot and the journal's tail.
Several processes may append (a running viewer and the command line); each
reads the lines the others wrote (`tail`). Unreadable lines (a torn last line
after a power cut) are skipped and counted.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from twinview.site.paths import site_state_folder
from typing import Any, Iterator, Protocol

STORE_ENV = "TWINVIEW_ALARMS"
JOURNAL_NAME = "alarms.jsonl"
SNAPSHOT_SUFFIX = ".snapshot.json"


def default_store_path(site_name: str) -> Path:
    """$TWINVIEW_ALARMS, else $XDG_STATE_HOME/twinview/<site>/alarms.jsonl (beside audit.jsonl)."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    return site_state_folder(site_name) / JOURNAL_NAME


class AlarmStore(Protocol):
    """What the engine needs of a store (a JSONL file here; the history store later)."""

    writer: str

    def load(self) -> dict[str, dict[str, Any]]: ...  # alarm id -> state fields

    def append(self, records: list[dict[str, Any]]) -> None: ...

    def tail(self) -> list[dict[str, Any]]: ...  # records other writers appended since the last call

    def snapshot(self, states: dict[str, dict[str, Any]]) -> None: ...

    def history(self, alarm_id: str | None = None, since: float | None = None) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class MemoryStore:
    """No persistence (tests, tools): the same interface, kept in a list."""

    def __init__(self) -> None:
        self.writer = uuid.uuid4().hex[:12]
        self.records: list[dict[str, Any]] = []
        self.errors = 0

    def load(self) -> dict[str, dict[str, Any]]:
        return merge_states(self.records)

    def append(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)

    def tail(self) -> list[dict[str, Any]]:
        return []

    def snapshot(self, states: dict[str, dict[str, Any]]) -> None:
        pass

    def history(self, alarm_id: str | None = None, since: float | None = None) -> Iterator[dict[str, Any]]:
        for rec in self.records:
            if (alarm_id is None or rec.get("id") == alarm_id) and (since is None or rec.get("ts", 0) >= since):
                yield rec

    def close(self) -> None:
        pass


def merge_states(records: Any, into: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The state of every alarm: each record's `st` merged over the ones before it."""
    states = into if into is not None else {}
    for rec in records:
        aid = rec.get("id")
        st = rec.get("st")
        if isinstance(aid, str) and isinstance(st, dict):
            states.setdefault(aid, {}).update(st)
    return states


class JsonlStore:
    """The journal + snapshot pair described in the module docstring."""

    def __init__(self, path: str | Path, snapshot_every: int = 2000):
        self.path = Path(path)
        self.snapshot_path = self.path.with_name(self.path.name + SNAPSHOT_SUFFIX)
        self.writer = uuid.uuid4().hex[:12]
        self.snapshot_every = snapshot_every
        self.errors = 0  # unreadable lines and failed writes, counted (shown by the engine)
        self.last_error = ""
        self._fd: int | None = None
        self._read_offset = 0  # journal bytes this instance has read (or written)
        self._since_snapshot = 0

    # --- reading ----------------------------------------------------------------------

    def _read_snapshot(self) -> tuple[dict[str, dict[str, Any]], int]:
        try:
            data = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
            states, offset = data["states"], int(data["offset"])
            if not isinstance(states, dict):
                raise ValueError("states is not an object")
            size = self.path.stat().st_size if self.path.exists() else 0
            if offset > size:  # the journal was replaced: the snapshot does not describe it
                raise ValueError("snapshot is newer than the journal")
            return states, offset
        except FileNotFoundError:
            return {}, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._count(f"{self.snapshot_path}: unreadable snapshot ({exc}); reading the whole journal")
            return {}, 0

    def _lines(self, start: int) -> tuple[list[dict[str, Any]], int]:
        """Complete records from byte `start`, and the offset after the last complete line."""
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return [], start
        end = data.rfind(b"\n") + 1  # a line still being written is left for the next read
        out = []
        for n, raw in enumerate(data[:end].splitlines()):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as exc:
                self._count(f"{self.path}: unreadable line at byte {start}+ ({exc})")
                continue
            out.append(rec)
        return out, start + end

    def load(self) -> dict[str, dict[str, Any]]:
        states, offset = self._read_snapshot()
        records, self._read_offset = self._lines(offset)
        return merge_states(records, states)

    def tail(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size <= self._read_offset:
            return []
        records, self._read_offset = self._lines(self._read_offset)
        return [r for r in records if r.get("w") != self.writer]

    def history(self, alarm_id: str | None = None, since: float | None = None) -> Iterator[dict[str, Any]]:
        records, _ = self._lines(0)
        for rec in records:
            if alarm_id is not None and rec.get("id") != alarm_id:
                continue
            ts = rec.get("ts")
            if since is not None and not (isinstance(ts, (int, float)) and ts >= since):
                continue
            yield rec

    # --- writing ----------------------------------------------------------------------

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        data = b"".join(
            (json.dumps({**r, "w": r.get("w", self.writer)}, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                        default=str) + "\n").encode("utf-8")
            for r in records
        )  # fmt: skip
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            view = memoryview(data)
            while view:  # our own lines are read back by tail() and skipped by their writer id
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            self._count(f"{self.path}: cannot write ({exc.strerror or exc})")
            return
        self._since_snapshot += len(records)

    @property
    def wants_snapshot(self) -> bool:
        return self._since_snapshot >= self.snapshot_every

    def snapshot(self, states: dict[str, dict[str, Any]]) -> None:
        """Write the merged state up to the current journal offset (atomically: temp file, fsync, rename)."""
        try:
            offset = self.path.stat().st_size if self.path.exists() else 0
            if offset != self._read_offset:
                return  # lines not yet read back by tail() (ours or others'): next time
            tmp = self.snapshot_path.with_name(self.snapshot_path.name + ".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"offset": offset, "states": states}, f, ensure_ascii=False, default=str)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.snapshot_path)
            self._since_snapshot = 0
        except OSError as exc:
            self._count(f"{self.snapshot_path}: cannot write ({exc.strerror or exc})")

    def _count(self, text: str) -> None:
        self.errors += 1
        self.last_error = text

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
