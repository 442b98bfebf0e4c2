"""Turn one raw payload into one checked value for one point, or say exactly why not.

Accepted payloads (see docs/telemetry.md):
  plain text      42.5 | true / false / 1 / 0 / on / off | running
  JSON scalar     42.5 | true | "running"
  JSON object     {"value": 42.5, "ts": 1718000000.123}   (default convention)
                  or any object, with the value at point.json_value and the
                  timestamp at point.json_time (dotted paths, list indices allowed)
Numbers are ASCII only: digits 0-9, sign, point, exponent ("４２" or "٤٣" are not numbers).
Timestamps: seconds, milliseconds, microseconds or nanoseconds since the epoch
(told apart by magnitude) or ISO 8601. A timestamp ahead of the receive time is
never kept as it is (it would make every later reading look out of order until
real time caught up): up to FUTURE_TOLERANCE seconds ahead it is clock skew and
the receive time is used; further ahead, before the year 2000, or unreadable it
is not trusted and the receive time is used. Decoded.note says which.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any, NamedTuple

from twinview.site.manifest import PointSpec

MAX_PAYLOAD_BYTES = 64 * 1024
FUTURE_TOLERANCE = 5.0  # seconds a source timestamp may be ahead of the receive time
MIN_TIMESTAMP = 946684800.0  # 2000-01-01T00:00:00Z: anything older is a device without a clock
DEFAULT_TS_KEYS = ("ts", "timestamp", "time")

Value = float | bool | str


class DecodeError(ValueError):
    """A payload that cannot be used. `value` is kept when it decoded but is out of range."""

    def __init__(self, reason: str, value: Value | None = None):
        super().__init__(reason)
        self.reason = reason
        self.value = value


class MissingValue(DecodeError):
    """The JSON object has no value at the point's json_value path."""


class Decoded(NamedTuple):
    value: Value
    source_ts: float | None  # None: the payload had no (trustworthy) timestamp
    note: str = ""  # e.g. "future timestamp ignored"


_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$", re.ASCII)
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no"}


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"not finite ({name})")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"not finite ({text[:20]})")
    return value


def parse_json(text: str) -> Any:
    """json.loads that rejects NaN, Infinity and 1e999 and turns every failure into DecodeError."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("JSON too deeply nested") from None
    except (ValueError, OverflowError) as exc:  # JSONDecodeError is a ValueError; so are 5000-digit ints
        raise DecodeError(f"not valid JSON ({str(exc)[:60]})") from None


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path ("a.b.0.c") through dicts and lists; KeyError when absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict):
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isascii() and part.lstrip("-").isdigit():
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def payload_text(payload: bytes | str) -> str:
    """Size-checked, UTF-8-checked, stripped text of a payload."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload too large ({len(payload)} bytes > {MAX_PAYLOAD_BYTES})")
    if isinstance(payload, str):
        text = payload
    else:
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8 text (byte {exc.start})") from None
    text = text.strip()
    if not text:
        raise DecodeError("empty payload")
    return text


def decode(point: PointSpec, payload: bytes | str, now: float | None = None) -> Decoded:
    """Decode and check one payload for `point`. Raises DecodeError with a short reason.

    `now` is the receive time; it is needed only to distrust future timestamps.
    """
    text = payload_text(payload)
    raw_ts: Any = None
    if point.json_value is not None:
        data = parse_json(text)
        if not isinstance(data, (dict, list)):
            raise DecodeError(f"expected a JSON object with {point.json_value!r}")
        try:
            raw = lookup(data, point.json_value)
        except (KeyError, IndexError):
            raise MissingValue(f"no value at {point.json_value!r}") from None
        raw_ts = _find_ts(data, point.json_time)
    elif text[0] in "{[":
        data = parse_json(text)
        if not isinstance(data, dict):
            raise DecodeError("expected a JSON object or a scalar, got an array")
        if "value" not in data:
            raise DecodeError('JSON object without "value"')
        raw = data["value"]
        raw_ts = _find_ts(data, point.json_time)
    elif text[0] == '"':
        raw = parse_json(text)
    else:
        raw = text  # plain text: converted by kind below
    value = check_value(point, raw)
    source_ts, note = (None, "") if raw_ts is None else parse_timestamp(raw_ts, now)
    return Decoded(value, source_ts, note)


def _find_ts(data: Any, path: str | None) -> Any:
    if path is not None:
        try:
            return lookup(data, path)
        except (KeyError, IndexError):
            return None
    if isinstance(data, dict):
        for key in DEFAULT_TS_KEYS:
            if key in data:
                return data[key]
    return None


