"""twinview.history: every sample recorded, and the twin at any past instant.

    store = open_store(path_or_url, site_key)      # a folder (embedded) or postgresql://...
    ids = store.ids(["P-101/speed", "T-1/level"])   # stable ids, kept with the data
    store.append(ids, t, v, quality)                # numpy batch, once per runtime step
    store.state_at(t)                               # last sample at or before t of every point
    store.series(ids[0], t0, t1, max_points=1000)   # raw, or 10-minute rollups for long ranges
    store.retention(raw_days=30, rollup_days=730)

The embedded default is SegmentStore (compressed columnar blocks behind a
write-ahead file; see segments.py and docs/history.md for why it won).
PostgresStore writes the same data to PostgreSQL (TimescaleDB / Citus ready).
Nothing here imports the view (pygfx, imgui, sockets).
"""

from __future__ import annotations

import os
from pathlib import Path

from twinview.site.paths import site_state_folder

from .api import BAD, GOOD, NO_DATA, OFFLINE, STALE, Retention, Series, State, Stats
from .config import retention_for_site
from .segments import SegmentStore, StoreLocked

STORE_ENV = "TWINVIEW_STORE"

__all__ = [
    "open_store", "default_store_path", "SegmentStore", "StoreLocked", "State", "Series", "Retention", "Stats",
    "GOOD", "NO_DATA", "STALE", "BAD", "OFFLINE", "is_url", "retention_for_site",
]


def default_store_path(site_key: str) -> Path:
    """$TWINVIEW_STORE, else $XDG_STATE_HOME/twinview/<site>/history (default ~/.local/state), like the audit log."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    return site_state_folder(site_key) / "history"


def is_url(target) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(path_or_url: str | Path | None, site_key: str, *, readonly: bool = False,
               retention: Retention | None = None, **options):
    """A history store for one site: a folder (embedded, the default) or a postgresql:// URL.

    path_or_url None: the site's default folder (default_store_path). readonly:
    read while another process writes (the CLI, a notebook, a second viewer).
    """
    if is_url(path_or_url):
        from .postgres import PostgresStore

        return PostgresStore(str(path_or_url), site_key, readonly=readonly, retention=retention, **options)
    path = default_store_path(site_key) if path_or_url is None else Path(path_or_url).expanduser()
    return SegmentStore(path, readonly=readonly, retention=retention, **options)
