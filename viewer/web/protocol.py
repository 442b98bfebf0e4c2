"""The bridge's wire format: device entries out, checked client messages in (docs/web.md).

Everything sent is JSON with allow_nan=False (a browser's JSON.parse rejects
NaN): non-finite numbers become null. Everything received is checked for shape
and size before anything acts on it; a bad message raises BadMessage with a
code and a reason the client is told.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

MAX_TOKEN_CHARS = 4096
MAX_NAME_CHARS = 200
MAX_ARGS = 32
MAX_ARG_TEXT = 1000
MAX_REF_CHARS = 64
MAX_HISTORY_S = 400 * 86400  # a history request reaches back at most this far
CLIENT_TYPES = ("auth", "command", "ping", "history", "command_log", "seek", "live", "alarm_action")
ALARM_ACTIONS = ("ack", "shelve", "unshelve")
MAX_REASON_CHARS = 500


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: non-finite floats and unknown types become None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


def dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def device_entry(
    device_id: str,
    rgba: Iterable[float] | None,
    flags: int,
    label: str,
    motions: Iterable[float | None],
    points: Iterable[tuple[str, Any, str, float | None, bool]],
) -> str:
    """One device as a JSON member '"id":{...}'; points are (id, value, quality, ts, alarm)."""
    entry = {
        "rgba": None if rgba is None else [_clean(c) for c in rgba],
        "flags": int(flags),
        "label": str(label),
        "motion": [_clean(m) for m in motions],
        "points": {pid: {"v": _clean(v), "q": q, "t": _clean(ts), "a": bool(alarm)} for pid, v, q, ts, alarm in points},
    }
    return dumps(device_id) + ":" + dumps(entry)


def devices_message(kind: str, seq: int, fragments: Iterable[str], extra: str = "") -> str:
    """A snapshot or delta message built from pre-encoded device members."""
    return '{"type":"' + kind + '","seq":' + str(int(seq)) + extra + ',"devices":{' + ",".join(fragments) + "}}"


class BadMessage(Exception):
    """A client message that is refused; `code` is machine readable, str(self) says why."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class ClientMessage:
    type: str
    token: str = ""
    device: str = ""
    command: str = ""
    args: dict | None = None
    confirmed: bool = False
    ref: str | int | None = None
    point: str = ""
    since: float | None = None  # history: how far back, in seconds
    t: float | None = None  # seek: the instant to show, epoch seconds
    alarm: str = ""  # alarm_action: the alarm id (DEVICE/NAME)
    action: str = ""  # alarm_action: ack | shelve | unshelve
    seconds: float = 0.0  # alarm_action shelve: for how long
    reason: str = ""  # alarm_action shelve: why


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _text(msg: dict, key: str, limit: int, required: bool = True) -> str:
    value = msg.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise BadMessage("bad_field", f"{key!r} must be a non-empty string")
    if len(value) > limit:
        raise BadMessage("bad_field", f"{key!r} is longer than {limit} characters")
    return value


def _arg_value(name: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise BadMessage("bad_field", f"argument {name!r} is not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_ARG_TEXT:
            raise BadMessage("bad_field", f"argument {name!r} is longer than {MAX_ARG_TEXT} characters")
        return value
    raise BadMessage("bad_field", f"argument {name!r} must be a number, a boolean or a string")


def parse_client_message(data: str | bytes) -> ClientMessage:
    """Check one message from a page; raises BadMessage."""
    if not isinstance(data, str):
        raise BadMessage("binary", "binary messages are not accepted; send JSON text")
    try:
        msg = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadMessage("bad_json", "JSON nested too deeply") from None
    except ValueError as exc:
        raise BadMessage("bad_json", f"not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(msg, dict):
        raise BadMessage("bad_message", "a message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise BadMessage("unknown_type", f"unknown message type {shown!r} (expected one of {', '.join(CLIENT_TYPES)})")
    ref = msg.get("ref")
    if ref is not None and not (isinstance(ref, (str, int)) and not isinstance(ref, bool) and len(str(ref)) <= MAX_REF_CHARS):
        raise BadMessage("bad_field", f"'ref' must be a string or integer of at most {MAX_REF_CHARS} characters")
    if kind == "ping":
        return ClientMessage("ping", ref=ref)
    if kind == "auth":
        return ClientMessage("auth", token=_text(msg, "token", MAX_TOKEN_CHARS), ref=ref)
    if kind == "command_log":
        return ClientMessage("command_log", device=_text(msg, "device", MAX_NAME_CHARS), ref=ref)
    if kind == "history":
        since = msg.get("since")
        if since is not None and not (
            isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since) and 0 < since <= MAX_HISTORY_S
        ):
            raise BadMessage("bad_field", f"'since' must be seconds between 0 and {MAX_HISTORY_S}")
        return ClientMessage(
            "history", device=_text(msg, "device", MAX_NAME_CHARS), point=_text(msg, "point", MAX_NAME_CHARS), ref=ref,
            since=float(since) if since is not None else None,
        )
    if kind == "live":
        return ClientMessage("live", ref=ref)
    if kind == "seek":
        t = msg.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise BadMessage("bad_field", "'t' must be a time in epoch seconds")
        return ClientMessage("seek", t=float(t), ref=ref)
    if kind == "alarm_action":
        return _alarm_action(msg, ref)
    args = msg.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadMessage("bad_field", "'args' must be an object")
    if len(args) > MAX_ARGS:
        raise BadMessage("bad_field", f"more than {MAX_ARGS} arguments")
    clean = {}
    for name, value in args.items():
        if len(name) > MAX_NAME_CHARS:
            raise BadMessage("bad_field", "argument name too long")
        clean[name] = _arg_value(name, value)
    confirmed = msg.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise BadMessage("bad_field", "'confirmed' must be true or false")
    return ClientMessage(
        "command",
        device=_text(msg, "device", MAX_NAME_CHARS),
        command=_text(msg, "command", MAX_NAME_CHARS),
        args=clean,
        confirmed=confirmed,
        ref=ref,
    )


def _alarm_action(msg: dict, ref: str | int | None) -> ClientMessage:
    """{"type": "alarm_action", "action": "ack" | "shelve" | "unshelve", "alarm": "DEVICE/NAME",
    "seconds": 3600, "reason": "..."}: who acts is the connection's signed-in principal."""
    action = msg.get("action")
    if action not in ALARM_ACTIONS:
        raise BadMessage("bad_field", f"'action' must be one of {', '.join(ALARM_ACTIONS)}")
    alarm = _text(msg, "alarm", 2 * MAX_NAME_CHARS + 1)
    seconds = 0.0
    reason = ""
    if action == "shelve":
        seconds = msg.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
            raise BadMessage("bad_field", "'seconds' must be a number greater than 0")
        reason = _text(msg, "reason", MAX_REASON_CHARS)
    return ClientMessage("alarm_action", ref=ref, alarm=alarm, action=action, seconds=float(seconds), reason=reason)
