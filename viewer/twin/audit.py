"""The append-only command audit log: one JSON line per command state transition.

Every command, allowed or refused, leaves a line for each state it reaches:
who (user, role), what (device, command, args, desired values), when (ts and
ISO time), the state, why (reason) and the outcome so far. A line is written
with a single write() on an O_APPEND descriptor, then fsync'd, before the
transition is reported anywhere else: a crash right after a command is shown as
"sent" cannot lose the "sent" line. The file is never rewritten or truncated.
A line torn by a crash mid-write is ended (a newline first) before the next
record, so the torn line is lost alone and never swallows the next one.

Several processes may share one file (viewers, `twinview command`). Each AuditLog
is an owner: its rows carry "owner" (a random id) and "pid", and while it is open
it holds an exclusive lock on a small file beside the log
(.<log name>.owners/<owner>.lock). A process that starts can thus tell a command
left in flight by a process that is gone (its lock is free) from one still in
flight in a live process (its lock is held): see owner_alive().

Location: an explicit path, else $TWINVIEW_AUDIT, else
$XDG_STATE_HOME/twinview/<site>/audit.jsonl (~/.local/state/twinview/<site>/...).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from twinview.site.paths import site_state_folder
from typing import Any, Iterable, Iterator

from .vocabulary import COMMAND_OUTCOMES, FINAL_COMMAND_STATES, CommandState

AUDIT_ENV = "TWINVIEW_AUDIT"
FINAL_STATES = tuple(str(s) for s in CommandState if s in FINAL_COMMAND_STATES)
SUCCEEDED = "succeeded"
FAILED = "failed"
UNVERIFIED = "unverified"
PENDING = "pending"


def outcome_of(state: str) -> str:
    """'succeeded' (confirmed), 'unverified', 'failed' (the other final states), else 'pending'."""
    try:
        return COMMAND_OUTCOMES.get(CommandState(state), PENDING)
    except ValueError:
        return PENDING


def owners_dir(path: str | Path) -> Path:
    """Where the owners' lock files of an audit log live: .<name>.owners beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.owners"


def owner_alive(path: str | Path, owner: Any) -> bool:
    """Is the AuditLog that wrote rows with this owner id still open in a live process?

    True while its lock file is locked. A missing lock file, or one whose lock can be
    taken (its process ended, however it ended), means gone; such a leftover file is removed.
    """
    if not isinstance(owner, str) or not re.fullmatch(r"[0-9a-f]{8,64}", owner):
        return False
    lock = owners_dir(path) / f"{owner}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        try:
            lock.unlink()
        except OSError:
            pass
        return False
    finally:
        os.close(fd)


def default_audit_path(site_name: str) -> Path:
    """$TWINVIEW_AUDIT, else $XDG_STATE_HOME/twinview/<site>/audit.jsonl (default ~/.local/state)."""
    env = os.environ.get(AUDIT_ENV)
    if env:
        return Path(env).expanduser()
    return site_state_folder(site_name) / "audit.jsonl"


def iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds, e.g. 2025-01-01T10:00:00.123Z."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class AuditLog:
    """Appends durable JSON lines. Thread-safe; one instance per file per process is enough."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._owner_fd: int | None = None
        self.owner = uuid.uuid4().hex[:16]  # this writer's id in its rows (see owner_alive)
        self.pid = os.getpid()
        self.lines = 0  # lines written by this instance
        self.torn_lines_ended = 0  # torn lines (a crash mid-write elsewhere) ended before a record
        self._readable = True

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._hold_owner_lock()
            existed = self.path.exists()
            flags = os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            try:
                self._fd = os.open(self.path, os.O_RDWR | flags, 0o600)  # read: to see a torn last line
            except PermissionError:
                self._fd = os.open(self.path, os.O_WRONLY | flags, 0o600)
                self._readable = False
            if not existed:  # make the new directory entry durable too
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        return self._fd

    def _hold_owner_lock(self) -> None:
        """Lock .<name>.owners/<owner>.lock for as long as this log is open (or the process lives)."""
        if self._owner_fd is not None:
            return
        folder = owners_dir(self.path)
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(folder / f"{self.owner}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # without it, other processes take this writer's commands for orphans: no worse than before
        self._owner_fd = fd

    def _release_owner_lock(self) -> None:
        fd, self._owner_fd = self._owner_fd, None
        if fd is None:
            return
        try:
            (owners_dir(self.path) / f"{self.owner}.lock").unlink()
        except OSError:
            pass
        os.close(fd)

    def _ends_torn(self, fd: int) -> bool:
        """Does the file end without a newline (a line torn by a crash mid-write)?"""
        if not self._readable:
            return False
        size = os.fstat(fd).st_size
        return size > 0 and os.pread(fd, 1, size - 1) != b"\n"

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record (ts and time are added when missing); returns it once it is on disk."""
        rec = dict(record)
        ts = rec.get("ts")
        if not isinstance(ts, (int, float)):
            ts = rec["ts"] = time.time()
        rec.setdefault("time", iso(ts))
        if "state" in rec:
            rec.setdefault("outcome", outcome_of(rec["state"]))
        rec.setdefault("owner", self.owner)
        rec.setdefault("pid", self.pid)
        data = (json.dumps(_jsonable(rec), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            fd = self._open()
            # Between processes: the check for a torn end and the append are one step.
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if self._ends_torn(fd):
                    data = b"\n" + data
                    self.torn_lines_ended += 1
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self.lines += 1
        return rec

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._release_owner_lock()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reading ------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | float | datetime, now: float | None = None) -> float:
    """A point in time from '2025-01-31', '2025-01-31T08:00', an ISO time with zone,
    a relative '90s' / '15m' / '2h' / '7d' (ago), or a Unix timestamp. Raises ValueError."""
    if isinstance(text, datetime):
        return (text if text.tzinfo else text.astimezone()).timestamp()
    if isinstance(text, (int, float)):
        return float(text)
    m = _RELATIVE.match(text)
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _UNIT[m.group(2).lower()]
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 2025-01-31, 2025-01-31T08:00, 15m, 2h, 7d)") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # local time
    return dt.timestamp()


def iter_audit(path: str | Path, errors: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every record in file order. Unreadable lines (e.g. a torn last line after a power
    cut) are skipped and described in `errors` when given."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as exc:
                if errors is not None:
                    errors.append(f"{path}:{n}: unreadable line ({exc})")
                continue
            yield rec


def read_audit(
    path: str | Path,
    *,
    device: str | None = None,
    user: str | None = None,
    since: str | float | datetime | None = None,
    until: str | float | datetime | None = None,
    command_id: str | None = None,
    state: str | None = None,
    command: str | None = None,
    limit: int | None = None,
    errors: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Records matching every filter given, oldest first. `command_id` matches a full id or
    a prefix (as shown by format_rows); `limit` keeps the newest N."""
    t0 = parse_since(since) if since is not None else None
    t1 = parse_since(until) if until is not None else None
    rows = []
    for rec in iter_audit(path, errors):
        ts = rec.get("ts")
        if t0 is not None and not (isinstance(ts, (int, float)) and ts >= t0):
            continue
        if t1 is not None and not (isinstance(ts, (int, float)) and ts <= t1):
            continue
        if device is not None and rec.get("device") != device:
            continue
        if user is not None and rec.get("user") != user:
            continue
        if state is not None and rec.get("state") != state:
            continue
        if command is not None and rec.get("command") != command:
            continue
        if command_id is not None and not str(rec.get("id", "")).startswith(command_id):
            continue
        rows.append(rec)
    if limit is not None:
        rows = rows[-limit:] if limit > 0 else []
    return rows


def last_states(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest record of each command id (e.g. to find commands a stopped viewer left unfinished)."""
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        cid = rec.get("id")
        if isinstance(cid, str) and rec.get("event", "transition") == "transition":
            out[cid] = rec
    return out


def _fmt_args(args: Any) -> str:
    if not isinstance(args, dict) or not args:
        return ""
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def _local_time(rec: dict[str, Any]) -> str:
    ts = rec.get("ts")
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    return str(rec.get("time", ""))


def format_rows(rows: Iterable[dict[str, Any]], as_json: bool = False) -> str:
    """Rows as a fixed-width table (local time, short id) or as JSON lines with --json."""
    rows = list(rows)
    if as_json:
        return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    header = ("TIME", "ID", "USER", "ROLE", "DEVICE", "COMMAND", "STATE", "ARGS", "REASON")
    table = [header]
    for r in rows:
        state = str(r.get("state", ""))
        if r.get("event") == "note":
            state += " (note)"
        table.append(
            (
                _local_time(r),
                str(r.get("id", ""))[:8],
                str(r.get("user", "")),
                str(r.get("role", "")),
                str(r.get("device", "")),
                str(r.get("command", "")),
                state,
                _fmt_args(r.get("args")),
                " ".join(str(r.get("reason", "")).split()),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
