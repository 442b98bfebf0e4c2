"""The embedded history store: compressed columnar blocks behind a write-ahead file.

Layout of a store folder (one per site):

    points.tsv          "device/point" names -> ids (see names.py)
    store.toml          retention settings (optional)
    wal/<seq>.wal       write-ahead files: every append() is one CRC'd record
    blocks/<seq>-<tmin_ms>-<tmax_ms>.tvb   sealed, compressed blocks (see codec.py)
    ckpt/<seq>-<horizon_ms>-<tmin_ms>.tvb  the state of every point after block <seq>
    rollups.db          10-minute min/max/sum/count per point (SQLite, WAL mode)
    LOCK                held (flock) by the one writer

Writing. append() writes one record to the current write-ahead file with a
single write() (in the page cache, so it survives the process being killed) and
keeps the arrays in memory. A background thread fsyncs that file every
`fsync_interval` seconds (so it also survives a power cut, up to that much), and
when the file holds `block_samples` samples or is `block_seconds` old, the
writer starts a new one and the thread turns the sealed one into a block: encode,
write to a temporary name, fsync, rename, add the block's rollups and remember
the block in the same SQLite transaction, then delete the write-ahead file.
Every few blocks it also writes a checkpoint: the last sample of every point.

Reopening after a crash: write-ahead files whose block exists are deleted,
others are read up to their last whole record (a torn tail is dropped) and
sealed; blocks whose rollups were not committed get them.

Reading, here or in another process (open with readonly=True): blocks are
immutable once renamed into place; the write-ahead files are read up to their
last whole record; rollups.db is read through SQLite. state_at(T) starts from
the newest checkpoint that is entirely at or before T, folds in the anchors of
later blocks that end before T, and decodes only the blocks that straddle T.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import queue
import sqlite3
import struct
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import codec
from .api import (
    GOOD, ROLLUP_SECONDS, LastValues, Retention, Series, State, Stats, as_batch, bin_rollups, bin_series, without_timeless,
    ids_array,
)
from .config import load_retention, save_retention
from .names import NameTable

WAL_MAGIC = b"TVW1"
_REC = struct.Struct("<4sIII")  # magic, n, crc32 of payload, reserved
RAW_BLOCK_LIMIT = 64  # a series touching more blocks than this is read from rollups
MAX_BACKLOG = 8  # sealed write-ahead files waiting for the compactor before append() waits
BLOCK_CACHE_BYTES = 64 << 20  # compressed blocks kept in memory for repeated reads
DECODED_CACHE = 3  # fully decoded blocks kept (about 21 MB per million samples)


class StoreLocked(RuntimeError):
    pass


def _ms_floor(t: float) -> int:
    return int(math.floor(t * 1000.0))


def _ms_ceil(t: float) -> int:
    return int(math.ceil(t * 1000.0))


def read_wal(path: Path):
    """(ids, t, v, q) of every whole, intact record in a write-ahead file; stops at the first bad one."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    parts = []
    off = 0
    while off + _REC.size <= len(data):
        magic, n, crc, _ = _REC.unpack_from(data, off)
        end = off + _REC.size + 21 * n
        if magic != WAL_MAGIC or end > len(data):
            break
        payload = memoryview(data)[off + _REC.size : end]
        if zlib.crc32(payload) != crc:
            break
        ids = np.frombuffer(payload, np.int32, n, 0)
        t = np.frombuffer(payload, np.float64, n, 4 * n)
        v = np.frombuffer(payload, np.float64, n, 12 * n)
        q = np.frombuffer(payload, np.uint8, n, 20 * n)
        parts.append((ids, t, v, q))
        off = end
    return parts


def _concat(parts):
    if not parts:
        return codec._empty()
    return tuple(np.concatenate(c) for c in zip(*parts))


