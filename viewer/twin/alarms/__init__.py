"""Alarms as operators of real plants need them (ISA-18.2 / IEC 62682, EEMUA 191).

rules.py: the manifest's alarm rules, checked and compiled; engine.py: the
lifecycle, evaluated inside the runtime's step; store.py: persistence (a JSONL
journal + snapshot for now, behind the small AlarmStore interface);
report.py: the performance figures of `twinview alarms report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import AlarmEngine, AlarmError
from .rules import SEVERITIES, AlarmRule, compile_rules, lint
from .store import AlarmStore, JsonlStore, MemoryStore, default_store_path


def open_store(store: Any) -> AlarmStore:
    """An AlarmStore from a store, a journal path, or None (in memory)."""
    if store is None:
        return MemoryStore()
    if isinstance(store, (str, Path)):
        return JsonlStore(store)
    return store


__all__ = ["AlarmEngine", "AlarmError", "AlarmRule", "AlarmStore", "JsonlStore", "MemoryStore", "SEVERITIES",
           "compile_rules", "default_store_path", "lint", "open_store"]
