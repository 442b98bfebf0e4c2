"""Retention settings: store.toml in the store folder, or [history] in a site's manifest.

    [retention]
    raw_days = 30        # raw samples
    rollup_days = 730    # 10-minute rollups (min/max/mean/count)

Either may be left out: kept forever. A site manifest (site.toml) may carry the
same keys in a [history] table; `twinview` passes them to the store it opens.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from .api import Retention

CONFIG_NAME = "store.toml"


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