def _latest_sorted(ids, t, v, q, at: float):
    """From arrays sorted by id then time descending: each point's newest sample at or before `at`."""
    keep = t <= at
    ids, t, v, q = ids[keep], t[keep], v[keep], q[keep]
    if ids.size == 0:
        return ids, t, v, q
    first = np.r_[True, ids[1:] != ids[:-1]]
    return ids[first], t[first], v[first], q[first]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentStore:
    """See the module docstring. One writer per folder; any number of readonly readers."""

    kind = "segments"

    def __init__(self, root: str | Path, *, readonly: bool = False, retention: Retention | None = None,
                 block_samples: int = 1_000_000, block_seconds: float = 600.0, fsync_interval: float = 0.5,
                 checkpoint_every: int = 8, maintenance_interval: float = 10.0, clock=time.time):
        self.root = Path(root)
        self.readonly = readonly
        self.block_samples = int(block_samples)
        self.block_seconds = float(block_seconds)
        self.fsync_interval = float(fsync_interval)
        self.checkpoint_every = int(checkpoint_every)
        self.maintenance_interval = float(maintenance_interval)
        self.clock = clock
        self.wal_dir, self.block_dir, self.ckpt_dir = self.root / "wal", self.root / "blocks", self.root / "ckpt"
        if readonly:
            if not (self.root / "points.tsv").exists() and not self.block_dir.exists():
                raise FileNotFoundError(f"no history store at {self.root}")
        else:
            for d in (self.root, self.wal_dir, self.block_dir, self.ckpt_dir):
                d.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise StoreLocked(f"another process is writing {self.root}; open it with readonly=True to read")
        self.names = NameTable(self.root / "points.tsv", writable=not readonly)
        self._retention = retention if retention is not None else load_retention(self.root)
        if retention is not None and not readonly:
            save_retention(self.root, retention)
        self._lock = threading.Lock()  # guards the in-memory index and the unsealed batches
        self._writing = threading.RLock()  # append() and sealing (flush() may come from another thread)
        self._maint = threading.Lock()  # one block-file mutation at a time (sealing, retention)
        self._blocks: dict[int, tuple[float, float, Path]] = {}
        self._ckpts: list[tuple[int, float, Path, float]] = []
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._blk_cache: OrderedDict[str, codec.Block] = OrderedDict()
        self._blk_bytes = 0
        self._dec_cache: OrderedDict[int, tuple] = OrderedDict()
        self.received = 0
        self.rejected = 0  # samples refused for having no usable time (NaN or infinite)
        self._closed = False
        self._error: BaseException | None = None
        if readonly:
            return
        self._db = self._connect(write=True)
        self._scan()
        self._recover()
        self._state = LastValues()
        self._state_seq = -1
        self._horizon = -math.inf
        self._since_ckpt = 0
        self._load_state()
        self._seq = max([*self._blocks, -1]) + 1
        self._pending: list[tuple] = []
        self._pending_n = 0
        self._tspan = (math.inf, -math.inf)
        self._started = time.monotonic()
        self._sealed: dict[int, tuple] = {}
        self._fd = self._open_wal(self._seq)
        self._queue: queue.Queue = queue.Queue()
        self._space = threading.Semaphore(MAX_BACKLOG)
        self._last_maint = 0.0
        self._thread = threading.Thread(target=self._run, name="twinview-history", daemon=True)
        self._thread.start()

    # --- names -----------------------------------------------------------------------------

    def ids(self, names, create: bool = True) -> np.ndarray:
        """Stable int32 ids for "device/point" names (new names are registered; -1 if not and create=False)."""
        return self.names.ids(names, create=create)

    def point_names(self, ids) -> list[str]:
        return self.names.names(ids)

    # --- writing -----------------------------------------------------------------------------

    def append(self, point_ids, t, v, quality=None) -> None:
        """Record a batch of samples. One thread at a time; returns once they are in the write-ahead file."""
        if self.readonly:
            raise PermissionError("store is open read-only")
        if self._error is not None:
            raise RuntimeError("history compactor failed") from self._error
        ids, t, v, q, timeless = without_timeless(*as_batch(point_ids, t, v, quality))
        self.rejected += timeless
        n = ids.size
        if n == 0:
            return
        if ids.max() >= len(self.names):
            raise ValueError("append: unknown point id (register names with Store.ids first)")
        payload = b"".join((ids.tobytes(), t.tobytes(), v.tobytes(), q.tobytes()))
        rec = _REC.pack(WAL_MAGIC, n, zlib.crc32(payload), 0) + payload
        tmin, tmax = float(t.min()), float(t.max())
        with self._writing:  # the record and the in-memory batch land in the same write-ahead file
            view = memoryview(rec)
            while view:
                k = os.write(self._fd, view)
                view = view[k:]
            with self._lock:
                self._pending.append((ids.copy(), t.copy(), v.copy(), q.copy()))
                self._pending_n += n
                self.received += n
                self._tspan = (min(self._tspan[0], tmin), max(self._tspan[1], tmax))
            # a block holds at most block_samples, and at most block_seconds of wall time or of sample time
            # (the same thing live; when replaying a recording faster than real time, the latter)
            if (self._pending_n >= self.block_samples or time.monotonic() - self._started >= self.block_seconds
                    or self._tspan[1] - self._tspan[0] >= self.block_seconds):
                self._rotate()

    def _open_wal(self, seq: int) -> int:
        fd = os.open(self.wal_dir / f"{seq:010d}.wal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fsync_dir(self.wal_dir)
        return fd

    def _rotate(self) -> None:
        """Seal the current write-ahead file and hand it to the compactor; start the next one."""
        with self._writing:
            self._rotate_locked()

    def _rotate_locked(self) -> None:
        while not self._space.acquire(timeout=0.5):  # back-pressure: at most MAX_BACKLOG sealed files in memory
            if self._error is not None:
                raise RuntimeError("history compactor failed") from self._error
        with self._lock:
            if not self._pending:
                self._space.release()
                self._started = time.monotonic()
                return
            seq, fd = self._seq, self._fd
            batch = _concat(self._pending)
            self._sealed[seq] = batch
            self._pending, self._pending_n = [], 0
            self._tspan = (math.inf, -math.inf)
            self._seq += 1
            self._fd = self._open_wal(self._seq)
            self._started = time.monotonic()
        self._queue.put((seq, fd))

    def flush(self) -> None:
        """Seal what was appended so far into a block and wait until it is on disk with its rollups."""
        if self.readonly:
            return
        self._rotate()
        done = threading.Event()
        self._queue.put(("wait", done))
        while not done.wait(0.1):
            if self._error is not None:
                raise RuntimeError("history compactor failed") from self._error
        if self._error is not None:
            raise RuntimeError("history compactor failed") from self._error

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.readonly:
            return
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join()
            os.close(self._fd)
            try:
                os.unlink(self.wal_dir / f"{self._seq:010d}.wal")
            except FileNotFoundError:
                pass
            self._db.close()
            os.close(self._lock_fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the compactor thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.fsync_interval)
            except queue.Empty:
                item = ()
            try:
                with self._lock:
                    fd = self._fd  # only this thread closes write-ahead files, so fsync outside the lock
                os.fsync(fd)
                if item is None:
                    return
                if item and item[0] == "wait":
                    item[1].set()
                    continue
                if item:
                    seq, old_fd = item
                    os.fsync(old_fd)
                    os.close(old_fd)
                    self._seal(seq)
                    self._space.release()
                if self.clock() - self._last_maint >= self.maintenance_interval:
                    self._last_maint = self.clock()
                    self.apply_retention()
            except BaseException as e:  # keep the reason; append() and flush() raise it
                self._error = e
                if item and item[0] == "wait":
                    item[1].set()
                if item is None:
                    return

    def _seal(self, seq: int) -> None:
        ids, t, v, q = self._sealed[seq]
        with self._maint:
            path = self._write_block(seq, ids, t, v, q)
            self._apply_rollups(seq, ids, t, v, q)
            with self._lock:
                self._blocks[seq] = (float(t.min()), float(t.max()), path)
                del self._sealed[seq]
            os.unlink(self.wal_dir / f"{seq:010d}.wal")
            self._advance_state(seq, ids, t, v, q)

    def _write_block(self, seq, ids, t, v, q, directory: Path | None = None) -> Path:
        directory = directory or self.block_dir
        data = codec.encode_block(ids, t, v, q, {"seq": seq})
        name = f"{seq:010d}-{_ms_floor(float(t.min()))}-{_ms_ceil(float(t.max()))}.tvb"
        tmp = directory / (name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
        _fsync_dir(directory)
        return directory / name

    def _advance_state(self, seq, ids, t, v, q) -> None:
        self._state.merge(ids, t, v, q)
        self._state_seq = seq
        self._horizon = max(self._horizon, float(t.max()))
        self._since_ckpt += 1
        if self._since_ckpt >= self.checkpoint_every:
            self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        st = self._state.state(self._horizon)
        if len(st) == 0:
            return
        data = codec.encode_block(st.ids, st.t, st.v, st.q, {"seq": self._state_seq, "horizon": self._horizon})
        name = f"{self._state_seq:010d}-{_ms_ceil(self._horizon)}-{_ms_floor(float(st.t.min()))}.tvb"
        tmp = self.ckpt_dir / (name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.ckpt_dir / name)
        with self._lock:
            self._ckpts.append((self._state_seq, _ms_ceil(self._horizon) / 1000.0, self.ckpt_dir / name,
                                _ms_floor(float(st.t.min())) / 1000.0))
            self._ckpts.sort()
        self._since_ckpt = 0

    # --- rollups -----------------------------------------------------------------------------

    def _connect(self, write: bool) -> sqlite3.Connection:
        path = self.root / "rollups.db"
        if write:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS rollup (point INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,"
                " vmin REAL, vmax REAL, vsum REAL, PRIMARY KEY (point, bucket)) WITHOUT ROWID"
            )
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)")
        else:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _reader_db(self) -> sqlite3.Connection | None:
        db = getattr(self._local, "db", None)
        if db is None:
            if not (self.root / "rollups.db").exists():
                return None
            db = self._local.db = self._connect(write=False)
        return db

    def _rolled_seq(self) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k='rolled_seq'").fetchone()
        return -1 if row is None else int(row[0])

    def _apply_rollups(self, seq, ids, t, v, q) -> None:
        rows = rollup_rows(ids, t, v, q)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO rollup (point, bucket, n, vmin, vmax, vsum) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (point, bucket) DO UPDATE SET n = n + excluded.n, vmin = min(vmin, excluded.vmin), "
                "vmax = max(vmax, excluded.vmax), vsum = vsum + excluded.vsum",
                rows,
            )
            db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rolled_seq', ?)", (seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- opening ------------------------------------------------------------------------------

    def _scan(self) -> None:
        # A reader lists the folders again only when they changed (a block or checkpoint added, renamed or
        # removed). Folder times are coarse (a change in the same clock tick may leave them equal), so
        # the listing is trusted only once the folders have been still for two seconds.
        try:
            stamp = (os.stat(self.block_dir).st_mtime_ns, os.stat(self.ckpt_dir).st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if (stamp is not None and stamp == getattr(self, "_scan_stamp", None)
                and time.time_ns() - max(stamp) > 2_000_000_000):
            return
        self._scan_stamp = stamp
        blocks: dict[int, tuple[float, float, Path]] = {}
        known = getattr(self, "_names_seen", {})  # file name -> parsed entry: a rescan parses only new files
        seen: dict[str, tuple] = {}
        for e in os.scandir(self.block_dir) if self.block_dir.exists() else ():
            if not e.name.endswith(".tvb"):
                continue
            entry = known.get(e.name)
            if entry is None:
                seq_s, tmin_s, tmax_s = e.name[:-4].split("-")
                entry = (int(seq_s), int(tmin_s) / 1000.0, int(tmax_s) / 1000.0, Path(e.path))
            seen[e.name] = entry
            seq, tmin = entry[0], entry[1]
            old = blocks.get(seq)
            if old is None or tmin > old[0]:  # a retention rewrite of the same block: the newer one
                blocks[seq] = entry[1:]
        self._names_seen = seen
        by_seq: dict[int, tuple] = {}
        for e in os.scandir(self.ckpt_dir) if self.ckpt_dir.exists() else ():
            if e.name.endswith(".tvb"):
                seq_s, h_s, tmin_s = e.name[:-4].split("-")
                c = (int(seq_s), int(h_s) / 1000.0, Path(e.path), int(tmin_s) / 1000.0)
                if c[0] not in by_seq or c[3] > by_seq[c[0]][3]:  # a retention rewrite: the newer one
                    by_seq[c[0]] = c
        ckpts = sorted(by_seq.values())
        with self._lock:
            self._blocks, self._ckpts = blocks, ckpts

    def _recover(self) -> None:
        for tmp in [*self.block_dir.glob("*.tmp"), *self.ckpt_dir.glob("*.tmp")]:
            tmp.unlink()
        for wal in sorted(self.wal_dir.glob("*.wal")):
            seq = int(wal.stem)
            if seq in self._blocks:
                wal.unlink()
                continue
            ids, t, v, q = _concat(read_wal(wal) or [])
            if ids.size:
                path = self._write_block(seq, ids, t, v, q)
                self._blocks[seq] = (float(t.min()), float(t.max()), path)
            wal.unlink()
        rolled = self._rolled_seq()
        for seq in sorted(s for s in self._blocks if s > rolled):
            blk = codec.Block(self._blocks[seq][2].read_bytes())
            self._apply_rollups(seq, *blk.decode())

    def _load_state(self) -> None:
        start = -1
        if self._ckpts:
            seq, horizon, path, _ = self._ckpts[-1]
            ids, t, v, q = codec.Block(path.read_bytes()).anchors()
            self._state.merge(ids, t, v, q, unique=True)
            self._horizon, self._state_seq, start = horizon, seq, seq
        for seq in sorted(s for s in self._blocks if s > start):
            tmin, tmax, path = self._blocks[seq]
            self._state.merge(*codec.Block(path.read_bytes()).anchors(), unique=True)
            self._horizon = max(self._horizon, tmax)
            self._state_seq = seq
            self._since_ckpt += 1

    # --- reading --------------------------------------------------------------------------------

    def _snapshot(self):
        """(blocks, checkpoints, tail) as of now; tail: [(seq, batch)] not yet in a block, oldest first.

        A block and the write-ahead file it came from are never both used: a block is
        renamed into place before its file is deleted, so a reader lists blocks, then
        write-ahead files, then blocks again, and takes from the second listing only the
        blocks whose file it did not read."""
        if self.readonly:
            self._scan()
            with self._lock:
                blocks, ckpts = dict(self._blocks), list(self._ckpts)
            tail, read = [], set()
            for wal in sorted(self.wal_dir.glob("*.wal")):
                seq = int(wal.stem)
                if seq in blocks:
                    continue
                parts = read_wal(wal)
                if parts is None:  # sealed and deleted meanwhile: the second listing has its block
                    continue
                read.add(seq)
                tail.extend((seq, p) for p in parts)
            self._scan()
            with self._lock:
                for seq, b in self._blocks.items():
                    if seq not in blocks and seq not in read:
                        blocks[seq] = b
                ckpts = list(self._ckpts)
            return blocks, ckpts, tail
        with self._lock:
            tail = [(s, self._sealed[s]) for s in sorted(self._sealed)] + [(self._seq, p) for p in self._pending]
            return dict(self._blocks), list(self._ckpts), tail

    def _block(self, path: Path) -> codec.Block:
        """A block file, from a small cache: scrubbing a timeline reads the same few blocks again and again."""
        key = str(path)
        with self._cache_lock:
            blk = self._blk_cache.get(key)
            if blk is not None:
                self._blk_cache.move_to_end(key)
                return blk
        blk = codec.Block(path.read_bytes())
        with self._cache_lock:
            self._blk_cache[key] = blk
            self._blk_bytes += len(blk.payload)
            while self._blk_bytes > BLOCK_CACHE_BYTES and len(self._blk_cache) > 1:
                _, old = self._blk_cache.popitem(last=False)
                self._blk_bytes -= len(old.payload)
                self._dec_cache.pop(id(old), None)
        return blk

    def _decoded(self, blk: codec.Block):
        """Every sample of a block (read-only arrays), the last DECODED_CACHE decodes kept."""
        with self._cache_lock:
            hit = self._dec_cache.get(id(blk))
            if hit is not None and hit[0] is blk:
                self._dec_cache.move_to_end(id(blk))
                return hit[1]
        cols = codec._readonly(blk.decode())
        with self._cache_lock:
            self._dec_cache[id(blk)] = (blk, cols)
            while len(self._dec_cache) > DECODED_CACHE:
                self._dec_cache.popitem(last=False)
        return cols

    def _read_block(self, blocks, seq) -> codec.Block | None:
        """Block `seq`; if retention rewrote it meanwhile, the rewritten one; None if it is gone."""
        for attempt in range(2):
            try:
                return self._block(blocks[seq][2])
            except FileNotFoundError:
                if attempt:
                    return None
                if self.readonly:
                    self._scan()
                with self._lock:
                    now = self._blocks.get(seq)
                if now is None or now[2] == blocks[seq][2]:
                    return None
                blocks[seq] = now
        return None

    def state_at(self, at: float, ids=None) -> State:
        """The last sample at or before `at` of every point (or of `ids`)."""
        blocks, ckpts, tail = self._snapshot()
        lv = LastValues(len(self.names))
        start = -1
        usable = [c for c in ckpts if c[1] <= at]
        if usable:
            seq, _, path, _ = usable[-1]
            try:
                lv.merge(*self._block(path).anchors(), unique=True)
                start = seq
            except FileNotFoundError:  # removed by retention meanwhile: read the blocks instead
                pass
        for seq in sorted(s for s in blocks if s > start):
            tmin, tmax, path = blocks[seq]
            if tmin > at:
                continue
            blk = self._read_block(blocks, seq)
            if blk is None:
                continue
            if tmax <= at:
                lv.merge(*blk.anchors(), unique=True)
            else:
                lv.merge(*_latest_sorted(*self._decoded(blk), at), unique=True)
        for _, part in tail:
            lv.merge(*part, at=at)
        return lv.state(at, ids_array(ids))

    def latest(self, ids=None) -> State:
        return self.state_at(math.inf, ids)

    def first_time(self) -> float | None:
        """The time of the oldest sample still kept (None for an empty store)."""
        blocks, ckpts, tail = self._snapshot()
        times = [b[0] for b in blocks.values()] + [c[3] for c in ckpts]
        times += [float(p[1].min()) for _, p in tail if p[1].size]
        return min(times) if times else None

    def samples(self, t0: float, t1: float, ids=None):
        """(ids, t, v, q) of every sample with t0 < t <= t1 (of `ids`, or all points), in time order.

        With state_at(t0) this replays history into a runtime: the state at the start, then every
        change after it, as it happened (ties keep their arrival order)."""
        blocks, _, tail = self._snapshot()
        only = ids_array(ids)
        parts = []
        for seq in sorted(s for s, (a, b, _) in blocks.items() if a <= t1 and b > t0):
            blk = self._read_block(blocks, seq)
            if blk is None:
                continue
            if only is not None and only.size == 1:
                p = int(only[0])
                part = blk.decode(bucket=p >> codec.BUCKET_SHIFT, point=p)
            else:
                part = self._decoded(blk)
            parts.append(tuple(c[::-1] for c in part))  # oldest first within each point
        parts += [p for _, p in tail]
        pid, t, v, q = _concat(parts)
        keep = (t > t0) & (t <= t1)
        if only is not None:
            keep &= np.isin(pid, only)
        pid, t, v, q = pid[keep], t[keep], v[keep], q[keep]
        order = np.argsort(t, kind="stable")
        return pid[order], t[order], v[order], q[order]

    def series(self, point: int, t0: float, t1: float, max_points: int = 1000, level: str = "auto") -> Series:
        """One point over [t0, t1]: raw samples when few blocks hold them, else the stored rollups.

        level "raw" or "rollup" forces one (an export wants raw whatever the range)."""
        point = int(point)
        blocks, _, tail = self._snapshot()
        hits = sorted(s for s, (a, b, _) in blocks.items() if a <= t1 and b >= t0)
        raw_cut, _ = self._retention.cutoffs(self.clock())
        auto = len(hits) <= RAW_BLOCK_LIMIT and (raw_cut is None or t0 >= raw_cut)
        if level == "raw" or (level == "auto" and auto):
            parts = []
            bucket = point >> codec.BUCKET_SHIFT
            for seq in hits:
                blk = self._read_block(blocks, seq)
                if blk is not None:
                    parts.append(blk.decode(bucket=bucket, point=point))
            parts += [_one_point(p, point) for _, p in tail]
            ids, t, v, q = _concat(parts)
            keep = (t >= t0) & (t <= t1)
            t, v, q = t[keep], v[keep], q[keep]
            order = np.argsort(t, kind="stable")
            return bin_series(point, t[order], v[order], q[order], t0, t1, max_points)
        db = self._reader_db() if self.readonly else self._thread_db()
        lo = math.floor(t0 / ROLLUP_SECONDS) * ROLLUP_SECONDS
        rows, rolled = [], -1
        if db is not None:
            db.execute("BEGIN")  # the rows and the mark of which blocks they include, as one snapshot
            try:
                rows = db.execute(
                    "SELECT bucket, n, vmin, vmax, vsum FROM rollup WHERE point = ? AND bucket >= ? AND bucket <= ? "
                    "ORDER BY bucket", (point, lo, t1)).fetchall()
                row = db.execute("SELECT v FROM meta WHERE k='rolled_seq'").fetchone()
                rolled = -1 if row is None else int(row[0])
            finally:
                db.execute("COMMIT")
        # what the rollups do not hold yet: the tail, and blocks sealed but not yet rolled up (a reader in
        # another process can see a block a moment before its rollups are committed)
        recent = [_one_point(p, point) for seq, p in tail if seq > rolled]
        for seq in sorted(s for s in blocks if s > rolled):
            blk = self._read_block(blocks, seq)
            if blk is not None:
                recent.append(blk.decode(bucket=point >> codec.BUCKET_SHIFT, point=point))
        tail_rows = rollup_rows(*_concat(recent))
        rows = [r[1:] for r in tail_rows if lo <= r[1] <= t1] + rows
        if not rows:
            return bin_rollups(point, *(np.zeros(0),) * 5, t0, t1, max_points)
        a = np.array(rows, np.float64)
        return bin_rollups(point, a[:, 0], a[:, 1].astype(np.int64), a[:, 2], a[:, 3], a[:, 4], t0, t1, max_points)

    def _thread_db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect(write=False)
        return db

    # --- retention -----------------------------------------------------------------------------

    @property
    def retention_policy(self) -> Retention:
        return self._retention

    def retention(self, raw_days: float | None, rollup_days: float | None) -> None:
        """Keep raw samples raw_days and rollups rollup_days (None: forever); saved in store.toml,
        applied by the background thread within maintenance_interval (or now: apply_retention())."""
        self._retention = Retention(raw_days, rollup_days)
        if not self.readonly:
            save_retention(self.root, self._retention)

    def apply_retention(self, now: float | None = None) -> dict:
        """Drop raw samples and rollups that are due; returns what was dropped. Ingest goes on meanwhile."""
        if self.readonly:
            raise PermissionError("store is open read-only")
        now = self.clock() if now is None else now
        raw_cut, roll_cut = self._retention.cutoffs(now)
        dropped = {"blocks": 0, "rewritten": 0, "samples": 0, "rollup_rows": 0}
        if raw_cut is not None:
            with self._maint:
                with self._lock:
                    blocks = dict(self._blocks)
                for seq, (tmin, tmax, path) in sorted(blocks.items()):
                    if tmin >= raw_cut:
                        continue
                    blk = codec.Block(path.read_bytes())
                    if tmax < raw_cut:
                        dropped["samples"] += blk.header["n"]
                        with self._lock:
                            del self._blocks[seq]
                        path.unlink()
                        dropped["blocks"] += 1
                        continue
                    ids, t, v, q = blk.decode()
                    keep = t >= raw_cut
                    dropped["samples"] += int((~keep).sum())
                    new = self._write_block(seq, ids[keep], t[keep], v[keep], q[keep])
                    with self._lock:
                        self._blocks[seq] = (float(t[keep].min()), float(t[keep].max()), new)
                    path.unlink()
                    dropped["rewritten"] += 1
                with self._lock:
                    ckpts = list(self._ckpts)
                kept = []
                for c in ckpts:
                    seq, horizon, path, tmin = c
                    if horizon < raw_cut:
                        path.unlink(missing_ok=True)
                        continue
                    if tmin >= raw_cut:  # nothing in it is due
                        kept.append(c)
                        continue
                    ids, t, v, q = codec.Block(path.read_bytes()).anchors()
                    keep = t >= raw_cut
                    new_tmin = float(t[keep].min()) if keep.any() else horizon
                    new = self.ckpt_dir / f"{seq:010d}-{_ms_ceil(horizon)}-{_ms_floor(new_tmin)}.tvb"
                    tmp = new.with_name(new.name + ".tmp")
                    tmp.write_bytes(codec.encode_block(ids[keep], t[keep], v[keep], q[keep], {"seq": seq}))
                    os.replace(tmp, new)
                    if new != path:
                        path.unlink(missing_ok=True)
                    kept.append((seq, horizon, new, _ms_floor(new_tmin) / 1000.0))
                with self._lock:
                    self._ckpts = kept
                self._state.drop_before(raw_cut)
        if roll_cut is not None:
            with self._maint:
                cur = self._db.execute("DELETE FROM rollup WHERE bucket + ? <= ?", (ROLLUP_SECONDS, roll_cut))
                dropped["rollup_rows"] = cur.rowcount
        return dropped

    # --- figures -------------------------------------------------------------------------------

    def stats(self) -> Stats:
        blocks, _, tail = self._snapshot()
        in_blocks = 0
        for _, _, path in blocks.values():
            try:
                with open(path, "rb") as f:
                    head = f.read(8)
                    _, hlen = codec._HEAD.unpack(head)
                    in_blocks += json.loads(f.read(hlen))["n"]
            except FileNotFoundError:
                pass
        in_tail = sum(int(p[0].size) for _, p in tail)
        return Stats(self.received, in_blocks + in_tail, disk_bytes(self.root),
                     {"blocks": len(blocks), "in_blocks": in_blocks, "in_tail": in_tail})


def _one_point(part, point):
    ids, t, v, q = part
    m = ids == point
    return ids[m], t[m], v[m], q[m]


def rollup_rows(ids, t, v, q) -> list[tuple]:
    """(point, bucket start s, n, min, max, sum) per point and 10-minute bucket, good finite values only."""
    good = (q == GOOD) & np.isfinite(v)
    if not good.any():
        return []
    ids, t, v = ids[good], t[good], v[good]
    bucket = (np.floor(t / ROLLUP_SECONDS).astype(np.int64)) * ROLLUP_SECONDS
    key = (ids.astype(np.int64) << 40) | (bucket // ROLLUP_SECONDS)
    order = np.argsort(key, kind="stable")
    key, v, bucket, ids = key[order], v[order], bucket[order], ids[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    n = np.diff(np.append(starts, key.size))
    return list(zip(
        ids[starts].tolist(), bucket[starts].tolist(), n.tolist(),
        np.minimum.reduceat(v, starts).tolist(), np.maximum.reduceat(v, starts).tolist(),
        np.add.reduceat(v, starts).tolist(),
    ))


def disk_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return total
