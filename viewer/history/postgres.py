"""The same recorder, writing to PostgreSQL: for when one machine is outgrown.

Several twinview processes (ingest workers, serve replicas, the CLI) then share
one history. The schema is plain PostgreSQL and runs unchanged on TimescaleDB
(make twinview_samples a hypertable on t: `SELECT create_hypertable(
'twinview_samples', 't', migrate_data => true)`; retention can then use
drop_chunks) and on Citus (`SELECT create_distributed_table('twinview_samples',
'point_id')`, `create_distributed_table('twinview_rollups', 'point_id')` and
`create_reference_table('twinview_points')`). Nothing here uses an extension.

Tables:
  twinview_points   (site, name) -> id, ids from one sequence, so they are stable and unique across sites
  twinview_samples  point_id, t timestamptz, v double precision, q smallint; index (point_id, t DESC)
  twinview_rollups  point_id, bucket (10-minute start), n, vmin, vmax, vsum; primary key (point_id, bucket)
  twinview_settings site -> raw_days, rollup_days

Batches go in with COPY (text, built from the numpy arrays), rollups are
upserted from the same batch in the same transaction. Time is stored at
PostgreSQL's resolution, the microsecond.
"""

from __future__ import annotations

import math

import numpy as np

from .api import ROLLUP_SECONDS, Retention, State, Stats, as_batch, bin_rollups, bin_series, ids_array
from .segments import rollup_rows