def check_value(point: PointSpec, raw: Any) -> Value:
    """Convert a raw (text or JSON) value to the point's kind and check it. Raises DecodeError."""
    kind = point.kind
    if kind == "number":
        value = _to_number(raw)
        if point.range is not None and not point.range[0] <= value <= point.range[1]:
            lo, hi = point.range
            raise DecodeError(f"out of range [{lo:g}, {hi:g}]", value)
        return value
    if kind == "bool":
        return _to_bool(raw)
    if kind == "enum":
        return _to_enum(raw, point.states)
    raise DecodeError(f"unknown point kind {kind!r}")


def _to_number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise DecodeError("expected a number, got a boolean")
    if isinstance(raw, (int, float)):
        try:
            value = float(raw)
        except OverflowError:
            raise DecodeError("not finite (number too large)") from None
        if not math.isfinite(value):
            raise DecodeError("not finite")
        return value
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in _NON_FINITE:
            raise DecodeError(f"not finite ({text})")
        if not _NUMBER.match(text):
            raise DecodeError(f"expected a number, got {_show(text)}")
        value = float(text)
        if not math.isfinite(value):
            raise DecodeError(f"not finite ({_show(text)})")
        return value
    raise DecodeError(f"expected a number, got {_type(raw)}")


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise DecodeError(f"expected a boolean, got {_show(raw)}")
    raise DecodeError(f"expected a boolean, got {_type(raw)}")


def _to_enum(raw: Any, states: tuple[str, ...]) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise DecodeError(f"expected one of the states, got {_type(raw)}")
    text = str(raw).strip()
    if text in states:
        return text
    folded = text.casefold()
    for state in states:
        if state.casefold() == folded:
            return state
    raise DecodeError(f"{_show(text)} is not one of {', '.join(states)}")


def parse_timestamp(raw: Any, now: float | None = None) -> tuple[float | None, str]:
    """A source timestamp in epoch seconds, or (None, reason) when it is not to be trusted."""
    ts: float | None
    if isinstance(raw, bool):
        return None, "timestamp ignored: boolean"
    if isinstance(raw, (int, float)):
        ts = _epoch_from_number(float(raw))
    elif isinstance(raw, str):
        text = raw.strip()
        if _NUMBER.match(text):
            ts = _epoch_from_number(float(text))
        else:
            ts = _epoch_from_iso(text)
    else:
        return None, f"timestamp ignored: {_type(raw)}"
    if ts is None:
        return None, f"timestamp ignored: unreadable {_show(str(raw))}"
    if ts < MIN_TIMESTAMP:
        return None, "timestamp ignored: before 2000 (device clock not set?)"
    if now is not None and ts > now + FUTURE_TOLERANCE:
        return None, f"timestamp ignored: {ts - now:.0f} s in the future"
    if now is not None and ts > now:  # clock skew: never later than when it arrived
        return now, f"clock skew: timestamp {ts - now:.1f} s in the future, receive time used"
    return ts, ""


def _epoch_from_number(value: float) -> float | None:
    if not math.isfinite(value) or value < 0:
        return None
    # Told apart by magnitude: 1e11 s is the year 5138, 1e11 ms is 1973.
    for scale in (1.0, 1e3, 1e6, 1e9):
        if value < 1e11 * scale:
            return value / scale
    return None


def _epoch_from_iso(text: str) -> float | None:
    if len(text) > 40 or not text.isascii():
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # naive ISO times are read as UTC
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def encode(point: PointSpec, value: Any, ts: Any = None) -> bytes:
    """The payload a well-behaved device would send for this point (inverse of decode)."""
    if isinstance(ts, float):
        ts = round(ts, 3)
    if point.json_value is None:
        if ts is None:
            return (json.dumps(value) if isinstance(value, bool) else str(value)).encode()
        return json.dumps({"value": value, "ts": ts}, allow_nan=False).encode()
    data: dict = {}
    _put(data, point.json_value, value)
    if ts is not None:
        _put(data, point.json_time or "ts", ts)
    return json.dumps(data, allow_nan=False).encode()


def encode_many(items: list[tuple[PointSpec, Any]], ts: Any = None) -> bytes:
    """One JSON payload carrying several points that share a topic (each at its json_value)."""
    if isinstance(ts, float):
        ts = round(ts, 3)
    data: dict = {}
    for point, value in items:
        _put(data, point.json_value or "value", value)
        if ts is not None:
            _put(data, point.json_time or "ts", ts)
    return json.dumps(data, allow_nan=False).encode()


def _put(data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _show(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:21] + "...")


def _type(raw: Any) -> str:
    return {dict: "an object", list: "an array", type(None): "null"}.get(type(raw), type(raw).__name__)
