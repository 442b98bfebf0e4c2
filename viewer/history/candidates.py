"""The stores the embedded default was measured against (twinview bench --only history).

Both keep the same API as SegmentStore for what the benchmark asks (ids, append,
flush, close, state_at, series, stats) as plain row stores, the way one would
first write them:

- SqliteStore: one row per sample in SQLite (WAL mode, synchronous=NORMAL, an
  index on (point, t)); one transaction per append().
- DuckdbStore: one row per sample in DuckDB (columnar, compressed), one
  transaction per append(); batches go in as numpy arrays, not row by row.

They are not used by twinview otherwise.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from .api import Series, State, Stats, as_batch
from .segments import disk_bytes


class _Names:
    def __init__(self):
        self._ids: dict[str, int] = {}

    def load(self, rows):
        self._ids = {n: int(i) for i, n in rows}

    def missing(self, names):
        return [n for n in dict.fromkeys(names) if n not in self._ids]

    def add(self, names) -> list[tuple[int, str]]:
        new = []
        for n in names:
            i = len(self._ids)
            self._ids[n] = i
            new.append((i, n))
        return new

    def ids(self, names):
        return np.array([self._ids.get(n, -1) for n in names], np.int32)


class SqliteStore:
    kind = "sqlite"

    def __init__(self, root: str | Path, readonly: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "history.sqlite"
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
            self.db.execute("CREATE TABLE IF NOT EXISTS samples (p INTEGER, t REAL, v REAL, q INTEGER)")
            self.db.execute("CREATE INDEX IF NOT EXISTS samples_pt ON samples (p, t)")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.names = _Names()
        self.names.load(self.db.execute("SELECT id, name FROM points").fetchall())
        self.received = 0

    def ids(self, names):
        names = list(names)
        missing = self.names.missing(names)
        if missing:
            rows = self.names.add(missing)
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO points (id, name) VALUES (?, ?)", rows)
            self.db.execute("COMMIT")
        return self.names.ids(names)

    def append(self, point_ids, t, v, quality=None):
        ids, t, v, q = as_batch(point_ids, t, v, quality)
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)",
                            zip(ids.tolist(), t.tolist(), v.tolist(), q.tolist()))
        self.db.execute("COMMIT")
        self.received += ids.size

    def flush(self):
        pass

    def close(self):
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass
        self.db.close()

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM samples").fetchone()[0]

    def state_at(self, at: float, ids=None) -> State:
        rows = self.db.execute("SELECT p, max(t), v, q FROM samples WHERE t <= ? GROUP BY p", (at,)).fetchall()
        a = np.array(rows, np.float64).reshape(-1, 4)
        return State(at, a[:, 0].astype(np.int32), a[:, 1], a[:, 2], a[:, 3].astype(np.uint8))

    def series(self, point, t0, t1, max_points=1000):
        width = max((t1 - t0) / max_points, 1e-9)
        rows = self.db.execute(
            "SELECT CAST((t - ?) / ? AS INTEGER) AS b, count(*), min(v), max(v), avg(v) FROM samples "
            "WHERE p = ? AND t >= ? AND t <= ? AND q = 0 GROUP BY b ORDER BY b",
            (t0, width, int(point), t0, t1),
        ).fetchall()
        return _rows_series(point, rows, t0, width)

    def stats(self) -> Stats:
        return Stats(self.received, self.count(), disk_bytes(self.root))


class DuckdbStore:
    kind = "duckdb"

    def __init__(self, root: str | Path, readonly: bool = False):
        import duckdb

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(str(self.root / "history.duckdb"), read_only=readonly)
        if not readonly:
            self.db.execute("CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name VARCHAR UNIQUE)")
            self.db.execute("CREATE TABLE IF NOT EXISTS samples (p INTEGER, t DOUBLE, v DOUBLE, q UTINYINT)")
        self.names = _Names()
        self.names.load(self.db.execute("SELECT id, name FROM points").fetchall())
        self.received = 0

    def ids(self, names):
        names = list(names)
        missing = self.names.missing(names)
        if missing:
            rows = self.names.add(missing)
            batch = {"id": np.array([r[0] for r in rows], np.int32), "name": np.array([r[1] for r in rows])}  # noqa: F841
            self.db.execute("INSERT INTO points SELECT * FROM batch")
        return self.names.ids(names)

    def append(self, point_ids, t, v, quality=None):
        ids, t, v, q = as_batch(point_ids, t, v, quality)
        batch = {"p": ids, "t": t, "v": v, "q": q}  # noqa: F841  (scanned by name by DuckDB)
        self.db.execute("INSERT INTO samples SELECT * FROM batch")
        self.received += ids.size

    def flush(self):
        pass

    def close(self):
        try:
            self.db.execute("CHECKPOINT")
        except Exception:
            pass
        self.db.close()

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM samples").fetchone()[0]

    def state_at(self, at: float, ids=None) -> State:
        r = self.db.execute(
            "SELECT p, max(t), arg_max(v, t), arg_max(q, t) FROM samples WHERE t <= ? GROUP BY p ORDER BY p", [at]
        ).fetchnumpy()
        return State(at, r["p"].astype(np.int32), *(np.asarray(r[k]) for k in list(r)[1:3]),
                     np.asarray(r[list(r)[3]], np.uint8))

    def series(self, point, t0, t1, max_points=1000):
        width = max((t1 - t0) / max_points, 1e-9)
        rows = self.db.execute(
            "SELECT CAST(floor((t - ?) / ?) AS BIGINT) AS b, count(*), min(v), max(v), avg(v) FROM samples "
            "WHERE p = ? AND t >= ? AND t <= ? AND q = 0 GROUP BY b ORDER BY b",
            [t0, width, int(point), t0, t1],
        ).fetchall()
        return _rows_series(point, rows, t0, width)

    def stats(self) -> Stats:
        return Stats(self.received, self.count(), disk_bytes(self.root))


def _rows_series(point, rows, t0, width):
    a = np.array(rows, np.float64).reshape(-1, 5)
    return Series(int(point), "raw-binned", t0 + a[:, 0] * width, a[:, 4], a[:, 2], a[:, 3], a[:, 1].astype(np.int64),
                  None, width)


CANDIDATES = {"segments": None, "sqlite": SqliteStore, "duckdb": DuckdbStore}


def open_candidate(kind: str, root: str | Path, readonly: bool = False, **options):
    if kind == "segments":
        from .segments import SegmentStore

        return SegmentStore(root, readonly=readonly, **options)
    return CANDIDATES[kind](root, readonly=readonly)


def count_samples(store) -> int:
    """Samples stored (for the loss check after a kill)."""
    if hasattr(store, "count"):
        return store.count()
    return store.stats().written