RAW_SECONDS = 86400.0  # ranges up to a day are read raw; longer ones from rollups

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS twinview_point_id_seq AS integer MINVALUE 0 START 0;
CREATE TABLE IF NOT EXISTS twinview_points (
    id integer PRIMARY KEY,
    site text NOT NULL,
    name text NOT NULL,
    UNIQUE (site, name)
);
CREATE TABLE IF NOT EXISTS twinview_samples (
    point_id integer NOT NULL,
    t timestamptz NOT NULL,
    v double precision,
    q smallint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS twinview_samples_point_t ON twinview_samples (point_id, t DESC);
CREATE TABLE IF NOT EXISTS twinview_rollups (
    point_id integer NOT NULL,
    bucket timestamptz NOT NULL,
    n bigint NOT NULL,
    vmin double precision,
    vmax double precision,
    vsum double precision,
    PRIMARY KEY (point_id, bucket)
);
CREATE TABLE IF NOT EXISTS twinview_settings (
    site text PRIMARY KEY,
    raw_days double precision,
    rollup_days double precision
);
"""


def _fmt_time(t: np.ndarray) -> np.ndarray:
    us = np.round(t * 1e6).astype(np.int64).astype("datetime64[us]")
    return np.char.add(np.datetime_as_string(us, unit="us"), "+00")


def _fmt_float(v: np.ndarray) -> list[str]:
    out = []
    for x in v.tolist():
        if math.isnan(x):
            out.append("NaN")
        elif math.isinf(x):
            out.append("Infinity" if x > 0 else "-Infinity")
        else:
            out.append(repr(x))
    return out


class PostgresStore:
    kind = "postgres"

    def __init__(self, url: str, site_key: str, *, readonly: bool = False, retention: Retention | None = None,
                 clock=None):
        import time

        import psycopg

        self.url = url
        self.site = site_key
        self.readonly = readonly
        self.clock = clock or time.time
        self.db = psycopg.connect(url, autocommit=True)
        if not readonly:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(742001)")  # one schema creator at a time
                self.db.execute(SCHEMA)
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self.received = 0
        if retention is not None and not readonly:
            self.retention(retention.raw_days, retention.rollup_days)

    # --- names ----------------------------------------------------------------------------------

    def _load_names(self) -> None:
        for i, name in self.db.execute("SELECT id, name FROM twinview_points WHERE site = %s", (self.site,)):
            self._ids[name] = i
            self._names[i] = name

    def ids(self, names, create: bool = True) -> np.ndarray:
        names = list(names)
        missing = [n for n in dict.fromkeys(names) if n not in self._ids]
        if missing:
            self._load_names()
            missing = [n for n in missing if n not in self._ids]
        if missing and create:
            if self.readonly:
                raise PermissionError("store is open read-only: cannot add point names")
            with self.db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO twinview_points (id, site, name) VALUES (nextval('twinview_point_id_seq'), %s, %s) "
                    "ON CONFLICT (site, name) DO NOTHING",
                    [(self.site, n) for n in missing],
                )
            self._load_names()
        return np.array([self._ids.get(n, -1) for n in names], np.int32)

    def point_names(self, ids) -> list[str]:
        ids = [int(i) for i in ids]
        if any(i not in self._names for i in ids):
            self._load_names()
        return [self._names.get(i, f"#{i}") for i in ids]

    # --- writing -----------------------------------------------------------------------------------

    def append(self, point_ids, t, v, quality=None) -> None:
        """COPY the batch and upsert its rollups, in one transaction: all of it is recorded, or none."""
        if self.readonly:
            raise PermissionError("store is open read-only")
        ids, t, v, q = as_batch(point_ids, t, v, quality)
        if ids.size == 0:
            return
        lines = "\n".join(
            "\t".join(row) for row in zip(ids.astype(str).tolist(), _fmt_time(t).tolist(), _fmt_float(v),
                                          q.astype(str).tolist())
        ) + "\n"
        rows = rollup_rows(ids, t, v, q)
        with self.db.transaction():
            with self.db.cursor() as cur:
                with cur.copy("COPY twinview_samples (point_id, t, v, q) FROM STDIN") as copy:
                    copy.write(lines)
                if rows:
                    cur.execute("CREATE TEMP TABLE IF NOT EXISTS twinview_rollup_batch "
                                "(point_id integer, bucket double precision, n bigint, vmin double precision, "
                                "vmax double precision, vsum double precision) ON COMMIT DELETE ROWS")
                    with cur.copy("COPY twinview_rollup_batch FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
                    cur.execute(
                        "INSERT INTO twinview_rollups (point_id, bucket, n, vmin, vmax, vsum) "
                        "SELECT point_id, to_timestamp(bucket), n, vmin, vmax, vsum FROM twinview_rollup_batch "
                        "ON CONFLICT (point_id, bucket) DO UPDATE SET n = twinview_rollups.n + excluded.n, "
                        "vmin = least(twinview_rollups.vmin, excluded.vmin), "
                        "vmax = greatest(twinview_rollups.vmax, excluded.vmax), "
                        "vsum = twinview_rollups.vsum + excluded.vsum"
                    )
        self.received += ids.size

    def flush(self) -> None:
        pass  # every append() is committed before it returns

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- reading ------------------------------------------------------------------------------------

    def state_at(self, at: float, ids=None) -> State:
        only = ids_array(ids)
        sql = (
            "SELECT DISTINCT ON (s.point_id) s.point_id, extract(epoch FROM s.t)::double precision, s.v, s.q "
            "FROM twinview_samples s JOIN twinview_points p ON p.id = s.point_id "
            "WHERE p.site = %s AND s.t <= to_timestamp(%s) "
        )
        params: list = [self.site, min(at, 1e11)]
        if only is not None:
            sql += "AND s.point_id = ANY(%s) "
            params.append(only.tolist())
        sql += "ORDER BY s.point_id, s.t DESC"
        rows = self.db.execute(sql, params).fetchall()
        a = np.array(rows, np.float64).reshape(-1, 4)
        return State(at, a[:, 0].astype(np.int32), a[:, 1], a[:, 2], a[:, 3].astype(np.uint8))

    def latest(self, ids=None) -> State:
        return self.state_at(math.inf, ids)

    def samples(self, t0: float, t1: float, ids=None):
        """(ids, t, v, q) of every sample with t0 < t <= t1 (of `ids`, or all the site's points), in time order."""
        only = ids_array(ids)
        sql = ("SELECT s.point_id, extract(epoch FROM s.t)::double precision, s.v, s.q FROM twinview_samples s "
               "JOIN twinview_points p ON p.id = s.point_id WHERE p.site = %s AND s.t > to_timestamp(%s) "
               "AND s.t <= to_timestamp(%s) ")
        params: list = [self.site, max(t0, -1e11), min(t1, 1e11)]
        if only is not None:
            sql += "AND s.point_id = ANY(%s) "
            params.append(only.tolist())
        a = np.array(self.db.execute(sql + "ORDER BY s.t", params).fetchall(), np.float64).reshape(-1, 4)
        return a[:, 0].astype(np.int32), a[:, 1], a[:, 2], a[:, 3].astype(np.uint8)

    def series(self, point: int, t0: float, t1: float, max_points: int = 1000, level: str = "auto"):
        point = int(point)
        if level == "raw" or (level == "auto" and t1 - t0 <= RAW_SECONDS):
            rows = self.db.execute(
                "SELECT extract(epoch FROM t)::double precision, v, q FROM twinview_samples "
                "WHERE point_id = %s AND t >= to_timestamp(%s) AND t <= to_timestamp(%s) ORDER BY t",
                (point, t0, t1),
            ).fetchall()
            a = np.array(rows, np.float64).reshape(-1, 3)
            return bin_series(point, a[:, 0], a[:, 1], a[:, 2].astype(np.uint8), t0, t1, max_points)
        lo = math.floor(t0 / ROLLUP_SECONDS) * ROLLUP_SECONDS
        rows = self.db.execute(
            "SELECT extract(epoch FROM bucket)::double precision, n, vmin, vmax, vsum FROM twinview_rollups "
            "WHERE point_id = %s AND bucket >= to_timestamp(%s) AND bucket <= to_timestamp(%s) ORDER BY bucket",
            (point, lo, t1),
        ).fetchall()
        a = np.array(rows, np.float64).reshape(-1, 5)
        return bin_rollups(point, a[:, 0], a[:, 1].astype(np.int64), a[:, 2], a[:, 3], a[:, 4], t0, t1, max_points)

    # --- retention ------------------------------------------------------------------------------------

    @property
    def retention_policy(self) -> Retention:
        row = self.db.execute("SELECT raw_days, rollup_days FROM twinview_settings WHERE site = %s",
                              (self.site,)).fetchone()
        return Retention(*row) if row else Retention()

    def retention(self, raw_days: float | None, rollup_days: float | None) -> None:
        self.db.execute(
            "INSERT INTO twinview_settings (site, raw_days, rollup_days) VALUES (%s, %s, %s) "
            "ON CONFLICT (site) DO UPDATE SET raw_days = excluded.raw_days, rollup_days = excluded.rollup_days",
            (self.site, raw_days, rollup_days),
        )

    def apply_retention(self, now: float | None = None) -> dict:
        now = self.clock() if now is None else now
        raw_cut, roll_cut = self.retention_policy.cutoffs(now)
        dropped = {"samples": 0, "rollup_rows": 0}
        points = "(SELECT id FROM twinview_points WHERE site = %s)"
        if raw_cut is not None:
            cur = self.db.execute(f"DELETE FROM twinview_samples WHERE point_id IN {points} AND t < to_timestamp(%s)",
                                  (self.site, raw_cut))
            dropped["samples"] = cur.rowcount
        if roll_cut is not None:
            cur = self.db.execute(
                f"DELETE FROM twinview_rollups WHERE point_id IN {points} AND bucket + interval '{ROLLUP_SECONDS} seconds'"
                " <= to_timestamp(%s)", (self.site, roll_cut))
            dropped["rollup_rows"] = cur.rowcount
        return dropped

    def stats(self) -> Stats:
        n = self.db.execute(
            "SELECT count(*) FROM twinview_samples WHERE point_id IN (SELECT id FROM twinview_points WHERE site = %s)",
            (self.site,)).fetchone()[0]
        size = self.db.execute("SELECT pg_total_relation_size('twinview_samples')").fetchone()[0]
        return Stats(self.received, int(n), int(size))
