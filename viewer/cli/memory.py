"""The command line's side of the twin's memory: which store, recording a runtime, and times people type."""

from __future__ import annotations

import sys
from typing import Any

from twinview.twin.audit import parse_since


def parse_time(text: str) -> float:
    """An instant: ISO 8601 ('2026-11-21T03:12'), epoch seconds, or relative ('-10m', '2h' ago). ValueError if not."""
    return parse_since(text.strip().lstrip("-") if text.strip()[:1] == "-" else text)


def open_site_store(site: Any, path: str | None, readonly: bool = False) -> Any:
    """The site's history store: --store PATH (a folder or postgresql://...), else the default folder."""
    from twinview.history import open_store, retention_for_site

    retention = None if readonly else retention_for_site(site.root)
    return open_store(path, site.name, readonly=readonly, retention=retention)


def record_runtime(runtime: Any, args: Any) -> Any:
    """Record a runtime into the site's store unless --no-record; None (with one line why) when it cannot."""
    if getattr(args, "no_record", False):
        return None
    from twinview.history import StoreLocked
    from twinview.twin.memory import StoreRecorder

    try:
        store = open_site_store(runtime.site, getattr(args, "store", None))
    except StoreLocked:
        print("history: another twinview process is recording this site's store; this one only shows it",
              file=sys.stderr)
        return None
    except (OSError, ValueError) as exc:
        print(f"history: not recording ({exc})", file=sys.stderr)
        return None
    return StoreRecorder(runtime, store)
