"""`twinview history`: read a site's recorded history (raw samples, rollups, or the state at an instant).

    twinview history SITE --device P-101 [--point speed] --since 2h [--until T] [--format csv|json|parquet]
    twinview history SITE --at 2026-11-21T10:00          # every point's last value at that instant
    twinview history SITE ... --store PATH|postgresql://...

It opens the store read-only, so it works while a viewer or recorder writes it.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import open_store
from .api import Series, State

QUALITY_NAMES = {0: "good", 1: "no_data", 2: "stale", 3: "bad", 4: "offline"}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _num(v: float):
    return v if math.isfinite(v) else None


def _names(store) -> list[tuple[int, str]]:
    if hasattr(store, "names") and hasattr(store.names, "items"):
        return store.names.items()
    store._load_names()  # PostgresStore
    return sorted(store._names.items())


def select_points(store, device: str | None, point: str | None) -> list[tuple[int, str]]:
    out = []
    for pid, name in _names(store):
        dev, _, pt = name.partition("/")
        if (device is None or dev == device) and (point is None or pt == point):
            out.append((pid, name))
    return out


def series_rows(name: str, s: Series) -> list[dict]:
    dev, _, pt = name.partition("/")
    if s.level == "raw":
        return [{"t": t, "time": _iso(t), "device": dev, "point": pt, "value": _num(v), "quality": QUALITY_NAMES.get(q, q)}
                for t, v, q in zip(s.t.tolist(), s.v.tolist(), s.q.tolist())]
    return [{"t": t, "time": _iso(t), "device": dev, "point": pt, "bucket_s": s.bucket_seconds, "count": n,
             "min": _num(lo), "max": _num(hi), "mean": _num(m)}
            for t, n, lo, hi, m in zip(s.t.tolist(), s.count.tolist(), s.vmin.tolist(), s.vmax.tolist(), s.v.tolist())]


def state_rows(store, st: State, names: dict[int, str]) -> list[dict]:
    rows = []
    for pid, t, v, q in zip(st.ids.tolist(), st.t.tolist(), st.v.tolist(), st.q.tolist()):
        dev, _, pt = names.get(pid, f"#{pid}").partition("/")
        rows.append({"t": t, "time": _iso(t), "device": dev, "point": pt, "value": _num(v),
                     "quality": QUALITY_NAMES.get(q, q)})
    return rows


def write_rows(rows: list[dict], fmt: str, out) -> None:
    if fmt == "json":  # one JSON object per line
        for r in rows:
            out.write(json.dumps(r, allow_nan=False) + "\n")
        return
    if fmt == "csv":
        fields = list(rows[0]) if rows else ["t", "time", "device", "point", "value", "quality"]
        w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return
    raise ValueError(fmt)


def run_history_cli(args) -> int:
    from twinview.twin.audit import parse_since

    from .config import retention_for_site

    site_key = args.site_key
    retention = None
    if args.site:
        from twinview.site.manifest import load_manifest

        site, _ = load_manifest(args.site)
        if site is None:
            print(f"error: cannot read the manifest of {args.site}", file=sys.stderr)
            return 2
        site_key = site.name
        retention = retention_for_site(Path(args.site))
    if site_key is None:
        print("error: give a SITE folder or --site-key", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store, site_key, readonly=True)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _ = retention  # reading only: retention is applied by the writer
    now = time.time()
    try:
        points = select_points(store, args.device, args.point)
        if args.device and not points:
            print(f"error: no recorded points for device {args.device!r}"
                  + (f" point {args.point!r}" if args.point else ""), file=sys.stderr)
            return 2
        if args.at is not None:
            at = parse_since(args.at, now)
            ids = np.array([p for p, _ in points], np.int32) if (args.device or args.point) else None
            rows = state_rows(store, store.state_at(at, ids), dict(_names(store)))
        else:
            t0 = parse_since(args.since, now)
            t1 = parse_since(args.until, now) if args.until else now
            rows = []
            for pid, name in points:
                rows += series_rows(name, store.series(pid, t0, t1, max_points=args.max_points, level=args.level))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if hasattr(store, "close"):
            store.close()
    if args.format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            print("error: --format parquet needs pyarrow (pip install pyarrow)", file=sys.stderr)
            return 2
        if not args.out:
            print("error: --format parquet needs --out FILE", file=sys.stderr)
            return 2
        pq.write_table(pa.Table.from_pylist(rows), args.out)
        return 0
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            write_rows(rows, args.format, f)
    else:
        write_rows(rows, args.format, sys.stdout)
    return 0


def add_history_parser(sub) -> None:
    p = sub.add_parser("history", help="read recorded history: samples, rollups, or the state at an instant")
    p.add_argument("site", nargs="?", help="site folder (names the store; its [history] sets retention)")
    p.add_argument("--device", help="only this device")
    p.add_argument("--point", help="only this point (of --device, or of every device)")
    p.add_argument("--since", default="1h", help="start: e.g. 2h, 30m, 2026-11-21T10:00 (default 1h)")
    p.add_argument("--until", help="end (default now)")
    p.add_argument("--at", help="instead of a range: every point's last value at or before this time")
    p.add_argument("--max-points", type=int, default=100_000,
                   help="at most this many rows per point; more become min/max/mean buckets (default 100000)")
    p.add_argument("--level", choices=("auto", "raw", "rollup"), default="auto",
                   help="raw samples, 10-minute rollups, or auto: raw unless the range is long (default)")
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv",
                   help="csv (default), json (one object per line) or parquet (needs pyarrow and --out)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--store", metavar="PATH|URL",
                   help="history store: a folder or postgresql://... (default: per site under ~/.local/state/twinview)")
    p.add_argument("--site-key", help="site name, when no SITE folder is given")
    p.set_defaults(func=run_history_cli)
