"""A small declarative checker for TOML tables that reports every problem it finds.

Each table is described by a dict of field name -> Field. Checking a table
returns the cleaned values and appends a Problem for each wrong type, missing
required field or unknown key, so that one run of `twinview check` lists them all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import Problem

_MISSING = object()
Checker = Callable[[Any], Any]  # returns the cleaned value or raises ValueError("expected ...")


@dataclass(frozen=True)
class Field:
    check: Checker
    required: bool = False
    default: Any = None


class Report:
    """Collects problems for one file; the same problem at the same place is said once."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self._seen: set[Problem] = set()

    def _add(self, problem: Problem) -> None:
        if problem not in self._seen:
            self._seen.add(problem)
            self.problems.append(problem)

    def error(self, where: str, message: str) -> None:
        self._add(Problem(self.file, where, message))

    def warning(self, where: str, message: str) -> None:
        self._add(Problem(self.file, where, message, "warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class Cleaned(dict):
    """A checked table's values; `invalid` names the keys that were present but wrong (already
    reported, and set to their default), so later checks do not blame their absence."""

    invalid: frozenset[str] = frozenset()


def check_table(data: Any, where: str, fields: dict[str, Field], report: Report) -> Cleaned | None:
    """Check one table against its fields; None when it is not a table at all."""
    if not isinstance(data, dict):
        report.error(where, f"expected a table, got {_describe(data)}")
        return None
    out = Cleaned()
    invalid: set[str] = set()
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            report.error(_join(where, key), f"unknown key (known keys: {known})")
    for key, field in fields.items():
        value = data.get(key, _MISSING)
        if value is _MISSING:
            if field.required:
                report.error(_join(where, key), "is required")
            out[key] = field.default
            continue
        try:
            out[key] = field.check(value)
        except ValueError as exc:
            report.error(_join(where, key), f"{exc}, got {_describe(value)}")
            out[key] = field.default
            invalid.add(key)
    out.invalid = frozenset(invalid)
    return out


def check_list(data: Any, where: str, item: Callable[[Any, str], Any], report: Report) -> list[Any]:
    """Check an array of tables; each item is checked by `item(value, where)`."""
    if data is None:
        return []
    if not isinstance(data, list):
        report.error(where, f"expected an array of tables, got {_describe(data)}")
        return []
    results = []
    for i, value in enumerate(data):
        result = item(value, f"{where}[{i}]")
        if result is not None:
            results.append(result)
    return results


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# --- checkers -----------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value) or len(value) > 128:
        raise ValueError("expected an identifier (letters, digits, '_', '-', '.'; at most 128)")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("expected a finite number")
    return float(value)


def positive(value: Any) -> float:
    try:
        value = number(value)
    except ValueError:
        raise ValueError("expected a number greater than 0") from None
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


def integer_in(lo: int, hi: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}")
        return value

    return check


def one_of(*choices: str) -> Checker:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(repr(c) for c in choices))
        return value

    return check


def number_pair(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("expected [low, high]")
    lo, hi = number(value[0]), number(value[1])
    if not lo < hi:
        raise ValueError("expected [low, high] with low < high")
    return (lo, hi)


def vector3(value: Any) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError("expected [x, y, z]")
    return tuple(number(v) for v in value)  # type: ignore[return-value]


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


_HEX = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def color(value: Any) -> tuple[float, float, float, float]:
    """'#rrggbb' or '#rrggbbaa' to an RGBA tuple of floats in 0..1."""
    if not isinstance(value, str) or not _HEX.match(value):
        raise ValueError("expected a colour '#rrggbb' or '#rrggbbaa'")
    digits = value[1:]
    if len(digits) == 6:
        digits += "ff"
    return tuple(int(digits[i : i + 2], 16) / 255.0 for i in range(0, 8, 2))  # type: ignore[return-value]


def color_stops(value: Any) -> tuple[tuple[float, tuple[float, float, float, float]], ...]:
    """[[value, '#colour'], ...] with ascending values: a threshold or gradient table."""
    if not isinstance(value, list) or not value:
        raise ValueError("expected [[value, '#rrggbb'], ...]")
    stops = []
    for entry in value:
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError("expected [[value, '#rrggbb'], ...]")
        stops.append((number(entry[0]), color(entry[1])))
    values = [s[0] for s in stops]
    if values != sorted(values):
        raise ValueError("expected stops in ascending order of value")
    return tuple(stops)


def color_table(value: Any) -> dict[str, tuple[float, float, float, float]]:
    """{state = '#colour', ...} for enum and boolean points."""
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a table of state = '#rrggbb'")
    return {str(k): color(v) for k, v in value.items()}


def string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("expected a table of strings")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError(f"expected plain values (field {k!r})")
        out[str(k)] = str(v)
    return out


def passthrough(value: Any) -> Any:
    return value
