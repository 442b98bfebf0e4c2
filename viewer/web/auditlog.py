"""A device's recent commands from the audit log, for the page's command log.

The page keeps every command it hears of while it is open; this fills in what
happened before it opened (or before a reconnect), from the same append-only
audit log the CLI's `twinview audit` reads. One entry per command: its latest
state, shaped like the bridge's command_state messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twinview.twin.audit import read_audit
from twinview.twin.vocabulary import FINAL_COMMAND_STATES

FINAL = {str(getattr(s, "value", s)) for s in FINAL_COMMAND_STATES}
MAX_COMMANDS = 30
MAX_RECORDS = 2000  # newest audit lines of the device looked at


def command_log_provider(path: str | Path) -> Callable[[str], list[dict[str, Any]]]:
    """device -> its last MAX_COMMANDS commands (oldest first), each at its latest state."""

    def commands(device: str) -> list[dict[str, Any]]:
        if not Path(path).exists():
            return []
        latest: dict[str, dict[str, Any]] = {}
        for rec in read_audit(path, device=device, limit=MAX_RECORDS):
            cid = rec.get("id")
            state = rec.get("state")
            if not isinstance(cid, str) or not isinstance(state, str):
                continue
            first = latest.get(cid)
            latest.pop(cid, None)  # re-insert: dict order = order of the latest transition
            latest[cid] = {
                "id": cid, "device": device, "command": rec.get("command"), "args": rec.get("args") or {},
                "user": rec.get("user") or (first or {}).get("user", ""), "role": rec.get("role", ""),
                "state": state, "display": state, "reason": rec.get("reason") or "",
                "updated": rec.get("ts"), "final": state in FINAL,
            }  # fmt: skip
        return list(latest.values())[-MAX_COMMANDS:]

    return commands
