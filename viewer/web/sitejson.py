"""site.json: what the page needs to know about a site besides its geometry.

Devices with their points, overlays (motion axes in world space, label points)
and commands (arguments, role, confirm), plus the camera and bounds. Plain JSON,
no NaN; the page reads it once at load.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from twinview.twin.commands import initial_from
from twinview.site import LoadedSite, find_part
from twinview.twin import colormaps
from twinview.site.manifest import CommandSpec, Device, PointSpec

PROTOCOL = 1
GLB_NAME = "site.glb"


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _pair(p: tuple[float, float] | None) -> list[float] | None:
    return None if p is None else [float(p[0]), float(p[1])]


def _point(p: PointSpec) -> dict:
    return {
        "id": p.id, "kind": p.kind, "unit": p.unit, "label": p.label or p.id, "range": _pair(p.range),
        "alarm": _pair(p.alarm), "states": list(p.states), "period": p.period,
    }  # fmt: skip


def _command(c: CommandSpec) -> dict:
    return {
        "name": c.name,
        "label": c.label or c.name,
        "role": c.role,
        "confirm": c.confirm,
        "interlock": c.interlock_text or c.interlock,
        "args": [
            {"name": a.name, "kind": a.kind, "min": _finite(a.min), "max": _finite(a.max), "states": list(a.states),
             "default": a.default if isinstance(a.default, (str, int, float, bool)) else None,
             "from_point": initial_from(c, a)}  # starts at this point's reported value (twin.commands.initial_value)
            for a in c.args
        ],
    }


def _hex(rgba: Any) -> str:
    return "#" + "".join(f"{max(0, min(255, round(float(c) * 255))):02x}" for c in list(rgba)[:3])


def _color(c: Any) -> dict | None:
    """The colour overlay for the page's legend: a named map over a range, thresholds or states."""
    if c is None:
        return None
    return {
        "point": c.point, "map": c.map, "range": _pair(c.range),
        "stops": [[float(v), _hex(rgba)] for v, rgba in c.stops],
        "states": {str(k): _hex(rgba) for k, rgba in c.states.items()},
        "gradient": [_hex(colormaps.sample(c.map, t / 6)) for t in range(7)] if c.map else [],
    }  # fmt: skip


def _device(loaded: LoadedSite, d: Device) -> dict:
    model = loaded.model
    motions = []
    for k, m in enumerate(d.motions):
        name = find_part(model, d.node, m.node) if d.node in model.nodes else None
        axis = np.asarray(m.axis, np.float64)
        if name is not None:
            axis = np.asarray(model.nodes[name].world, np.float64)[:3, :3] @ axis
        norm = float(np.linalg.norm(axis))
        axis = axis / norm if norm > 0 else np.array([0.0, 1.0, 0.0])
        motions.append({"index": k, "kind": m.kind, "point": m.point, "part": m.node, "axis": [float(v) for v in axis],
                        "found": name is not None})
    return {
        "id": d.id,
        "name": d.name,
        "type": d.type,
        "area": d.area,
        "meta": dict(d.meta),
        "points": [_point(p) for p in d.points],
        "color_point": d.color.point if d.color else None,
        "color": _color(d.color),
        "motions": motions,
        "label_points": list(d.label.points) if d.label else [],
        "commands": [_command(c) for c in d.commands],
    }


def site_info(loaded: LoadedSite, glb_name: str = GLB_NAME) -> dict:
    """The site.json document for a loaded site."""
    site = loaded.site
    bounds = loaded.model.bounds
    camera = None
    if site.camera_position and site.camera_target:
        camera = {"position": list(site.camera_position), "target": list(site.camera_target)}
    return {
        "protocol": PROTOCOL,
        "name": site.name,
        "description": site.description,
        "glb": glb_name,
        "camera": camera,
        "bounds": [[float(v) for v in bounds[0]], [float(v) for v in bounds[1]]],
        "devices": [_device(loaded, d) for d in site.devices],
    }


def site_json(loaded: LoadedSite, glb_name: str = GLB_NAME) -> bytes:
    return json.dumps(site_info(loaded, glb_name), allow_nan=False, separators=(",", ":")).encode("utf-8")
