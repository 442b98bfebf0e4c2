"""Retention settings, in the store folder (store.toml) or beside the site's manifest (history.toml).

    [retention]
    raw_days = 30        # raw samples
    rollup_days = 730    # 10-minute rollups (min/max/mean/count)

Either may be left out: kept forever. A site folder's history.toml is reviewed
and versioned with the manifest; whoever opens the store for that site passes
it on (open_store(..., retention=retention_for_site(site_dir))), and the store
saves it in its own store.toml. The manifest schema does not (yet) accept a
[history] table; retention_from_manifest reads one if it ever does.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .api import Retention

CONFIG_NAME = "store.toml"
SITE_CONFIG_NAME = "history.toml"


def _days(raw, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise ValueError(f"{where}: expected a positive number of days, got {raw!r}")
    return float(raw)


def retention_from_table(table: dict, where: str) -> Retention:
    return Retention(_days(table.get("raw_days"), f"{where}.raw_days"),
                     _days(table.get("rollup_days"), f"{where}.rollup_days"))


def load_retention(root: Path) -> Retention:
    path = Path(root) / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Retention()
    return retention_from_table(data.get("retention", {}), f"{path} [retention]")


def save_retention(root: Path, retention: Retention) -> None:
    lines = ["# twinview history store settings", "[retention]"]
    if retention.raw_days is not None:
        lines.append(f"raw_days = {retention.raw_days!r}")
    if retention.rollup_days is not None:
        lines.append(f"rollup_days = {retention.rollup_days!r}")
    path = Path(root) / CONFIG_NAME
    tmp = path.with_name(CONFIG_NAME + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    os.replace(tmp, path)


def retention_from_manifest(site_dir: Path) -> Retention | None:
    """[history] raw_days / rollup_days from a site's site.toml, or None when it has none."""
    path = Path(site_dir) / "site.toml"
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return None
    table = data.get("history")
    if not isinstance(table, dict):
        return None
    return retention_from_table(table, f"{path} [history]")


def retention_for_site(site_dir: Path) -> Retention | None:
    """The site's retention: history.toml [retention] beside the manifest, else a [history] table in it."""
    path = Path(site_dir) / SITE_CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return retention_from_manifest(site_dir)
    return retention_from_table(data.get("retention", {}), f"{path} [retention]")
