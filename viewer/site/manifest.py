"""The site manifest (site.toml): devices, their model nodes, points, overlays and commands.

Parsing is strict: unknown keys, wrong types and dangling references are all
reported together, with the field path, so an integrator can fix a manifest in
one pass. The result is plain frozen data; nothing here knows about rendering.
See docs/site-format.md for the format.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema as s
from .errors import SiteError

MANIFEST_NAME = "site.toml"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
ROLES = ("viewer", "operator", "admin")

RGBA = tuple[float, float, float, float]


@dataclass(frozen=True)
class PointSpec:
    """One telemetry point of a device: where it arrives and what a valid value looks like."""

    id: str
    topic: str
    kind: str = "number"  # number | bool | enum
    unit: str = ""
    label: str = ""
    range: tuple[float, float] | None = None  # physical range; outside it a value is bad
    alarm: tuple[float, float] | None = None  # normal band; outside it the device is in alarm
    alarm_states: tuple[str, ...] = ()  # enum states that raise an alarm
    states: tuple[str, ...] = ()  # allowed values of an enum point
    period: float = 10.0  # expected seconds between updates
    json_value: str | None = None  # dotted path to the value in a JSON payload
    json_time: str | None = None  # dotted path to the source timestamp
    qos: int = 0


@dataclass(frozen=True)
class ColorOverlay:
    point: str
    map: str | None = None  # named colour map, continuous over `range`
    range: tuple[float, float] | None = None
    stops: tuple[tuple[float, RGBA], ...] = ()  # thresholds: colour of the highest stop <= value
    states: dict[str, RGBA] = field(default_factory=dict)  # enum / bool state -> colour


@dataclass(frozen=True)
class MotionOverlay:
    """Moves a sub-node of the device: value mapped linearly from `range` onto `to`.

    rotate: `to` in revolutions per second; translate: metres along `axis`;
    scale: factor along `axis` from the node's base.
    """

    kind: str  # rotate | translate | scale
    point: str
    node: str
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    range: tuple[float, float] = (0.0, 1.0)
    to: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class LabelOverlay:
    points: tuple[str, ...]
    format: str = ""  # e.g. "{level:.0f} %"; default: each value with its unit


@dataclass(frozen=True)
class CommandArg:
    name: str
    kind: str = "number"  # number | bool | enum
    min: float | None = None
    max: float | None = None
    states: tuple[str, ...] = ()
    default: Any = None


@dataclass(frozen=True)
class CommandSpec:
    name: str
    label: str = ""
    role: str = "operator"
    confirm: bool = False
    args: tuple[CommandArg, ...] = ()
    interlock: str = ""  # condition over the device's points, e.g. "level < 10"
    interlock_text: str = ""  # what the operator is told when the interlock holds a command back
    success_point: str | None = None  # reported point that confirms the command
    success_value: Any = None  # literal, or "$arg" to use an argument's value
    success_tolerance: float = 0.0  # for numbers: |reported - wanted| <= tolerance confirms
    timeout: float = 15.0  # seconds for the device to confirm
    expiry: float = 30.0  # seconds after which an undelivered command must not actuate


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    type: str
    node: str
    area: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    points: tuple[PointSpec, ...] = ()
    color: ColorOverlay | None = None
    motions: tuple[MotionOverlay, ...] = ()
    label: LabelOverlay | None = None
    commands: tuple[CommandSpec, ...] = ()
    availability_topic: str = ""
    alarms: tuple[dict, ...] = ()  # alarm rule tables (type's, then device's); checked by twinview.twin.alarms.rules

    def point(self, point_id: str) -> PointSpec | None:
        return next((p for p in self.points if p.id == point_id), None)


@dataclass(frozen=True)
class Site:
    name: str
    root: Path
    model: Path
    devices: tuple[Device, ...]
    topic_prefix: str
    description: str = ""
    stale_factor: float = 3.0
    camera_position: tuple[float, float, float] | None = None
    camera_target: tuple[float, float, float] | None = None
    scenery: tuple[str, ...] = ()  # glob patterns of model nodes that are scenery (with what is below them)
    alarm_settings: dict = field(default_factory=dict)  # [site.alarms]: chatter and flood limits

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def device(self, device_id: str) -> Device | None:
        return self._by_id.get(device_id)

    @property
    def _by_id(self) -> dict[str, Device]:
        cache = self.__dict__.get("_by_id_cache")
        if cache is None:
            cache = {d.id: d for d in self.devices}
            object.__setattr__(self, "_by_id_cache", cache)
        return cache


# --- schema -----------------------------------------------------------------------

_SITE = {
    "name": s.Field(s.text, required=True),
    "model": s.Field(s.text, required=True),
    "topic_prefix": s.Field(s.text, default=""),
    "description": s.Field(s.text, default=""),
    "stale_factor": s.Field(s.positive, default=3.0),
    "camera": s.Field(s.passthrough),
    "scenery": s.Field(s.string_list, default=()),
    "alarms": s.Field(s.passthrough),
}
_CAMERA = {"position": s.Field(s.vector3, required=True), "target": s.Field(s.vector3, required=True)}
_POINT = {
    "id": s.Field(s.identifier, required=True),
    "kind": s.Field(s.one_of("number", "bool", "enum"), default="number"),
    "unit": s.Field(s.text, default=""),
    "label": s.Field(s.text, default=""),
    "topic": s.Field(s.text),
    "range": s.Field(s.number_pair),
    "alarm": s.Field(s.number_pair),
    "alarm_states": s.Field(s.string_list, default=()),
    "states": s.Field(s.string_list, default=()),
    "period": s.Field(s.positive, default=10.0),
    "json_value": s.Field(s.text),
    "json_time": s.Field(s.text),
    "qos": s.Field(s.integer_in(0, 2), default=0),
}
_OVERLAY_KINDS = ("color", "rotate", "translate", "scale", "label")
_OVERLAY = {
    "kind": s.Field(s.one_of(*_OVERLAY_KINDS), required=True),
    "point": s.Field(s.identifier),
    "points": s.Field(s.string_list),
    "map": s.Field(s.one_of("viridis", "coolwarm", "heat", "blues", "traffic")),
    "range": s.Field(s.number_pair),
    "stops": s.Field(s.color_stops),
    "states": s.Field(s.color_table),
    "node": s.Field(s.text),
    "axis": s.Field(s.vector3, default=(0.0, 1.0, 0.0)),
    "to": s.Field(s.number_pair),
    "format": s.Field(s.text, default=""),
}
_ARG = {
    "name": s.Field(s.identifier, required=True),
    "kind": s.Field(s.one_of("number", "bool", "enum"), default="number"),
    "min": s.Field(s.number),
    "max": s.Field(s.number),
    "states": s.Field(s.string_list, default=()),
    "default": s.Field(s.passthrough),
}
_SUCCESS = {
    "point": s.Field(s.identifier, required=True),
    "equals": s.Field(s.passthrough, required=True),
    "tolerance": s.Field(s.number, default=0.0),
}
_COMMAND = {
    "name": s.Field(s.identifier, required=True),
    "label": s.Field(s.text, default=""),
    "role": s.Field(s.one_of(*ROLES), default="operator"),
    "confirm": s.Field(s.boolean, default=False),
    "args": s.Field(s.passthrough),
    "interlock": s.Field(s.text, default=""),
    "interlock_text": s.Field(s.text, default=""),
    "success": s.Field(s.passthrough),
    "timeout": s.Field(s.positive, default=15.0),
    "expiry": s.Field(s.positive, default=30.0),
}
_TYPE = {
    "label": s.Field(s.text, default=""),
    "points": s.Field(s.passthrough),
    "overlays": s.Field(s.passthrough),
    "commands": s.Field(s.passthrough),
    "alarms": s.Field(s.passthrough),
}
_DEVICE = {
    "id": s.Field(s.identifier, required=True),
    "type": s.Field(s.identifier),
    "node": s.Field(s.text),
    "name": s.Field(s.text),
    "area": s.Field(s.text, default=""),
    "meta": s.Field(s.string_table, default={}),
    "points": s.Field(s.passthrough),
    "overlays": s.Field(s.passthrough),
    "commands": s.Field(s.passthrough),
    "alarms": s.Field(s.passthrough),
}
_TOP = {
    "scenery": s.Field(s.string_list, default=()),  # also accepted in [site]; top level must precede [site]
    "site": s.Field(s.passthrough, required=True),
    "types": s.Field(s.passthrough, default={}),
    "devices": s.Field(s.passthrough, default=[]),
}


# --- loading ----------------------------------------------------------------------


def manifest_path(site_dir: str | Path) -> Path:
    return Path(site_dir) / MANIFEST_NAME


def load_manifest(site_dir: str | Path) -> tuple[Site, list]:
    """Parse and check a site's manifest. Returns the site and its warnings.

    Raises SiteError listing every error; nothing is half-loaded.
    """
    root = Path(site_dir)
    path = manifest_path(root)
    report = s.Report(str(path))
    if not root.is_dir():
        raise SiteError(f"site folder not found: {root}", str(root))
    if not path.is_file():
        raise SiteError(f"no {MANIFEST_NAME} in the site folder", str(path))
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise SiteError(f"manifest is larger than {MAX_MANIFEST_BYTES // 2**20} MiB", str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SiteError(f"manifest is not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(f"manifest is not valid TOML: {exc}", str(path)) from None
    except RecursionError:
        raise SiteError("manifest is not valid TOML: arrays or tables nested too deeply to read", str(path)) from None

    site = _parse(data, root.resolve(), report)
    if report.errors:
        raise SiteError(report.problems)
    return site, [p for p in report.problems if p.severity == "warning"]


def _parse(data: dict, root: Path, report: s.Report) -> Site | None:
    top = s.check_table(data, "", _TOP, report) or {}
    head = s.check_table(top.get("site"), "site", _SITE, report) or {}
    prefix = head.get("topic_prefix") or ""
    stale_factor = head.get("stale_factor") or 3.0
    camera = None
    if head.get("camera") is not None:
        camera = s.check_table(head["camera"], "site.camera", _CAMERA, report)

    types: dict[str, dict] = {}
    raw_types = top.get("types") or {}
    if not isinstance(raw_types, dict):
        report.error("types", "expected a table of device types")
        raw_types = {}
    for type_name, raw in raw_types.items():
        where = f"types.{type_name}"
        t = s.check_table(raw, where, _TYPE, report)
        if t is None:
            continue
        types[type_name] = {
            "label": t["label"],
            "points": s.check_list(t["points"], f"{where}.points", lambda v, w: s.check_table(v, w, _POINT, report), report),
            "overlays": s.check_list(t["overlays"], f"{where}.overlays", lambda v, w: s.check_table(v, w, _OVERLAY, report), report),
            "commands": s.check_list(t["commands"], f"{where}.commands", lambda v, w: _command(v, w, report), report),
            "alarms": _alarm_tables(t["alarms"], f"{where}.alarms", report),
        }

    devices: list[Device] = []
    seen: dict[str, str] = {}
    seen_nodes: dict[str, str] = {}
    raw_devices = top.get("devices")
    if not isinstance(raw_devices, list):
        report.error("devices", "expected an array of tables ([[devices]])")
        raw_devices = []
    for i, raw in enumerate(raw_devices):
        where = f"devices[{i}]"
        d = s.check_table(raw, where, _DEVICE, report)
        if d is None or d["id"] is None:
            continue
        where = f"devices[{i}] ({d['id']})"
        if d["id"] in seen:
            report.error(where, f"duplicate device id {d['id']!r} (first at {seen[d['id']]})")
            continue
        seen[d["id"]] = where
        node = d["node"] or d["id"]
        if node in seen_nodes:
            report.error(f"{where}.node", f"node {node!r} is already bound to {seen_nodes[node]}")
        seen_nodes[node] = d["id"]
        device = _device(d, types, prefix, where, report)
        if device is not None:
            devices.append(device)

    scenery = tuple(top.get("scenery") or ()) + tuple(head.get("scenery") or ())
    for k, pattern in enumerate(scenery):
        if not pattern.strip():
            report.error(f"scenery[{k}]", "is empty: a glob pattern of model node names, e.g. \"Building*\"")
    if not raw_devices and not report.errors:
        report.warning("devices", "the site has no devices: nothing in the model shows live data "
                       "(add [[devices]] entries that name model nodes)")

    alarm_settings = head.get("alarms")
    if alarm_settings is not None and not isinstance(alarm_settings, dict):
        report.error("site.alarms", "expected a table (chatter_per_minute, flood_count, flood_window)")
        alarm_settings = None
    if not head or head.get("model") is None:
        return None
    return Site(
        name=head["name"] or root.name,
        root=root,
        model=root / head["model"],
        devices=tuple(devices),
        topic_prefix=prefix,
        description=head["description"],
        stale_factor=stale_factor,
        camera_position=camera["position"] if camera else None,
        camera_target=camera["target"] if camera else None,
        scenery=scenery,
        alarm_settings=dict(alarm_settings or {}),
    )


def _command(raw: Any, where: str, report: s.Report) -> dict | None:
    c = s.check_table(raw, where, _COMMAND, report)
    if c is None:
        return None
    c["args"] = tuple(
        CommandArg(**a)
        for a in s.check_list(c["args"], f"{where}.args", lambda v, w: s.check_table(v, w, _ARG, report), report)
        if a["name"] is not None
    )
    for arg in c["args"]:
        if arg.kind == "enum" and not arg.states:
            report.error(f"{where}.args.{arg.name}", "an enum argument needs states")
    if c["success"] is not None:
        success = s.check_table(c["success"], f"{where}.success", _SUCCESS, report)
        c["success_point"] = success["point"] if success else None
        c["success_value"] = success["equals"] if success else None
        c["success_tolerance"] = success["tolerance"] if success else 0.0
    del c["success"]
    return c


def _device(d: dict, types: dict, prefix: str, where: str, report: s.Report) -> Device | None:
    type_name = d["type"] or ""
    base = types.get(type_name)
    if d["type"] is not None and base is None:
        report.error(f"{where}.type", f"unknown device type {type_name!r} (defined: {', '.join(sorted(types)) or 'none'})")
        base = None
    base = base or {"label": "", "points": [], "overlays": [], "commands": [], "alarms": []}

    points: dict[str, dict] = {p["id"]: p for p in base["points"] if p["id"]}
    for p in s.check_list(d["points"], f"{where}.points", lambda v, w: s.check_table(v, w, _POINT, report), report):
        if p["id"]:
            points[p["id"]] = p
    # Each overlay with where it was written: a type's overlay is the type's to fix, said once for all its devices.
    overlays = [(f"types.{type_name}.overlays[{j}]", o) for j, o in enumerate(base["overlays"])]
    overlays += [
        (f"{where}.overlays[{j}]", o)
        for j, o in enumerate(s.check_list(d["overlays"], f"{where}.overlays", lambda v, w: s.check_table(v, w, _OVERLAY, report), report))
    ]
    commands = {c["name"]: c for c in base["commands"] if c["name"]}
    for c in s.check_list(d["commands"], f"{where}.commands", lambda v, w: _command(v, w, report), report):
        if c["name"]:
            commands[c["name"]] = c

    device_id = d["id"]
    specs = []
    for p in points.values():
        topic = p["topic"] or "{prefix}/{device}/{point}"
        topic = topic.replace("{prefix}", prefix).replace("{device}", device_id).replace("{point}", p["id"]).lstrip("/")
        if p["kind"] == "enum" and not p["states"]:
            report.error(f"{where}.points.{p['id']}", "an enum point needs states = [...]")
        specs.append(PointSpec(**{k: v for k, v in p.items() if k != "topic"}, topic=topic))
    point_ids = {p.id for p in specs}

    color = None
    motions = []
    label = None
    for ow, o in overlays:
        bad = getattr(o, "invalid", frozenset())  # fields already reported as wrong: not blamed again as missing
        refs = list(o["points"] or ()) + ([o["point"]] if o["point"] else [])
        for ref in refs:
            if ref not in point_ids:
                report.error(ow, f"refers to point {ref!r}, which the device does not have")
        kind = o["kind"]
        if kind == "color":
            if not o["point"]:
                if "point" not in bad:
                    report.error(f"{ow}.point", "is required for a colour overlay")
                continue
            if not (o["map"] or o["stops"] or o["states"]) and not bad & {"map", "stops", "states"}:
                report.error(ow, "a colour overlay needs map (with range), stops or states")
            if o["map"] and not o["range"] and "range" not in bad:
                report.error(f"{ow}.range", "is required with map")
            color = ColorOverlay(o["point"], o["map"], o["range"], o["stops"] or (), o["states"] or {})
        elif kind in ("rotate", "translate", "scale"):
            if not o["point"] or not o["node"]:
                if not bad & {"point", "node"}:
                    report.error(ow, f"a {kind} overlay needs point and node")
                continue
            motions.append(
                MotionOverlay(kind, o["point"], o["node"], o["axis"], o["range"] or (0.0, 1.0), o["to"] or (0.0, 1.0))
            )
        elif kind == "label":
            pts = tuple(o["points"] or ((o["point"],) if o["point"] else ()))
            if not pts:
                if not bad & {"points", "point"}:
                    report.error(ow, "a label overlay needs points")
                continue
            label = LabelOverlay(pts, o["format"])

    cmds = []
    for c in commands.values():
        if c.get("success_point") and c["success_point"] not in point_ids:
            report.error(f"{where}.commands.{c['name']}.success", f"refers to point {c['success_point']!r}, which the device does not have")
        cmds.append(CommandSpec(**c))

    return Device(
        id=device_id,
        name=d["name"] or device_id,
        type=type_name,
        node=d["node"] or device_id,
        area=d["area"],
        meta=d["meta"] or {},
        points=tuple(specs),
        color=color,
        motions=tuple(motions),
        label=label,
        commands=tuple(cmds),
        availability_topic=f"{prefix}/{device_id}/availability".lstrip("/"),
        alarms=tuple(base["alarms"]) + tuple(_alarm_tables(d["alarms"], f"{where}.alarms", report)),
    )


def _alarm_tables(raw: Any, where: str, report: s.Report) -> list[dict]:
    """Alarm rules as raw tables; their fields are checked by twinview.twin.alarms.rules (`twinview check`)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        report.error(where, "expected an array of tables ([[...alarms]] or alarms = [{ ... }])")
        return []
    return [dict(r, _where=f"{where}[{i}]") for i, r in enumerate(raw)]
