"""Alarm rules: the manifest's schema, the legacy `alarm` / `alarm_states` shorthands, and the linter.

A rule watches one point of one device (or the device's commands) and names
one abnormal condition (ISA-18.2 / IEC 62682 "alarm"):

    [[types.pump.alarms]]
    point = "motor_temp"
    kind = "high"                  # high_high | high | low | low_low | rate | deviation | state | quality | command
    limit = 85                     # the alarm limit (rate: units per second; deviation: allowed |value - setpoint|)
    deadband = 2                   # hysteresis: clears only once back past limit -/+ deadband
    on_delay = 5                   # seconds the condition must hold before the alarm activates
    off_delay = 0                  # seconds the condition must be gone before it returns to normal
    severity = "high"              # critical | high | medium | low
    message = "Motor {value:.1f} {unit} above {limit:g} {unit}"
    suppress_when = "state != 'running'"   # suppressed by design (interlock syntax over the device's points)

Rules of a device type apply to every device of that type; a device's own rule
with the same name replaces the type's. Every rule has an id "DEVICE/NAME"
(NAME defaults to "POINT.KIND"). The older `alarm = [lo, hi]` of a point is the
pair of rules POINT.low / POINT.high (severity medium), and `alarm_states` the
rule POINT.state (severity high); an explicit rule of the same name wins.

`lint(site)` returns every problem (`twinview check` prints them); `compile_rules`
returns the valid rules and the problems, so a runtime runs with what is valid.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any

from twinview.site import schema as s
from twinview.site.errors import Problem
from twinview.site.manifest import Device, PointSpec, Site

SEVERITIES = ("low", "medium", "high", "critical")  # priority 0..3
LIMIT_KINDS = ("high_high", "high", "low", "low_low")
KINDS = LIMIT_KINDS + ("rate", "deviation", "state", "quality", "command")
QUALITY_WORDS = ("bad", "stale", "offline", "no data")
COMMAND_ENDS = ("failed", "timed_out", "rejected", "expired")
MESSAGE_FIELDS = ("value", "limit", "unit", "device", "name", "point", "setpoint", "severity", "kind", "deadband", "states")
DEFAULT_CHATTER_PER_MINUTE = 5
DEFAULT_FLOOD_COUNT = 10
DEFAULT_FLOOD_WINDOW = 600.0
DEFAULT_MAX_SHELVE = 24 * 3600.0

_RULE = {
    "name": s.Field(s.identifier),
    "point": s.Field(s.identifier),
    "kind": s.Field(s.one_of(*KINDS), required=True),
    "limit": s.Field(s.number),
    "deadband": s.Field(s.number, default=0.0),
    "on_delay": s.Field(s.number, default=0.0),
    "off_delay": s.Field(s.number, default=0.0),
    "severity": s.Field(s.one_of(*SEVERITIES), default="medium"),
    "message": s.Field(s.text, default=""),
    "setpoint": s.Field(s.identifier),
    "states": s.Field(s.string_list, default=()),
    "qualities": s.Field(s.string_list, default=()),
    "commands": s.Field(s.string_list, default=()),
    "suppress_when": s.Field(s.text, default=""),
    "chatter_per_minute": s.Field(s.integer_in(1, 1000)),
}
_SETTINGS = {
    "chatter_per_minute": s.Field(s.integer_in(1, 1000), default=DEFAULT_CHATTER_PER_MINUTE),
    "flood_count": s.Field(s.integer_in(1, 100000), default=DEFAULT_FLOOD_COUNT),
    "flood_window": s.Field(s.positive, default=DEFAULT_FLOOD_WINDOW),
    "max_shelve": s.Field(s.positive, default=DEFAULT_MAX_SHELVE),
}

_DEFAULT_MESSAGES = {
    "high_high": "{point} very high: {value} {unit} (limit {limit:g})",
    "high": "{point} high: {value} {unit} (limit {limit:g})",
    "low": "{point} low: {value} {unit} (limit {limit:g})",
    "low_low": "{point} very low: {value} {unit} (limit {limit:g})",
    "rate": "{point} changing fast: {value} {unit}/s (limit {limit:g})",
    "deviation": "{point} {value} {unit} deviates from setpoint {setpoint} (allowed {limit:g})",
    "state": "{point} is {value}",
    "quality": "{point} is {value}",
    "command": "command {value}",
}


@dataclass(frozen=True)
class AlarmRule:
    """One alarm of one device, checked and ready to compile."""

    device: str
    name: str
    kind: str
    point: str | None = None
    limit: float = math.nan
    deadband: float = 0.0
    on_delay: float = 0.0
    off_delay: float = 0.0
    severity: str = "medium"
    message: str = ""
    setpoint: str | None = None
    states: tuple[str, ...] = ()
    qualities: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    suppress_when: str = ""
    chatter_per_minute: int | None = None
    area: str = ""
    legacy: bool = False  # made from `alarm` / `alarm_states`

    @property
    def id(self) -> str:
        return f"{self.device}/{self.name}"

    @property
    def priority(self) -> int:
        return SEVERITIES.index(self.severity)


@dataclass(frozen=True)
class AlarmSettings:
    chatter_per_minute: int = DEFAULT_CHATTER_PER_MINUTE
    flood_count: int = DEFAULT_FLOOD_COUNT
    flood_window: float = DEFAULT_FLOOD_WINDOW
    max_shelve: float = DEFAULT_MAX_SHELVE


@dataclass
class RuleSet:
    rules: list[AlarmRule] = field(default_factory=list)
    settings: AlarmSettings = field(default_factory=AlarmSettings)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def legacy_rules(device: Device) -> list[AlarmRule]:
    """`alarm = [lo, hi]` and `alarm_states` of each point as rules (a limit at the range's edge is dropped)."""
    out: list[AlarmRule] = []
    for p in device.points:
        if p.alarm is not None and p.kind == "number":
            lo, hi = p.alarm
            rlo, rhi = p.range if p.range is not None else (-math.inf, math.inf)
            if lo > rlo:
                out.append(AlarmRule(device.id, f"{p.id}.low", "low", p.id, lo, area=device.area, legacy=True,
                                     message=_DEFAULT_MESSAGES["low"]))  # fmt: skip
            if hi < rhi:
                out.append(AlarmRule(device.id, f"{p.id}.high", "high", p.id, hi, area=device.area, legacy=True,
                                     message=_DEFAULT_MESSAGES["high"]))  # fmt: skip
        if p.alarm_states and p.kind in ("enum", "bool"):
            out.append(AlarmRule(device.id, f"{p.id}.state", "state", p.id, states=tuple(p.alarm_states), severity="high",
                                 area=device.area, legacy=True, message=_DEFAULT_MESSAGES["state"]))  # fmt: skip
    return out


def compile_rules(site: Site) -> RuleSet:
    """Every valid rule of the site and every problem found (rules with errors are left out)."""
    file = str(site.manifest_path)
    report = s.Report(file)
    raw_settings = dict(site.alarm_settings or {})
    st = s.check_table(raw_settings, "site.alarms", _SETTINGS, report) or {}
    settings = AlarmSettings(**{k: v for k, v in st.items() if v is not None})
    rules: list[AlarmRule] = []
    for i, device in enumerate(site.devices):
        by_name: dict[str, AlarmRule] = {r.name: r for r in legacy_rules(device)}
        seen_here: dict[str, str] = {}
        for raw in device.alarms:
            where = str(raw.get("_where", f"devices[{i}] ({device.id}).alarms"))
            rule = _rule(device, {k: v for k, v in raw.items() if k != "_where"}, where, report)
            if rule is None:
                continue
            origin = where.split(".alarms")[0]
            if seen_here.get(rule.name) == origin:
                report.error(where, f"duplicate alarm name {rule.name!r} on {device.id}")
                continue
            seen_here[rule.name] = origin
            by_name[rule.name] = rule
        device_rules = _drop_shadowed(list(by_name.values()))
        _lint_bands(device, device_rules, f"devices[{i}] ({device.id}).alarms", report)
        rules.extend(device_rules)
    return RuleSet(rules, settings, report.problems)


def lint(site: Site) -> list[Problem]:
    """Every problem of the site's alarm rules (for `twinview check`)."""
    return compile_rules(site).problems


def _rule(device: Device, raw: dict, where: str, report: s.Report) -> AlarmRule | None:
    before = len(report.errors)
    r = s.check_table(raw, where, _RULE, report)
    if r is None or r["kind"] is None:
        return None
    kind = r["kind"]
    specs = {p.id: p for p in device.points}
    point = r["point"]
    spec: PointSpec | None = None
    if kind != "command":
        if not point:
            report.error(f"{where}.point", f"a {kind} alarm needs the point it watches")
        elif point not in specs:
            report.error(f"{where}.point", f"unknown point {point!r} on {device.id} (points: {', '.join(specs) or 'none'})")
        else:
            spec = specs[point]
    elif point:
        report.error(f"{where}.point", "a command alarm watches the device's commands, not a point")
    for key in ("deadband", "on_delay", "off_delay"):
        if r[key] is not None and r[key] < 0:
            report.error(f"{where}.{key}", f"must not be negative, got {r[key]:g}")
    limit = r["limit"]
    if kind in LIMIT_KINDS + ("rate", "deviation"):
        if limit is None:
            report.error(f"{where}.limit", f"a {kind} alarm needs a limit")
        if spec is not None and spec.kind != "number":
            report.error(f"{where}.point", f"a {kind} alarm needs a number point; {point!r} is {spec.kind}")
    if kind in LIMIT_KINDS and limit is not None and spec is not None and spec.range is not None:
        lo, hi = spec.range
        if not lo <= limit <= hi:
            report.error(f"{where}.limit", f"{limit:g} is outside {point}'s range {lo:g}..{hi:g}")
    if kind in ("rate", "deviation") and limit is not None and limit <= 0:
        report.error(f"{where}.limit", f"a {kind} limit must be greater than 0")
    if kind == "deviation":
        sp = r["setpoint"]
        if not sp:
            report.error(f"{where}.setpoint", "a deviation alarm needs the setpoint point it compares with")
        elif sp not in specs:
            report.error(f"{where}.setpoint", f"unknown point {sp!r} on {device.id}")
        elif specs[sp].kind != "number":
            report.error(f"{where}.setpoint", f"setpoint {sp!r} must be a number point")
    elif r["setpoint"]:
        report.error(f"{where}.setpoint", "only a deviation alarm has a setpoint")
    states = tuple(r["states"] or ())
    if kind == "state":
        if not states:
            report.error(f"{where}.states", "a state alarm needs the states that raise it")
        elif spec is not None:
            allowed = spec.states if spec.kind == "enum" else ("false", "true") if spec.kind == "bool" else ()
            if spec.kind == "number":
                report.error(f"{where}.point", f"a state alarm needs an enum or bool point; {point!r} is a number")
            for st in states:
                if allowed and st not in allowed:
                    report.error(f"{where}.states", f"{point} has no state {st!r} (states: {', '.join(allowed)})")
    qualities = tuple(r["qualities"] or ())
    if kind == "quality":
        for q in qualities:
            if q not in QUALITY_WORDS:
                report.error(f"{where}.qualities", f"unknown quality {q!r} (known: {', '.join(QUALITY_WORDS)})")
        qualities = qualities or ("bad", "stale", "offline")
    commands = tuple(r["commands"] or ())
    if kind == "command":
        names = {c.name for c in device.commands}
        if not names:
            report.error(where, f"{device.id} has no commands to watch")
        for c in commands:
            if c not in names:
                report.error(f"{where}.commands", f"unknown command {c!r} on {device.id}")
    if r["suppress_when"]:
        from twinview.twin.interlock import check_interlock

        for error in check_interlock(r["suppress_when"], specs):
            report.error(f"{where}.suppress_when", error)
    message = r["message"] or _DEFAULT_MESSAGES[kind]
    for error in _message_errors(message):
        report.error(f"{where}.message", error)
    if len(report.errors) > before:
        return None
    name = r["name"] or (f"{point}.{kind}" if point else kind)
    return AlarmRule(
        device=device.id, name=name, kind=kind, point=point, limit=math.nan if limit is None else float(limit),
        deadband=r["deadband"] or 0.0, on_delay=r["on_delay"] or 0.0, off_delay=r["off_delay"] or 0.0,
        severity=r["severity"] or "medium", message=message, setpoint=r["setpoint"], states=states,
        qualities=qualities, commands=commands, suppress_when=r["suppress_when"] or "",
        chatter_per_minute=r["chatter_per_minute"], area=device.area,
    )  # fmt: skip


def _drop_shadowed(rules: list[AlarmRule]) -> list[AlarmRule]:
    """Leave out a legacy rule where an explicit rule of the same family watches the same point."""
    family = {"high": "high", "high_high": "high", "low": "low", "low_low": "low", "state": "state"}
    explicit = {(r.point, family.get(r.kind)) for r in rules if not r.legacy}
    return [r for r in rules if not (r.legacy and (r.point, family.get(r.kind)) in explicit)]


def _lint_bands(device: Device, rules: list[AlarmRule], where: str, report: s.Report) -> None:
    """Per point: HH above H above L above LL, and no deadband wider than the band it lives in."""
    specs = {p.id: p for p in device.points}
    by_point: dict[str, dict[str, AlarmRule]] = {}
    for r in rules:
        if r.kind in LIMIT_KINDS and r.point:
            by_point.setdefault(r.point, {})[r.kind] = r
    order = ("low_low", "low", "high", "high_high")
    for point, kinds in by_point.items():
        present = [(k, kinds[k]) for k in order if k in kinds]
        for (ka, a), (kb, b) in zip(present, present[1:]):
            if not a.limit < b.limit:
                report.error(f"{where} ({point})", f"limits in the wrong order: {ka} {a.limit:g} must be below {kb} {b.limit:g}")
        spec = specs.get(point)
        rlo, rhi = spec.range if spec is not None and spec.range is not None else (-math.inf, math.inf)
        high = [kinds[k].limit for k in ("high", "high_high") if k in kinds]
        low = [kinds[k].limit for k in ("low", "low_low") if k in kinds]
        for k, r in kinds.items():
            if r.deadband <= 0:
                continue
            if k in ("high", "high_high"):
                floor = max(low) if low else rlo
                band = r.limit - floor
            else:
                ceiling = min(high) if high else rhi
                band = ceiling - r.limit
            if r.deadband >= band:
                report.error(f"{where} ({r.name})", f"deadband {r.deadband:g} is wider than the band it clears into ({band:g})")


def _message_errors(message: str) -> list[str]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(message) if f is not None]
    except ValueError as exc:
        return [f"not a valid message template: {exc}"]
    errors = []
    for f in fields:
        base = f.split(".")[0].split("[")[0]
        if base not in MESSAGE_FIELDS:
            errors.append(f"unknown field {{{f}}} (known: {', '.join(MESSAGE_FIELDS)})")
    return errors


def format_message(rule: AlarmRule, value: Any, unit: str = "", setpoint: Any = None) -> str:
    """The rule's message with the value in it; never raises (a numeric format on text falls back to str)."""
    shown = value
    if isinstance(value, float):
        shown = round(value, 4) if math.isfinite(value) else "-"
    fields = {
        "value": shown, "limit": rule.limit, "unit": unit, "device": rule.device, "name": rule.name,
        "point": rule.point or "", "setpoint": "-" if setpoint is None else setpoint, "severity": rule.severity,
        "kind": rule.kind, "deadband": rule.deadband, "states": ", ".join(rule.states),
    }  # fmt: skip
    try:
        return rule.message.format(**fields)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        fields = {k: str(v) for k, v in fields.items()}
        try:
            return rule.message.format(**fields)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return rule.message
