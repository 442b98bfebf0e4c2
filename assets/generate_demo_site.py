"""Generate the bundled demo site: a small water-treatment and pumping plant.

    python -m twinview.assets.generate_demo_site [OUT_DIR]

writes OUT_DIR/plant.glb and OUT_DIR/site.toml (default: the demo folder beside
this file). The output is deterministic: the same bytes on every run.

The plant, west to east: an intake channel with raw water pumps, gravity
filters with backwash tanks, clear water storage tanks behind a pump hall with
high-lift pumps (open roof, so the camera sees inside), and a utilities pad with
air handling units, an electrical room and chemical dosing. y is up, metres.
Devices are group nodes named by device id with part nodes "<id>.<part>";
everything else is scenery under "structure/...". Moving parts (impellers, fan
blades, valve stems, tank level bars, conveyor rollers) are nodes with their own
mesh, turned at most about their motion axis, whose origin lies on that axis
(rotation) or at their base (scale).
"""

from __future__ import annotations

import argparse
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial

DEMO_DIR = Path(__file__).resolve().parent / "demo"
MODEL_NAME = "plant.glb"
TOPIC_PREFIX = "plant"
CAMERA_POSITION = (-38.0, 54.0, 62.0)
CAMERA_TARGET = (0.0, 0.0, -5.0)

Vec = Sequence[float]

# --- palette ------------------------------------------------------------------------

GRASS = "#7f9c62"
YARD = "#9a9b95"
ROAD = "#5a5e63"
ROAD_LINE = "#e9ecef"
SLAB = "#c4c0b6"
CONCRETE = "#b9b3a6"
BLOCK_WALL = "#d9d3c6"
COPING = "#a29d92"
STEEL = "#3d5f95"
SAFETY = "#f2c230"
GRATING = "#646c75"
WINDOW = "#93bcd4"
WATER_RAW = "#4f7d84"
TREE = "#4d7a3c"
TRUNK = "#6b4f36"
WATER_CLEAN = "#4b93bd"
PIPE_RAW = "#6f8f2a"
PIPE_CLEAN = "#2a7fd4"
PIPE_BACKWASH = "#1aa3b8"
PIPE_CHEM = "#ee8a12"
DUCT = "#c9cfd6"
PANEL = "#b3bbc3"
DARK = "#3f454c"
SKIP = "#2f6f4f"
PUMP_BASE = "#4a5057"
PUMP_CASING = "#3f63c9"
MOTOR = "#5d7186"
IMPELLER = "#d8a23f"
SHAFT = "#a3aab2"
TANK_SHELL = "#d6dde1"
TANK_ROOF = "#b8c2c8"
TANK_CHEM_A = "#f4f5f6"
TANK_CHEM_B = "#efe3a0"
GAUGE_BACK = "#343a40"
LEVEL_BAR = "#4dabf7"
VALVE_BODY = "#46525e"
HANDWHEEL = "#d9363e"
FAN_HOUSING = "#aeb6be"
FAN_BLADES = "#eef0f2"
FAN_BLADES_DARK = "#4b535b"
AHU_CASING = "#d3d8de"
AHU_DOOR = "#aab3bc"
AHU_LOUVRE = "#59626b"
CONVEYOR_FRAME = "#f0a01e"
BELT = "#2b2f33"
ROLLER = "#8f969e"
LOAD = "#a7835c"
SENSOR_BODY = "#8a9199"
SENSOR_HEAD = "#2b8ae0"


# --- primitives (each returns a mesh whose vertex layout gives the right shading) ----


def translate(v: Vec) -> np.ndarray:
    return trimesh.transformations.translation_matrix(np.asarray(v, float))


def yaw(degrees: float) -> np.ndarray:
    """Rotation about +y (up)."""
    return trimesh.transformations.rotation_matrix(math.radians(degrees), [0, 1, 0])


def box(lo: Vec, hi: Vec) -> trimesh.Trimesh:
    """Axis-aligned box from its min and max corners, flat shaded."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    mesh = trimesh.creation.box(extents=hi - lo, transform=translate((lo + hi) / 2))
    mesh.unmerge_vertices()
    return mesh


def box_at(center: Vec, size: Vec, transform: np.ndarray | None = None) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=np.asarray(size, float))
    matrix = translate(center) if transform is None else transform @ translate(center)
    mesh.apply_transform(matrix)
    mesh.unmerge_vertices()
    return mesh


def _smooth(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.graph.smooth_shade(mesh, angle=math.radians(35), facet_minarea=None)


def cyl(r: float, a: Vec, b: Vec, sections: int = 20) -> trimesh.Trimesh:
    """Cylinder of radius r from point a to point b: smooth sides, flat caps."""
    return _smooth(trimesh.creation.cylinder(radius=r, segment=[a, b], sections=sections))


def ring(r_in: float, r_out: float, a: Vec, b: Vec, sections: int = 24) -> trimesh.Trimesh:
    """Hollow cylinder (annulus) from a to b."""
    return _smooth(trimesh.creation.annulus(r_min=r_in, r_max=r_out, segment=[a, b], sections=sections))


def cone_up(r: float, h: float, base: Vec, sections: int = 32) -> trimesh.Trimesh:
    """Cone with its base circle at `base`, apex h above."""
    mesh = trimesh.creation.cone(radius=r, height=h, sections=sections)
    mesh.apply_transform(translate(base) @ trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))
    return _smooth(mesh)


def torus_y(major: float, minor: float, center: Vec, sections: int = 32) -> trimesh.Trimesh:
    """Torus lying flat (axis +y)."""
    mesh = trimesh.creation.torus(major, minor, major_sections=sections, minor_sections=6)
    mesh.apply_transform(translate(center) @ trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0]))
    return mesh


def merge(meshes: Iterable[trimesh.Trimesh]) -> trimesh.Trimesh:
    meshes = list(meshes)
    return meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)


def _perpendicular(d: np.ndarray) -> np.ndarray:
    helper = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, helper)
    return u / np.linalg.norm(u)


def tube(points: Sequence[Vec], r: float, sections: int | None = None, flanges: tuple[bool, bool] = (False, False)) -> trimesh.Trimesh:
    """A pipe along a polyline with swept bends at the corners (one smooth mesh)."""
    pts = np.asarray(points, float)
    seg = np.diff(pts, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    if (lengths <= 1e-9).any():
        raise ValueError(f"pipe path has a zero-length segment: {points}")
    dirs = seg / lengths[:, None]
    n = sections or (16 if r >= 0.08 else 10)
    steps = 6 if r >= 0.08 else 4

    rings: list[tuple[np.ndarray, np.ndarray]] = [(pts[0], dirs[0])]
    for i in range(1, len(pts) - 1):
        d1, d2 = dirs[i - 1], dirs[i]
        cos = float(np.clip(d1 @ d2, -1, 1))
        if cos > 0.9999:
            continue
        theta = math.acos(cos)
        radius = min(2.0 * r, 0.45 * lengths[i - 1] / math.tan(theta / 2), 0.45 * lengths[i] / math.tan(theta / 2))
        tangent_len = radius * math.tan(theta / 2)
        inward = d2 - cos * d1
        inward /= np.linalg.norm(inward)
        centre = pts[i] - d1 * tangent_len + inward * radius
        for t in np.linspace(0.0, theta, steps + 1):
            point = centre + radius * (-inward * math.cos(t) + d1 * math.sin(t))
            rings.append((point, d1 * math.cos(t) + inward * math.sin(t)))
    rings.append((pts[-1], dirs[-1]))

    phi = np.linspace(0, 2 * math.pi, n, endpoint=False)
    u = _perpendicular(rings[0][1])
    verts = []
    for centre, tangent in rings:
        u = u - (u @ tangent) * tangent
        u /= np.linalg.norm(u)
        v = np.cross(tangent, u)
        verts.append(centre + r * (np.outer(np.cos(phi), u) + np.outer(np.sin(phi), v)))
    verts = np.concatenate(verts)
    faces = []
    for k in range(len(rings) - 1):
        a, b = k * n, (k + 1) * n
        for j in range(n):
            j2 = (j + 1) % n
            faces.append((a + j, a + j2, b + j2))
            faces.append((a + j, b + j2, b + j))
    mesh = trimesh.Trimesh(verts, np.asarray(faces), process=False)
    # outward normals: the first face's normal must point away from the axis
    probe = mesh.triangles_center[0] - rings[0][0]
    if mesh.face_normals[0] @ probe < 0:
        mesh.invert()
    parts = [mesh]
    for end, flag in ((0, flanges[0]), (-1, flanges[1])):
        if flag:
            centre, tangent = rings[end]
            t = max(0.03, 0.28 * r)
            parts.append(cyl(r * 1.45, centre - tangent * t / 2, centre + tangent * t / 2, sections=n))
    return merge(parts)


# --- scene builder ---------------------------------------------------------------------


def _material(color: str) -> PBRMaterial:
    rgba = [int(color[i : i + 2], 16) for i in (1, 3, 5)] + [255]
    return PBRMaterial(name=color, baseColorFactor=rgba, metallicFactor=0.0, roughnessFactor=0.8)


class PlantBuilder:
    """A trimesh scene with device group nodes, part nodes and merged scenery nodes.

    Part geometry is shared between devices when its key repeats (glTF mesh instancing).
    """

    def __init__(self) -> None:
        self.scene = trimesh.Scene()
        self.base = self.scene.graph.base_frame
        self._materials: dict[str, PBRMaterial] = {}
        self._structure_count: dict[str, int] = {}

    def _geometry(self, key: str, make: Callable[[], trimesh.Trimesh], color: str) -> tuple[str, trimesh.Trimesh | None]:
        if key in self.scene.geometry:
            return key, None
        mesh = make()
        mesh.metadata = {}
        material = self._materials.setdefault(color, _material(color))
        mesh.visual = trimesh.visual.TextureVisuals(material=material)
        return key, mesh

    def _attach(self, node: str, parent: str, matrix: np.ndarray, key: str, make: Callable[[], trimesh.Trimesh], color: str) -> None:
        if node in self.scene.graph.nodes:
            raise ValueError(f"duplicate node name {node!r}")
        name, mesh = self._geometry(key, make, color)
        if mesh is not None:
            self.scene.add_geometry(mesh, geom_name=name, node_name=node, parent_node_name=parent, transform=matrix)
        else:
            self.scene.graph.update(frame_to=node, frame_from=parent, matrix=matrix, geometry=name)

    def structure(self, name: str, meshes: trimesh.Trimesh | Iterable[trimesh.Trimesh], color: str) -> str:
        """Scenery in world coordinates as one node 'structure/<name>'."""
        mesh = meshes if isinstance(meshes, trimesh.Trimesh) else merge(meshes)
        node = f"structure/{name}"
        self._attach(node, self.base, np.eye(4), node, lambda: mesh, color)
        return node

    def numbered(self, stem: str) -> str:
        """'pipe-01', 'pipe-02', ...: the next free scenery name with this stem."""
        self._structure_count[stem] = self._structure_count.get(stem, 0) + 1
        return f"{stem}-{self._structure_count[stem]:02d}"

    def device(self, device_id: str, position: Vec, heading: float = 0.0) -> None:
        """A device group node at `position`, turned `heading` degrees about +y."""
        if device_id in self.scene.graph.nodes:
            raise ValueError(f"duplicate device {device_id!r}")
        self.scene.graph.update(frame_to=device_id, frame_from=self.base, matrix=translate(position) @ yaw(heading))

    def part(self, device_id: str, part: str, key: str, make: Callable[[], trimesh.Trimesh], color: str, origin: Vec = (0, 0, 0)) -> None:
        """Part node '<id>.<part>' at `origin` in the device frame; its mesh is built around that origin."""
        self._attach(f"{device_id}.{part}", device_id, translate(origin), key, make, color)

    def triangles(self) -> int:
        total = 0
        for node in self.scene.graph.nodes_geometry:
            _, geom = self.scene.graph[node]
            total += len(self.scene.geometry[geom].faces)
        return total

    def export(self) -> bytes:
        return self.scene.export(file_type="glb", include_normals=True)


# --- equipment geometry (device-local frames, y up, origin on the floor) -------------------


def pump_suction(s: float) -> np.ndarray:
    return np.array([-1.0 * s, 0.8 * s, 0.0])


def pump_discharge(s: float) -> np.ndarray:
    return np.array([-0.6 * s, 1.5 * s, 0.0])


def add_pump(b: PlantBuilder, device_id: str, position: Vec, s: float) -> None:
    """End-suction centrifugal pump, shaft along +x: casing at -x, motor at +x."""
    b.device(device_id, position)
    k = f"pump@{s:g}"
    axis_y = 0.8 * s
    b.part(device_id, "base", f"{k}.base", lambda: box((-1.2 * s, 0, -0.45 * s), (1.2 * s, 0.22 * s, 0.45 * s)), PUMP_BASE)
    b.part(device_id, "body", f"{k}.body", lambda: merge([
        ring(0.36 * s, 0.48 * s, (-0.77 * s, axis_y, 0), (-0.43 * s, axis_y, 0), sections=24),
        box((-0.72 * s, 0.22 * s, -0.22 * s), (-0.48 * s, 0.36 * s, 0.22 * s)),
        cyl(0.13 * s, (-0.6 * s, axis_y + 0.42 * s, 0), (-0.6 * s, 1.45 * s, 0), sections=16),
        cyl(0.2 * s, (-0.6 * s, 1.43 * s, 0), (-0.6 * s, 1.5 * s, 0), sections=16),
        cyl(0.15 * s, (-0.77 * s, axis_y, 0), (-0.97 * s, axis_y, 0), sections=16),
        cyl(0.22 * s, (-0.95 * s, axis_y, 0), (-1.0 * s, axis_y, 0), sections=16),
    ]), PUMP_CASING)

    def impeller() -> trimesh.Trimesh:
        parts = [cyl(0.09 * s, (-0.12 * s, 0, 0), (0.12 * s, 0, 0), sections=12)]
        for i in range(6):
            spin = trimesh.transformations.rotation_matrix(i * math.pi / 3, [1, 0, 0])
            parts.append(box_at((0, 0.21 * s, 0), (0.22 * s, 0.26 * s, 0.045 * s), transform=spin))
        return merge(parts)

    b.part(device_id, "impeller", f"{k}.impeller", impeller, IMPELLER, origin=(-0.6 * s, axis_y, 0))
    b.part(device_id, "shaft", f"{k}.shaft", lambda: merge([
        cyl(0.045 * s, (-0.45 * s, axis_y, 0), (0.12 * s, axis_y, 0), sections=10),
        cyl(0.12 * s, (-0.36 * s, axis_y, 0), (-0.2 * s, axis_y, 0), sections=14),
        box((-0.34 * s, 0.22 * s, -0.12 * s), (-0.22 * s, axis_y, 0.12 * s)),
        cyl(0.13 * s, (-0.02 * s, axis_y, 0), (0.1 * s, axis_y, 0), sections=14),
    ]), SHAFT)
    b.part(device_id, "motor", f"{k}.motor", lambda: merge([
        cyl(0.36 * s, (0.1 * s, axis_y, 0), (1.1 * s, axis_y, 0), sections=24),
        cyl(0.33 * s, (1.1 * s, axis_y, 0), (1.26 * s, axis_y, 0), sections=24),
        box((0.2 * s, 0.22 * s, -0.3 * s), (1.0 * s, 0.5 * s, 0.3 * s)),
        box((0.42 * s, axis_y + 0.3 * s, -0.16 * s), (0.72 * s, axis_y + 0.48 * s, 0.16 * s)),
    ]), MOTOR)


def add_tank(b: PlantBuilder, device_id: str, position: Vec, r: float, h: float, shell: str, gauge_angle: float, ladder_angle: float, big: bool) -> None:
    """Vertical cylindrical tank with a level gauge bar whose node origin is at its base."""
    b.device(device_id, position)
    k = f"tank@{r:g}x{h:g}@{shell}@{gauge_angle:g}@{ladder_angle:g}"
    plinth = 0.3
    b.part(device_id, "plinth", f"tank@{r:g}.plinth", lambda: cyl(r + 0.3, (0, 0, 0), (0, plinth, 0), sections=40), CONCRETE)
    b.part(device_id, "shell", f"{k}.shell", lambda: merge(
        [cyl(r, (0, plinth, 0), (0, h, 0), sections=40 if big else 28)]
        + [cyl(r + 0.04, (0, y - 0.05, 0), (0, y + 0.05, 0), sections=40 if big else 28) for y in np.linspace(plinth, h, 4)[1:-1]]
    ), shell)
    b.part(device_id, "roof", f"{k}.roof", lambda: merge([
        cone_up(r * 1.03, 0.2 * r, (0, h, 0), sections=40 if big else 28),
        cyl(0.3, (0, h + 0.15 * r, 0), (0, h + 0.2 * r + 0.12, 0), sections=12),
    ]), TANK_ROOF)

    def rails() -> trimesh.Trimesh:
        turn = yaw(ladder_angle)
        parts = []
        for x in (-0.22, 0.22):
            parts.append(box_at((x, (plinth + h + 0.9) / 2, r + 0.2), (0.05, h + 0.9 - plinth, 0.05), transform=turn))
        for y in np.arange(plinth + 0.3, h, 0.35):
            parts.append(box_at((0, y, r + 0.2), (0.44, 0.035, 0.035), transform=turn))
        if big:
            rail_base = h + 0.02 * r
            parts.append(torus_y(r * 0.92, 0.035, (0, rail_base + 1.0, 0), sections=36))
            for a in np.arange(0, 360, 45):
                parts.append(box_at((0, rail_base + 0.5, r * 0.92), (0.05, 1.0, 0.05), transform=yaw(a)))
        return merge(parts)

    b.part(device_id, "ladder", f"{k}.ladder", rails, SAFETY)
    # level gauge: a dark backing plate and, in front of it, the bar the level overlay scales
    bottom, top = plinth + 0.25, h - 0.35
    turn = yaw(gauge_angle)
    radial = np.array([math.sin(math.radians(gauge_angle)), 0.0, math.cos(math.radians(gauge_angle))])
    b.part(device_id, "gauge", f"{k}.gauge", lambda: box_at((0, (bottom + top) / 2 - 0.05, r + 0.1), (0.42, top - bottom + 0.2, 0.06), transform=turn), GAUGE_BACK)
    b.part(device_id, "level", f"{k}.level", lambda: box_at((0, (top - bottom) / 2, 0), (0.26, top - bottom, 0.08), transform=turn),
           LEVEL_BAR, origin=tuple(radial * (r + 0.17) + np.array([0, bottom, 0])))


def add_valve(b: PlantBuilder, device_id: str, position: Vec, pr: float, heading: float) -> None:
    """Gate valve on a pipe along the device's x axis; the stem node (with handwheel) rises with opening."""
    b.device(device_id, position, heading)
    k = f"valve@{pr:g}"
    bonnet_top = 3.0 * pr + 0.05
    b.part(device_id, "body", f"{k}.body", lambda: merge([
        trimesh.creation.icosphere(subdivisions=2, radius=1.55 * pr),
        cyl(1.6 * pr, (-1.75 * pr, 0, 0), (-1.45 * pr, 0, 0), sections=16),
        cyl(1.6 * pr, (1.45 * pr, 0, 0), (1.75 * pr, 0, 0), sections=16),
        cyl(0.75 * pr, (0, 1.0 * pr, 0), (0, bonnet_top - 0.05, 0), sections=16),
        cyl(1.0 * pr, (0, bonnet_top - 0.06, 0), (0, bonnet_top, 0), sections=16),
    ]), VALVE_BODY)
    wheel_r = max(0.18, 1.25 * pr)

    def stem() -> trimesh.Trimesh:
        height = 0.3
        parts = [
            cyl(0.025, (0, -0.15, 0), (0, height, 0), sections=8),
            torus_y(wheel_r, 0.025, (0, height, 0), sections=24),
            box_at((0, height, 0), (2 * wheel_r, 0.03, 0.04)),
            box_at((0, height, 0), (0.04, 0.03, 2 * wheel_r)),
        ]
        return merge(parts)

    b.part(device_id, "stem", f"{k}.stem", stem, HANDWHEEL, origin=(0, bonnet_top, 0))


def add_hall_fan(b: PlantBuilder, device_id: str, position: Vec, drop: float) -> None:
    """Ceiling fan hung from a roof beam; the blades spin about +y through the hub (the node origin)."""
    b.device(device_id, position)
    b.part(device_id, "mount", f"hallfan@{drop:g}.mount", lambda: merge([
        cyl(0.05, (0, 0.2, 0), (0, drop, 0), sections=8),
        cyl(0.24, (0, 0.08, 0), (0, 0.5, 0), sections=16),
    ]), FAN_HOUSING)

    def blades() -> trimesh.Trimesh:
        parts = [cyl(0.2, (0, -0.06, 0), (0, 0.08, 0), sections=16)]
        for i in range(6):
            pitch = trimesh.transformations.rotation_matrix(math.radians(10), [1, 0, 0])
            parts.append(box_at((0, 0, 0), (1.55, 0.03, 0.22), transform=yaw(i * 60) @ translate((0.97, 0, 0)) @ pitch))
        return merge(parts)

    b.part(device_id, "blades", "hallfan.blades", blades, FAN_BLADES)


def add_roof_fan(b: PlantBuilder, device_id: str, position: Vec) -> None:
    """Upblast roof exhaust fan; blades visible from above, spinning about +y."""
    b.device(device_id, position)
    b.part(device_id, "housing", "rooffan.housing", lambda: merge([
        box((-0.75, 0, -0.75), (0.75, 0.3, 0.75)),
        ring(0.56, 0.63, (0, 0.3, 0), (0, 1.05, 0), sections=28),
        ring(0.63, 0.72, (0, 1.0, 0), (0, 1.08, 0), sections=28),
        cyl(0.18, (0, 0.3, 0), (0, 0.72, 0), sections=12),
    ]), FAN_HOUSING)

    def blades() -> trimesh.Trimesh:
        parts = [cyl(0.12, (0, -0.05, 0), (0, 0.06, 0), sections=12)]
        for i in range(6):
            pitch = trimesh.transformations.rotation_matrix(math.radians(25), [1, 0, 0])
            parts.append(box_at((0, 0, 0), (0.42, 0.02, 0.16), transform=yaw(i * 60) @ translate((0.32, 0, 0)) @ pitch))
        return merge(parts)

    b.part(device_id, "blades", "rooffan.blades", blades, FAN_BLADES_DARK, origin=(0, 0.8, 0))


def add_ahu(b: PlantBuilder, device_id: str, position: Vec) -> None:
    """Air handling unit on a steel base, long axis along z."""
    b.device(device_id, position)
    b.part(device_id, "base", "ahu.base", lambda: box((-1.0, 0, -1.75), (1.0, 0.2, 1.75)), PUMP_BASE)
    b.part(device_id, "casing", "ahu.casing", lambda: box((-0.95, 0.2, -1.7), (0.95, 2.3, 1.7)), AHU_CASING)
    b.part(device_id, "doors", "ahu.doors", lambda: merge(
        [box((-0.98, 0.4, z - 0.55), (-0.95, 2.1, z + 0.55)) for z in (-1.0, 0.25)]
        + [box((-1.02, 1.2, z + 0.35), (-0.98, 1.35, z + 0.42)) for z in (-1.0, 0.25)]
    ), AHU_DOOR)
    b.part(device_id, "louvre", "ahu.louvre", lambda: merge(
        [box((-0.8, y, 1.7), (0.8, y + 0.08, 1.78)) for y in np.arange(0.5, 2.1, 0.18)]
    ), AHU_LOUVRE)
    b.part(device_id, "fan", "ahu.fan", lambda: merge([
        ring(0.42, 0.5, (0, 2.3, -0.9), (0, 2.55, -0.9), sections=20),
        cyl(0.42, (0, 2.3, -0.9), (0, 2.36, -0.9), sections=20),
    ]), FAN_HOUSING)


def add_conveyor(b: PlantBuilder, device_id: str, position: Vec, length: float, height: float, load: bool) -> None:
    """Belt conveyor along +x; the head roller at +x spins about z through its node origin."""
    b.device(device_id, position)
    k = f"conveyor@{length:g}x{height:g}"
    half, w = length / 2, 0.8

    def frame() -> trimesh.Trimesh:
        parts = [box((-half, height - 0.18, z - 0.03), (half, height, z + 0.03)) for z in (-w / 2 - 0.03, w / 2 + 0.03)]
        for x in np.linspace(-half + 0.3, half - 0.3, max(2, int(length / 1.6) + 1)):
            for z in (-w / 2 - 0.03, w / 2 + 0.03):
                parts.append(box((x - 0.04, 0, z - 0.04), (x + 0.04, height - 0.18, z + 0.04)))
            parts.append(box((x - 0.03, 0.3, -w / 2), (x + 0.03, 0.36, w / 2)))
        return merge(parts)

    b.part(device_id, "frame", f"{k}.frame", frame, CONVEYOR_FRAME)
    b.part(device_id, "belt", f"{k}.belt", lambda: box((-half, height - 0.02, -w / 2 + 0.02), (half, height + 0.02, w / 2 - 0.02)), BELT)
    b.part(device_id, "tail", f"{k}.tail", lambda: cyl(0.13, (-half, height - 0.13, -w / 2), (-half, height - 0.13, w / 2), sections=16), ROLLER)

    def roller() -> trimesh.Trimesh:
        parts = [cyl(0.14, (0, 0, -w / 2 - 0.06), (0, 0, w / 2 + 0.06), sections=16)]
        for i in range(3):
            spin = trimesh.transformations.rotation_matrix(i * 2 * math.pi / 3, [0, 0, 1])
            for z in (-w / 2 - 0.08, w / 2 + 0.08):
                parts.append(box_at((0.1, 0, z), (0.2, 0.05, 0.04), transform=spin))
        return merge(parts)

    b.part(device_id, "roller", "conveyor.roller", roller, ROLLER, origin=(half, height - 0.14, 0))
    b.part(device_id, "drive", f"{k}.drive", lambda: merge([
        box((half - 0.45, height - 0.45, -w / 2 - 0.55), (half + 0.1, height - 0.05, -w / 2 - 0.12)),
        cyl(0.14, (half - 0.2, height - 0.25, -w / 2 - 0.55), (half - 0.2, height - 0.25, -w / 2 - 1.0), sections=14),
    ]), MOTOR)
    if load:
        b.part(device_id, "load", f"{k}.load", lambda: merge(
            [box_at((x, height + 0.13, 0), (0.55, 0.22, 0.4)) for x in np.arange(-half + 0.6, half - 0.5, 1.3)]
        ), LOAD)


def add_flow_meter(b: PlantBuilder, device_id: str, position: Vec, pr: float, heading: float = 0.0) -> None:
    """Magnetic flow meter spool on a pipe along the device's x axis, transmitter head on top."""
    b.device(device_id, position, heading)
    b.part(device_id, "body", f"flowmeter@{pr:g}.body", lambda: merge([
        cyl(1.3 * pr, (-1.4 * pr, 0, 0), (1.4 * pr, 0, 0), sections=20),
        cyl(1.55 * pr, (-1.6 * pr, 0, 0), (-1.4 * pr, 0, 0), sections=20),
        cyl(1.55 * pr, (1.4 * pr, 0, 0), (1.6 * pr, 0, 0), sections=20),
        cyl(0.05, (0, 1.25 * pr, 0), (0, 1.3 * pr + 0.16, 0), sections=8),
    ]), SENSOR_BODY)
    b.part(device_id, "head", f"flowmeter@{pr:g}.head", lambda: box_at((0, 1.3 * pr + 0.3, 0), (0.3, 0.28, 0.3)), SENSOR_HEAD)


def add_transmitter(b: PlantBuilder, device_id: str, position: Vec, heading: float) -> None:
    """Pressure or temperature transmitter on a tapping; points along the device's +z."""
    b.device(device_id, position, heading)
    b.part(device_id, "body", "transmitter.body", lambda: merge([
        cyl(0.03, (0, 0, 0), (0, 0, 0.2), sections=8),
        box((-0.07, -0.07, 0.2), (0.07, 0.07, 0.3)),
    ]), SENSOR_BODY)
    b.part(device_id, "head", "transmitter.head", lambda: cyl(0.13, (0, 0, 0.3), (0, 0, 0.46), sections=16), SENSOR_HEAD)


def add_vibration_sensor(b: PlantBuilder, device_id: str, position: Vec) -> None:
    b.device(device_id, position)
    b.part(device_id, "body", "vibration.body", lambda: cyl(0.08, (0, 0, 0), (0, 0.14, 0), sections=12), SENSOR_HEAD)
    b.part(device_id, "cable", "vibration.cable", lambda: cyl(0.015, (0, 0.07, 0), (0.25, 0.07, 0), sections=6), DARK)


def add_wall_sensor(b: PlantBuilder, device_id: str, position: Vec, heading: float) -> None:
    """Room temperature sensor on a wall; faces the device's +z."""
    b.device(device_id, position, heading)
    b.part(device_id, "body", "wallsensor.body", lambda: box((-0.15, -0.2, 0), (0.15, 0.2, 0.1)), SENSOR_BODY)
    b.part(device_id, "head", "wallsensor.head", lambda: box((-0.11, -0.05, 0.1), (0.11, 0.15, 0.13)), SENSOR_HEAD)


def add_probe(b: PlantBuilder, device_id: str, position: Vec, depth: float) -> None:
    """Immersion probe on a bracket, reaching `depth` metres down."""
    b.device(device_id, position)
    b.part(device_id, "body", f"probe@{depth:g}.body", lambda: merge([
        box((-0.2, 0, -0.1), (0.2, 0.06, 0.1)),
        cyl(0.025, (-0.45, 0.3, 0), (-0.45, -depth, 0), sections=8),
        box((-0.45, 0.03, -0.03), (0, 0.06, 0.03)),
    ]), SENSOR_BODY)
    b.part(device_id, "head", f"probe@{depth:g}.head", lambda: box_at((-0.45, 0.42, 0), (0.22, 0.24, 0.22)), SENSOR_HEAD)


# --- manifest ---------------------------------------------------------------------------

RUNNING = "#2f9e44"
STOPPED = "#6c7a89"
FAULT = "#e03131"
IDLE = "#8a8f98"


def _cmd(name: str, label: str, point: str, equals: Any, **extra: Any) -> dict:
    command = {"name": name, "label": label}
    command.update({k: v for k, v in extra.items() if k not in ("tolerance",)})
    success = {"point": point, "equals": equals}
    if "tolerance" in extra:
        success["tolerance"] = extra["tolerance"]
    command["success"] = success
    return command


TYPES: dict[str, dict] = {
    "pump": {
        "label": "Centrifugal pump",
        "points": [
            {"id": "state", "kind": "enum", "label": "State", "states": ["stopped", "running", "fault"], "alarm_states": ["fault"], "period": 5},
            {"id": "speed", "unit": "rpm", "label": "Speed", "range": [0, 3600], "period": 2},
            {"id": "pressure", "unit": "bar", "label": "Discharge pressure", "range": [0, 16], "period": 2},
            {"id": "motor_temp", "unit": "degC", "label": "Motor temperature", "range": [-20, 150], "period": 5},
        ],
        "alarms": [
            {"point": "state", "kind": "state", "states": ["fault"], "severity": "high", "name": "tripped",
             "message": "{device} tripped (state {value})"},
            {"point": "motor_temp", "kind": "high", "limit": 85, "deadband": 3, "on_delay": 5, "severity": "high",
             "message": "Motor temperature {value:.1f} degC above {limit:g} degC"},
            {"point": "motor_temp", "kind": "high_high", "limit": 110, "deadband": 3, "on_delay": 2, "severity": "critical",
             "message": "Motor temperature {value:.1f} degC above trip level {limit:g} degC"},
            {"point": "pressure", "kind": "low", "limit": 1.5, "deadband": 0.3, "on_delay": 10, "severity": "medium",
             "suppress_when": "state != 'running'",
             "message": "Discharge pressure {value:.2f} bar below {limit:g} bar (suppressed while the pump is not running)"},
            {"kind": "command", "severity": "medium", "name": "command_failed", "message": "Command {value}"},
        ],
        "overlays": [
            {"kind": "color", "point": "state", "states": {"running": RUNNING, "stopped": STOPPED, "fault": FAULT}},
            {"kind": "rotate", "point": "speed", "node": "impeller", "axis": [1, 0, 0], "range": [0, 3000], "to": [0, 6]},
            {"kind": "label", "points": ["speed"], "format": "{speed:.0f} rpm"},
        ],
        "commands": [
            _cmd("start", "Start", "state", "running", role="operator", timeout=15),
            _cmd("stop", "Stop", "state", "stopped", confirm=True),
            _cmd("set_speed", "Set speed", "speed", "$speed", tolerance=50,
                 args=[{"name": "speed", "kind": "number", "min": 0, "max": 3000}]),
        ],
    },
    "tank": {
        "label": "Storage tank",
        "points": [
            {"id": "level", "unit": "%", "label": "Level", "range": [0, 100], "period": 5},
            {"id": "temperature", "unit": "degC", "label": "Water temperature", "range": [0, 80], "period": 10},
            {"id": "drain_open", "kind": "bool", "label": "Drain valve open", "period": 10},
        ],
        "overlays": [
            {"kind": "color", "point": "level", "map": "blues", "range": [0, 100]},
            {"kind": "scale", "point": "level", "node": "level", "axis": [0, 1, 0], "range": [0, 100], "to": [0.02, 1]},
            {"kind": "label", "points": ["level"], "format": "{level:.0f} %"},
        ],
        "alarms": [
            {"point": "level", "kind": "high_high", "limit": 97, "deadband": 2, "severity": "critical", "message": "Level {value:.0f} % - overflow"},
            {"point": "level", "kind": "high", "limit": 90, "deadband": 3, "on_delay": 5, "severity": "medium", "message": "Level {value:.0f} % above {limit:g} %"},
            {"point": "level", "kind": "low", "limit": 15, "deadband": 3, "on_delay": 5, "severity": "medium", "message": "Level {value:.0f} % below {limit:g} %"},
            {"point": "level", "kind": "low_low", "limit": 5, "deadband": 2, "severity": "high", "message": "Level {value:.0f} % - pumps run dry"},
        ],
        "commands": [
            _cmd("open_drain", "Open drain", "drain_open", True, confirm=True,
                 interlock="level > 10", interlock_text="Drain only above 10 % level"),
            _cmd("close_drain", "Close drain", "drain_open", False),
        ],
    },
    "valve": {
        "label": "Motorised valve",
        "points": [
            {"id": "position", "unit": "%", "label": "Position", "range": [0, 100], "period": 5},
        ],
        "overlays": [
            {"kind": "color", "point": "position", "stops": [[0, IDLE], [1, RUNNING]]},
            {"kind": "translate", "point": "position", "node": "stem", "axis": [0, 1, 0], "range": [0, 100], "to": [0, 0.15]},
        ],
        "commands": [
            _cmd("set_position", "Set position", "position", "$position", tolerance=2,
                 args=[{"name": "position", "kind": "number", "min": 0, "max": 100}]),
            _cmd("open", "Open", "position", 100, tolerance=2),
            _cmd("close", "Close", "position", 0, tolerance=2),
        ],
    },
    "fan": {
        "label": "Fan",
        "points": [
            {"id": "running", "kind": "bool", "label": "Running", "period": 5},
            {"id": "speed", "unit": "rpm", "label": "Speed", "range": [0, 1800], "period": 2},
        ],
        "overlays": [
            {"kind": "color", "point": "running", "states": {"true": RUNNING, "false": IDLE}},
            {"kind": "rotate", "point": "speed", "node": "blades", "axis": [0, 1, 0], "range": [0, 1500], "to": [0, 5]},
        ],
        "commands": [
            _cmd("start", "Start", "running", True),
            _cmd("stop", "Stop", "running", False),
        ],
    },
    "hvac": {
        "label": "Air handling unit",
        "points": [
            {"id": "supply_temp", "unit": "degC", "label": "Supply air temperature", "range": [-10, 50], "period": 10},
            {"id": "return_temp", "unit": "degC", "label": "Return air temperature", "range": [-10, 50], "period": 10},
            {"id": "fan_running", "kind": "bool", "label": "Supply fan running", "period": 10},
        ],
        "overlays": [
            {"kind": "color", "point": "supply_temp", "map": "coolwarm", "range": [10, 30]},
            {"kind": "label", "points": ["supply_temp"], "format": "{supply_temp:.1f} °C"},
        ],
        "alarms": [
            {"point": "supply_temp", "kind": "high", "limit": 28, "deadband": 1, "on_delay": 20, "severity": "low"},
            {"point": "supply_temp", "kind": "low", "limit": 12, "deadband": 1, "on_delay": 20, "severity": "low"},
            {"point": "supply_temp", "kind": "quality", "qualities": ["bad", "stale", "offline"], "on_delay": 10,
             "severity": "low", "name": "no_data", "message": "Supply air temperature is {value}"},
        ],
        "commands": [],
    },
    "conveyor": {
        "label": "Belt conveyor",
        "points": [
            {"id": "running", "kind": "bool", "label": "Running", "period": 5},
            {"id": "speed", "unit": "m/s", "label": "Belt speed", "range": [0, 2.5], "period": 2},
            {"id": "items", "unit": "1/min", "label": "Items per minute", "range": [0, 120], "period": 5},
        ],
        "overlays": [
            {"kind": "color", "point": "running", "states": {"true": RUNNING, "false": IDLE}},
            {"kind": "rotate", "point": "speed", "node": "roller", "axis": [0, 0, -1], "range": [0, 2.5], "to": [0, 2.8]},
        ],
        "commands": [
            _cmd("start", "Start", "running", True),
            _cmd("stop", "Stop", "running", False),
        ],
    },
    "sensor": {
        "label": "Transmitter",
        "points": [],
        "overlays": [],
        "commands": [],
    },
}

# one-point sensors: point definition, colour overlay and label by measured quantity
SENSOR_KINDS: dict[str, dict] = {
    "flow": {"unit": "m3/h", "label": "Flow", "map": "heat", "format": "{flow:.0f} m3/h", "period": 2},
    "pressure": {"unit": "bar", "label": "Pressure", "map": "heat", "format": "{pressure:.1f} bar", "period": 2},
    "temperature": {"unit": "degC", "label": "Temperature", "map": "heat", "format": "{temperature:.1f} °C", "period": 10},
    "vibration": {"unit": "mm/s", "label": "Vibration velocity", "map": "traffic", "format": "{vibration:.1f} mm/s", "period": 5},
}

VENDORS: dict[str, tuple[str, str]] = {
    "pump": ("Aquaflux Pumps", "AFC"),
    "tank": ("Corrashield Tanks", "CST"),
    "valve": ("Vanterra Valves", "VGV"),
    "fan": ("Ventora", "VNT"),
    "hvac": ("Klimacor", "KLM"),
    "conveyor": ("Transbelt Systems", "TBS"),
    "flow": ("Sensiq", "MF"),
    "pressure": ("Sensiq", "PX"),
    "temperature": ("Sensiq", "TX"),
    "vibration": ("Vibrex", "VB"),
}


@dataclass
class DemoDevice:
    id: str
    type: str
    name: str
    area: str
    model: str
    install_year: int
    vendor: str = ""  # key into VENDORS; default: the device type
    points: list[dict] = field(default_factory=list)
    overlays: list[dict] = field(default_factory=list)

    def meta(self) -> dict[str, str]:
        maker, code = VENDORS[self.vendor or self.type]
        serial = f"{code}-{self.install_year % 100:02d}{zlib.crc32(self.id.encode()) % 100000:05d}"
        return {"manufacturer": maker, "model": self.model, "serial": serial, "install_year": str(self.install_year)}


def sensor(device_id: str, quantity: str, name: str, area: str, model: str, year: int, range_: tuple[float, float],
           alarm: tuple[float, float], label: bool = True) -> DemoDevice:
    """A one-point transmitter. Sensors mounted on a pump set label=False: the pump's own label sits there."""
    kind = SENSOR_KINDS[quantity]
    point = {"id": quantity, "unit": kind["unit"], "label": kind["label"], "range": list(range_), "alarm": list(alarm), "period": kind["period"]}
    overlays = [{"kind": "color", "point": quantity, "map": kind["map"], "range": list(range_)}]
    if label:
        overlays.append({"kind": "label", "points": [quantity], "format": kind["format"]})
    return DemoDevice(device_id, "sensor", name, area, model, year, vendor=quantity, points=[point], overlays=overlays)


# --- TOML writing --------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key not in ("true", "false") else json.dumps(key)


def manifest_text(devices: Sequence[DemoDevice]) -> str:
    lines = [
        "# Demo site: a small water-treatment and pumping plant.",
        "# Generated by assets/generate_demo_site.py; edit that script, not this file.",
        "",
        "[site]",
        'name = "Riverside water treatment plant"',
        f'model = "{MODEL_NAME}"',
        f'topic_prefix = "{TOPIC_PREFIX}"',
        'description = "Intake, filtration, clear water storage, high-lift pump hall and utilities."',
        "",
        "[site.camera]",
        f"position = {_toml(list(CAMERA_POSITION))}",
        f"target = {_toml(list(CAMERA_TARGET))}",
        "",
        "# EEMUA 191: more than 10 new alarms in 10 minutes in one area is a flood; more than",
        "# chatter_per_minute activations of one alarm in a minute is chattering.",
        "[site.alarms]",
        "chatter_per_minute = 5",
        "flood_count = 10",
        "flood_window = 600",
    ]
    for type_name, spec in TYPES.items():
        lines += ["", f"[types.{type_name}]", f"label = {_toml(spec['label'])}"]
        for section in ("points", "overlays", "commands", "alarms"):
            for entry in spec.get(section, ()):
                lines += ["", f"[[types.{type_name}.{section}]]"]
                lines += [f"{_key(k)} = {_toml(v)}" for k, v in entry.items()]
    area = None
    for d in devices:
        if d.area != area:
            area = d.area
            lines += ["", f"# --- {area} " + "-" * max(3, 70 - len(area))]
        lines += ["", "[[devices]]", f"id = {_toml(d.id)}", f"type = {_toml(d.type)}", f"name = {_toml(d.name)}",
                  f"area = {_toml(d.area)}", f"meta = {_toml(d.meta())}"]
        if d.points:
            lines.append(f"points = {_toml(d.points)}")
        if d.overlays:
            lines.append(f"overlays = {_toml(d.overlays)}")
    return "\n".join(lines) + "\n"


# --- the plant ----------------------------------------------------------------------------

FLOOR = 0.15  # top of the concrete pads and the pump hall floor; the yard is at 0


class Plant:
    """Lays out scenery and devices area by area, recording devices for the manifest."""

    def __init__(self) -> None:
        self.b = PlantBuilder()
        self.devices: list[DemoDevice] = []

    def add(self, device: DemoDevice) -> DemoDevice:
        self.devices.append(device)
        return device

    def pipe(self, points: Sequence[Vec], r: float, color: str, flanges: tuple[bool, bool] = (False, False)) -> None:
        self.b.structure(self.b.numbered("pipe"), tube(points, r, flanges=flanges), color)

    def build(self) -> None:
        self.grounds()
        self.intake()
        self.filtration()
        self.storage()
        self.pump_hall()
        self.utilities()

    # --- scenery shared by all areas ---

    def grounds(self) -> None:
        b = self.b
        b.structure("grass", box((-80, -0.4, -60), (80, -0.04, 70)), GRASS)
        b.structure("yard", box((-46, -0.3, -31), (44, 0.0, 19)), YARD)
        b.structure("road", box((-80, -0.3, 19), (80, 0.01, 25)), ROAD)
        b.structure("road-markings", [box((x, 0.01, 21.9), (x + 3, 0.02, 22.1)) for x in np.arange(-78, 78, 6)], ROAD_LINE)
        b.structure("floor", box((-1.6, -0.2, -9.6), (23.6, FLOOR, 9.6)), SLAB)
        b.structure("pad-intake", box((-35.5, -0.2, -12), (-24.5, FLOOR, 12)), SLAB)
        b.structure("pad-filtration", box((-21.5, -0.2, -16), (-4.5, FLOOR, 17)), SLAB)
        b.structure("pad-utilities", box((25.5, -0.2, -16), (42, FLOOR, 18.4)), SLAB)
        # perimeter fence: posts and a top rail
        fence = []
        corners = [(-45.5, -30.5), (43.5, -30.5), (43.5, 18.6), (-45.5, 18.6)]
        for (x0, z0), (x1, z1) in zip(corners, corners[1:] + corners[:1]):
            n = int(max(abs(x1 - x0), abs(z1 - z0)) / 3)
            for t in np.linspace(0, 1, n, endpoint=False):
                x, z = x0 + (x1 - x0) * t, z0 + (z1 - z0) * t
                fence.append(box((x - 0.04, 0, z - 0.04), (x + 0.04, 2.0, z + 0.04)))
            lo, hi = np.minimum((x0, z0), (x1, z1)), np.maximum((x0, z0), (x1, z1))
            for y in (0.1, 1.95):
                fence.append(box((lo[0] - 0.02, y, lo[1] - 0.02), (hi[0] + 0.02, y + 0.04, hi[1] + 0.02)))
        b.structure("fence", fence, "#7d8790")
        # a few trees outside the fence (positions fixed by a seeded generator)
        rng = np.random.default_rng(7)
        crowns, trunks = [], []
        spots = [(x, -36.0 + rng.uniform(-2, 2)) for x in np.arange(-40, 42, 7.5)]
        spots += [(49.0 + rng.uniform(-2, 2), z) for z in np.arange(-28, 16, 8)]
        spots += [(-51.0 + rng.uniform(-2, 2), z) for z in np.arange(-26, 16, 9)]
        for x, z in spots:
            size = rng.uniform(0.8, 1.25)
            trunks.append(cyl(0.18 * size, (x, 0, z), (x, 2.2 * size, z), sections=8))
            crowns.append(cone_up(1.7 * size, 5.0 * size, (x, 1.6 * size, z), sections=12))
        b.structure("trees", crowns, TREE)
        b.structure("tree-trunks", trunks, TRUNK)

    def supports(self, points: Iterable[Vec], top: float, width: float = 0.25) -> None:
        """Steel posts with a cross bar carrying an overhead pipe at height `top`."""
        parts = []
        for x, z in points:
            parts.append(box((x - 0.1, 0.0, z - 0.1), (x + 0.1, top - 0.12, z + 0.1)))
            parts.append(box((x - width, top - 0.32, z - width), (x + width, top - 0.2, z + width)))
        self.b.structure(self.b.numbered("pipe-support"), parts, STEEL)

    # --- intake ---

    def intake(self) -> None:
        b = self.b
        wall_top, water = 1.0, 0.45
        b.structure("channel", [
            box((-41.0, -0.3, -31), (-40.5, wall_top, 16)),
            box((-36.5, -0.3, -31), (-36.0, wall_top, 16)),
            box((-41.0, -0.3, 15.5), (-36.0, wall_top, 16)),
        ], CONCRETE)
        b.structure("water-intake", box((-40.5, -0.3, -31), (-36.5, water, 15.5)), WATER_RAW)
        for i, z in enumerate((-19.0, -14.5), start=1):
            parts = [box((-40.5, 0.2, z - 0.12), (-36.5, 0.35, z + 0.12)), box((-40.6, 1.8, z - 0.15), (-35.9, 1.95, z + 0.15))]
            parts += [box((x - 0.03, 0.2, z - 0.03), (x + 0.03, 1.9, z + 0.03)) for x in np.arange(-40.3, -36.6, 0.3)]
            parts += [box((x - 0.08, wall_top, z - 0.08), (x + 0.08, 1.9, z + 0.08)) for x in (-40.75, -36.25)]
            b.structure(f"screen-{i}", parts, "#a3a9af")

        s = 1.25
        header_x, header_y = -26.0, 2.8
        pump_x = -31.5
        zs = (-9.0, -3.0, 3.0, 9.0)
        for i, z in enumerate(zs, start=1):
            pid, vid = f"P-10{i}", f"V-10{i}"
            add_pump(b, pid, (pump_x, FLOOR, z), s)
            self.add(DemoDevice(pid, "pump", f"Raw water pump {i}", "Intake", "AFC 200-400", 2011 + (i > 2) * 7))
            suction = np.array([pump_x, FLOOR, z]) + pump_suction(s)
            discharge = np.array([pump_x, FLOOR, z]) + pump_discharge(s)
            self.pipe([(-38.5, -0.1, z), (-38.5, suction[1], z), suction], 0.18, PIPE_RAW, flanges=(False, True))
            b.structure(self.b.numbered("bellmouth"), cyl(0.32, (-38.5, -0.2, z), (-38.5, 0.0, z), sections=18), PIPE_RAW)
            self.pipe([discharge, (discharge[0], header_y, z), (header_x, header_y, z)], 0.18, PIPE_RAW, flanges=(True, False))
            add_valve(b, vid, (-28.6, header_y, z), 0.18, 0)
            self.add(DemoDevice(vid, "valve", f"Raw water pump {i} discharge valve", "Intake", "VGV-DN350", 2011 + (i > 2) * 7))
            ptid = f"PT-10{i}"
            add_transmitter(b, ptid, (discharge[0], 2.35, z + 0.18), 0)
            self.add(sensor(ptid, "pressure", f"Raw water pump {i} discharge pressure", "Intake", "PX-400", 2019, (0, 10), (1, 8), label=False))
        self.pipe([(header_x, header_y, zs[0] - 0.4), (header_x, header_y, zs[-1] + 0.4)], 0.24, PIPE_RAW, flanges=(True, True))
        self.pipe([(header_x, header_y, 0.0), (-19.75, header_y, 0.0), (-19.75, 1.4, 0.0)], 0.24, PIPE_RAW)
        self.supports([(header_x, z) for z in (-6.0, 0.0, 6.0)] + [(-22.5, 0.0)], header_y)
        add_flow_meter(b, "FT-101", (-23.8, header_y, 0.0), 0.24)
        self.add(sensor("FT-101", "flow", "Raw water flow to filters", "Intake", "MagFlow M500", 2019, (0, 3000), (200, 2600)))
        add_probe(b, "TT-101", (-36.25, wall_top, 12.0), depth=0.9)
        self.add(sensor("TT-101", "temperature", "Raw water temperature", "Intake", "TX-20", 2019, (0, 35), (1, 25)))

        add_conveyor(b, "CV-101", (-32.7, FLOOR, -16.8), length=6.0, height=1.2, load=False)
        self.add(DemoDevice("CV-101", "conveyor", "Screenings conveyor", "Intake", "TBS-650", 2014))
        b.structure("skip-1", [
            box((-29.2, 0.0, -17.9), (-26.4, 0.2, -15.7)),
            box((-29.0, 0.2, -17.8), (-26.6, 1.3, -15.8)),
        ], SKIP)

    # --- filtration ---

    def filtration(self) -> None:
        b = self.b
        x0, x1, z0, z1, top, water = -20.5, -9.5, -12.5, 10.5, 2.4, 2.0
        bounds = [z0, -6.75, -1.0, 4.75, z1]
        walls = [
            box((x0, FLOOR, z0), (x1, top, z0 + 0.35)),
            box((x0, FLOOR, z1 - 0.35), (x1, top, z1)),
            box((x0, FLOOR, z0), (x0 + 0.35, top, z1)),
            box((x1 - 0.35, FLOOR, z0), (x1, top, z1)),
            box((-19.0, FLOOR, z0), (-18.7, top, z1)),
        ]
        walls += [box((-18.7, FLOOR, z - 0.17), (x1, top, z + 0.17)) for z in bounds[1:-1]]
        b.structure("filter-walls", walls, CONCRETE)
        b.structure("water-filter-inlet", box((x0 + 0.35, FLOOR, z0 + 0.35), (-19.0, water - 0.1, z1 - 0.35)), WATER_RAW)
        for i in range(4):
            b.structure(f"water-filter-{i + 1}", box((-18.7, FLOOR, bounds[i] + 0.17), (x1 - 0.35, water, bounds[i + 1] - 0.17)), WATER_CLEAN)

        # walkway over the outlet gallery along the east side, with a stair down at the south end
        wx0, wx1, wy = -9.5, -8.0, top
        b.structure("walkway-1", [box((wx0, wy - 0.05, z0), (wx1, wy, z1)), box((-18.7, wy, -1.45), (x1, wy + 0.05, -0.55))], GRATING)
        posts = [(wx1 - 0.05, z) for z in np.arange(z0 + 0.1, z1, 2.0)] + [(wx1 - 0.05, z1 - 0.05)]
        rails = [box((x - 0.03, wy, z - 0.03), (x + 0.03, wy + 1.1, z + 0.03)) for x, z in posts]
        rails += [box((wx1 - 0.08, wy + h, z0), (wx1 - 0.02, wy + h + 0.05, z1)) for h in (0.5, 1.05)]
        for z in (-1.5, -0.5):
            rails += [box((x - 0.03, wy, z - 0.03), (x + 0.03, wy + 1.1, z + 0.03)) for x in np.arange(-18.6, x1, 1.8)]
            rails += [box((-18.7, wy + h, z - 0.03), (x1, wy + h + 0.05, z + 0.03)) for h in (0.5, 1.05)]
        b.structure("rail-1", rails, SAFETY)
        steps, run = 12, 3.2
        stair = [box((wx0 + 0.1, FLOOR + (k + 1) * (top - FLOOR) / steps - 0.04, z1 + run - (k + 1) * run / steps),
                     (wx1 - 0.1, FLOOR + (k + 1) * (top - FLOOR) / steps, z1 + run - k * run / steps)) for k in range(steps)]
        stair += [box((x - 0.04, FLOOR, z1), (x + 0.04, top, z1 + run)) for x in (wx0 + 0.05, wx1 - 0.05)]
        b.structure("stair-1", stair, GRATING)

        # filter outlets into the clear water collector at x = -6
        collector_x, collector_y = -6.0, 0.9
        for i in range(4):
            zc = (bounds[i] + bounds[i + 1]) / 2
            self.pipe([(x1 - 0.2, collector_y, zc), (collector_x, collector_y, zc)], 0.15, PIPE_CLEAN)
            fid = f"FT-30{i + 1}"
            add_flow_meter(b, fid, (-7.9, collector_y, zc), 0.15)
            self.add(sensor(fid, "flow", f"Filter {i + 1} outlet flow", "Filtration", "MagFlow M300", 2016, (0, 800), (50, 700)))
        self.pipe([(collector_x, collector_y, (bounds[-2] + bounds[-1]) / 2), (collector_x, collector_y, -24.5), (22.6, collector_y, -24.5)], 0.22, PIPE_CLEAN, flanges=(True, True))
        sleepers = [box((collector_x - 0.3, 0.0, z - 0.2), (collector_x + 0.3, collector_y - 0.2, z + 0.2)) for z in np.arange(6.0, -24.0, -4.0)]
        sleepers += [box((x - 0.2, 0.0, -24.8), (x + 0.2, collector_y - 0.2, -24.2)) for x in np.arange(-3.0, 22.0, 4.0)]
        b.structure("pipe-sleepers", sleepers, CONCRETE)
        add_wall_sensor(b, "TT-301", (-7.95, top + 0.8, -2.0), 90)
        self.add(sensor("TT-301", "temperature", "Filter gallery air temperature", "Filtration", "TX-10", 2016, (-20, 50), (2, 35)))

        # backwash: two tanks north of the filters, each with a pump feeding a filter cell from above
        for i, (tank_x, pump_x) in enumerate(((-18.5, -15.0), (-12.0, -10.0)), start=1):
            tid, pid, vtid = f"T-30{i}", f"P-30{i}", f"VT-30{i}"
            tank_z = -18.0
            add_tank(b, tid, (tank_x, 0.0, tank_z), 2.0, 5.5, TANK_SHELL, gauge_angle=-40, ladder_angle=-110, big=False)
            self.add(DemoDevice(tid, "tank", f"Backwash water tank {i}", "Filtration", "CST-80", 2016))
            pz = -14.3
            add_pump(b, pid, (pump_x, FLOOR, pz), 1.0)
            self.add(DemoDevice(pid, "pump", f"Backwash pump {i}", "Filtration", "AFC 150-315", 2016))
            suction = np.array([pump_x, FLOOR, pz]) + pump_suction(1.0)
            discharge = np.array([pump_x, FLOOR, pz]) + pump_discharge(1.0)
            self.pipe([(tank_x, suction[1], tank_z + 1.5), (tank_x, suction[1], pz), suction], 0.15, PIPE_BACKWASH, flanges=(False, True))
            cell_z = (bounds[0] + bounds[1]) / 2 if i == 1 else (bounds[1] + bounds[2]) / 2
            entry_x = discharge[0]
            self.pipe([discharge, (entry_x, top + 0.6, pz), (entry_x, top + 0.6, cell_z), (entry_x, water - 0.3, cell_z)], 0.15, PIPE_BACKWASH, flanges=(True, False))
            add_vibration_sensor(b, vtid, (pump_x - 0.28, FLOOR + 0.8 + 0.12, pz))
            self.add(sensor(vtid, "vibration", f"Backwash pump {i} vibration", "Filtration", "VB-3", 2020, (0, 20), (0, 7.1), label=False))

        add_conveyor(b, "CV-301", (-17.0, FLOOR, 14.2), length=7.0, height=1.0, load=True)
        self.add(DemoDevice("CV-301", "conveyor", "Sludge cake conveyor", "Filtration", "TBS-800", 2016))
        b.structure("skip-2", [box((-13.2, FLOOR, 13.1), (-10.4, FLOOR + 0.2, 15.3)), box((-13.0, FLOOR + 0.2, 13.2), (-10.6, FLOOR + 1.2, 15.2))], SKIP)

    # --- storage ---

    TANK_XS = (1.5, 8.5, 15.5, 22.0)
    SUCTION_Y = FLOOR + 0.8 * 1.15
    SUCTION_Z = -6.5

    def storage(self) -> None:
        b = self.b
        tank_z, r, h = -20.0, 2.6, 6.5
        for i, x in enumerate(self.TANK_XS, start=1):
            tid, vid = f"T-20{i}", f"V-30{i}"
            add_tank(b, tid, (x, 0.0, tank_z), r, h, TANK_SHELL, gauge_angle=-35, ladder_angle=-100, big=True)
            self.add(DemoDevice(tid, "tank", f"Clear water tank {i}", "Storage", "CST-500", 2009))
            self.pipe([(x, 0.9, -24.5), (x, 5.6, -24.5), (x, 5.6, tank_z - r + 0.3)], 0.16, PIPE_CLEAN)
            self.pipe([(x, self.SUCTION_Y, tank_z + r - 0.3), (x, self.SUCTION_Y, self.SUCTION_Z)], 0.2, PIPE_CLEAN)
            add_valve(b, vid, (x, self.SUCTION_Y, -14.2), 0.2, 90)
            self.add(DemoDevice(vid, "valve", f"Clear water tank {i} outlet valve", "Storage", "VGV-DN400", 2009))

    # --- pump hall ---

    def pump_hall(self) -> None:
        b = self.b
        x0, x1, z0, z1, height, t = -1.0, 23.0, -9.0, 9.0, 5.0, 0.25
        beam_xs = (x0, 4.5, 11.0, 17.5, x1)
        b.structure("wall-north", box((x0 - t, FLOOR, z0 - t), (x1 + t, height, z0)), BLOCK_WALL)
        b.structure("wall-east", box((x1, FLOOR, z0), (x1 + t, height, z1)), BLOCK_WALL)
        b.structure("wall-west", [
            box((x0 - t, FLOOR, z0), (x0, height, -2.2)),
            box((x0 - t, FLOOR, 2.2), (x0, height, z1)),
            box((x0 - t, 3.9, -2.2), (x0, height, 2.2)),
        ], BLOCK_WALL)
        b.structure("wall-south", box((x0 - t, FLOOR, z1), (x1 + t, 1.1, z1 + t)), BLOCK_WALL)
        b.structure("wall-coping", [
            box((x0 - t - 0.03, height, z0 - t - 0.03), (x1 + t + 0.03, height + 0.12, z0 + 0.03)),
            box((x1 - 0.03, height, z0), (x1 + t + 0.03, height + 0.12, z1)),
            box((x0 - t - 0.03, height, z0), (x0 + 0.03, height + 0.12, z1)),
            box((x0 - t - 0.03, 1.1, z1 - 0.03), (x1 + t + 0.03, 1.2, z1 + t + 0.03)),
        ], COPING)
        b.structure("door-west", box((x0 - t - 0.05, 2.6, -2.1), (x0 - t + 0.02, 3.9, 2.1)), "#8c96a0")
        b.structure("windows-north", [box((a + 0.5, 3.0, z0 + 0.0), (c - 0.5, 4.3, z0 + 0.04)) for a, c in zip(beam_xs, beam_xs[1:])], WINDOW)
        b.structure("windows-east", [box((x1 - 0.04, 3.0, za), (x1, 4.3, zb)) for za, zb in ((-8.0, -3.0), (3.0, 8.0))], WINDOW)

        for i, x in enumerate(beam_xs, start=1):
            cols = [box((x - 0.15, FLOOR, z - 0.15), (x + 0.15, height + 0.4, z + 0.15)) for z in (z0 + 0.15, z1 - 0.15)]
            b.structure(f"column-{2 * i - 1:02d}", cols[0], STEEL)
            b.structure(f"column-{2 * i:02d}", cols[1], STEEL)
            b.structure(f"roof-beam-{i}", [
                box((x - 0.15, height + 0.4, z0), (x + 0.15, height + 0.44, z1)),
                box((x - 0.015, height - 0.05, z0), (x + 0.015, height + 0.4, z1)),
                box((x - 0.15, height - 0.09, z0), (x + 0.15, height - 0.05, z1)),
            ], STEEL)
        b.structure("purlins", [box((x0, height + 0.44, z - 0.05), (x1, height + 0.52, z + 0.05)) for z in (-8.8, -4.5, 0.0, 4.5, 8.8)], STEEL)

        # overhead crane on rails along the long walls
        crane_x, rail_y = 14.25, 4.1
        b.structure("crane-rails", [box((x0, rail_y - 0.2, z - 0.12), (x1, rail_y, z + 0.12)) for z in (z0 + 0.45, z1 - 0.45)], STEEL)
        b.structure("crane", [
            box((crane_x - 0.35, rail_y, z0 + 0.3), (crane_x + 0.35, rail_y + 0.6, z1 - 0.3)),
            box((crane_x - 0.9, rail_y, z0 + 0.2), (crane_x + 0.9, rail_y + 0.35, z0 + 0.7)),
            box((crane_x - 0.9, rail_y, z1 - 0.7), (crane_x + 0.9, rail_y + 0.35, z1 - 0.2)),
            box((crane_x - 0.45, rail_y + 0.6, -3.5), (crane_x + 0.45, rail_y + 1.0, -2.5)),
        ], SAFETY)
        b.structure("crane-hook", [
            cyl(0.02, (crane_x, rail_y, -3.0), (crane_x, 3.0, -3.0), sections=6),
            box((crane_x - 0.12, 2.7, -3.12), (crane_x + 0.12, 3.0, -2.88)),
        ], DARK)
        b.structure("mcc", [box((x0 + 0.05, FLOOR, z), (x0 + 0.65, 2.3, z + 1.15)) for z in np.arange(3.2, 8.0, 1.2)], PANEL)
        b.structure("mcc-doors", [box((x0 + 0.65, 0.35, z + 0.08), (x0 + 0.68, 2.15, z + 1.07)) for z in np.arange(3.2, 8.0, 1.2)], "#9aa3ad")
        lines = [box((x0 + 0.4, FLOOR, 6.0), (x1 - 0.4, FLOOR + 0.005, 6.12)), box((x0 + 0.4, FLOOR, 8.3), (x1 - 0.4, FLOOR + 0.005, 8.42))]
        b.structure("floor-markings", lines, SAFETY)

        # suction header fed by the storage tanks, six high-lift pumps, discharge header out through the east wall
        s = 1.15
        sy, sz = self.SUCTION_Y, self.SUCTION_Z
        dy, dz = 3.1, 2.5
        pump_z = -2.0
        pump_xs = (2.0, 5.5, 9.0, 12.5, 16.0, 19.5)
        self.pipe([(-0.4, sy, sz), (self.TANK_XS[-1] + 0.4, sy, sz)], 0.24, PIPE_CLEAN, flanges=(True, True))
        self.pipe([(0.3, dy, dz), (27.0, dy, dz), (27.0, -0.3, dz)], 0.26, PIPE_CLEAN, flanges=(True, False))
        self.supports([(x, dz) for x in (6.5, 13.5, 20.5)], dy)
        for i, px in enumerate(pump_xs, start=1):
            pid = f"P-20{i}"
            add_pump(b, pid, (px, FLOOR, pump_z), s)
            self.add(DemoDevice(pid, "pump", f"High-lift pump {i}", "Pump hall", "AFC 250-500", 2009 if i <= 4 else 2021))
            suction = np.array([px, FLOOR, pump_z]) + pump_suction(s)
            discharge = np.array([px, FLOOR, pump_z]) + pump_discharge(s)
            branch_x = suction[0] - 0.75
            self.pipe([(branch_x, sy, sz), (branch_x, sy, pump_z), suction], 0.2, PIPE_CLEAN, flanges=(False, True))
            self.pipe([discharge, (discharge[0], dy, pump_z), (discharge[0], dy, dz)], 0.2, PIPE_CLEAN, flanges=(True, False))
            sv, dv = f"V-2{2 * i - 1:02d}", f"V-2{2 * i:02d}"
            add_valve(b, sv, (branch_x, sy, -4.4), 0.2, 90)
            add_valve(b, dv, (discharge[0], dy, 0.4), 0.2, 90)
            self.add(DemoDevice(sv, "valve", f"High-lift pump {i} suction valve", "Pump hall", "VGV-DN400", 2009))
            self.add(DemoDevice(dv, "valve", f"High-lift pump {i} discharge valve", "Pump hall", "VGV-DN400", 2009))
            ptid, vtid = f"PT-20{i}", f"VT-20{i}"
            add_transmitter(b, ptid, (discharge[0] - 0.2, 2.45, pump_z), -90)
            add_vibration_sensor(b, vtid, (px - 0.3 * s, FLOOR + 0.8 * s + 0.12 * s, pump_z))
            self.add(sensor(ptid, "pressure", f"High-lift pump {i} discharge pressure", "Pump hall", "PX-400", 2019, (0, 16), (2, 12), label=False))
            self.add(sensor(vtid, "vibration", f"High-lift pump {i} vibration", "Pump hall", "VB-3", 2020, (0, 20), (0, 7.1), label=False))
        add_flow_meter(b, "FT-201", (21.6, dy, dz), 0.26)
        self.add(sensor("FT-201", "flow", "Discharge main flow", "Pump hall", "MagFlow M500", 2019, (0, 3000), (200, 2600)))
        add_wall_sensor(b, "TT-201", (x0, 1.7, -5.0), 90)
        add_wall_sensor(b, "TT-202", (10.0, 1.7, z0), 0)
        self.add(sensor("TT-201", "temperature", "Pump hall air temperature (west)", "Pump hall", "TX-10", 2019, (-20, 60), (5, 35)))
        self.add(sensor("TT-202", "temperature", "Pump hall air temperature (north)", "Pump hall", "TX-10", 2019, (-20, 60), (5, 35)))

        # ventilation fans hung from the roof beams
        for i, (x, z) in enumerate([(x, z) for z in (-5.2, 5.2) for x in beam_xs[1:4]], start=1):
            fid = f"F-20{i}"
            add_hall_fan(b, fid, (x, 4.2, z), drop=height - 0.1 - 4.2)
            self.add(DemoDevice(fid, "fan", f"Pump hall ventilation fan {i}", "Pump hall", "VNT HV-3600", 2021))

    # --- utilities ---

    def utilities(self) -> None:
        b = self.b
        # electrical room with roof exhaust fans
        ex0, ex1, ez0, ez1, eh = 30.0, 40.0, -15.0, -7.0, 4.0
        b.structure("eroom-walls", [
            box((ex0, FLOOR, ez0), (ex1, eh, ez0 + 0.25)),
            box((ex0, FLOOR, ez1 - 0.25), (ex1, eh, ez1)),
            box((ex0, FLOOR, ez0), (ex0 + 0.25, eh, ez1)),
            box((ex1 - 0.25, FLOOR, ez0), (ex1, eh, ez1)),
        ], BLOCK_WALL)
        b.structure("eroom-roof", box((ex0 - 0.2, eh, ez0 - 0.2), (ex1 + 0.2, eh + 0.25, ez1 + 0.2)), COPING)
        b.structure("eroom-door", box((33.0, FLOOR, ez1), (34.6, 2.4, ez1 + 0.05)), "#6f7a85")
        for i, (x, z) in enumerate(((32.5, -12.8), (37.5, -12.8), (32.5, -9.2), (37.5, -9.2)), start=1):
            fid = f"F-40{i}"
            add_roof_fan(b, fid, (x, eh + 0.25, z))
            self.add(DemoDevice(fid, "fan", f"Electrical room exhaust fan {i}", "Utilities", "VNT RX-630", 2018))
        add_wall_sensor(b, "TT-402", (38.2, 1.7, ez1), 0)
        self.add(sensor("TT-402", "temperature", "Electrical room temperature", "Utilities", "TX-10", 2018, (-20, 60), (5, 35)))

        # air handling units with a common supply duct into the pump hall
        duct = [box((23.25, 3.6, -2.6), (38.1, 4.3, -1.6))]
        for i, x in enumerate((29.0, 31.9, 34.8, 37.7), start=1):
            aid = f"AHU-40{i}"
            add_ahu(b, aid, (x, FLOOR, -2.0))
            self.add(DemoDevice(aid, "hvac", f"Air handling unit {i}", "Utilities", "KLM AX-12", 2018))
            duct.append(box((x - 0.3, 2.3, -2.0 + 0.3), (x + 0.3, 3.6, -2.0 + 0.9)))
        b.structure("duct-1", duct, DUCT)

        # chemical dosing inside a bund
        bx0, bx1, bz0, bz1 = 28.0, 41.0, 5.0, 16.0
        b.structure("bund", [
            box((bx0, FLOOR, bz0), (bx1, 0.85, bz0 + 0.25)),
            box((bx0, FLOOR, bz1 - 0.25), (bx1, 0.85, bz1)),
            box((bx0, FLOOR, bz0), (bx0 + 0.25, 0.85, bz1)),
            box((bx1 - 0.25, FLOOR, bz0), (bx1, 0.85, bz1)),
        ], CONCRETE)
        b.structure("bund-edge", [
            box((bx0 - 0.01, 0.75, bz1 - 0.01), (bx1 + 0.01, 0.86, bz1 + 0.01)),
            box((bx0 - 0.01, 0.75, bz0 - 0.01), (bx1 + 0.01, 0.86, bz0 + 0.26)),
        ], SAFETY)
        tanks = (("T-401", 31.5, "Coagulant tank", TANK_CHEM_A), ("T-402", 37.8, "Hypochlorite tank", TANK_CHEM_B))
        pump_y = FLOOR + 0.8 * 0.45
        pump_n = 0
        for tid, tx, name, shell in tanks:
            tz = 9.5
            add_tank(b, tid, (tx, FLOOR, tz), 1.3, 2.8, shell, gauge_angle=-30, ladder_angle=-120, big=False)
            self.add(DemoDevice(tid, "tank", name, "Utilities", "CST-12", 2018))
            for dx in (0.0, 1.6):
                pump_n += 1
                pid = f"P-40{pump_n}"
                px = tx + 0.4 + dx
                add_pump(b, pid, (px, FLOOR, 13.5), 0.45)
                chem = "Coagulant" if tid == "T-401" else "Hypochlorite"
                self.add(DemoDevice(pid, "pump", f"{chem} dosing pump {1 + int(dx > 0)}", "Utilities", "AFC D-40", 2018))
                suction = np.array([px, FLOOR, 13.5]) + pump_suction(0.45)
                discharge = np.array([px, FLOOR, 13.5]) + pump_discharge(0.45)
                sx = suction[0] - 0.35
                self.pipe([(sx, pump_y, tz + 0.5), (sx, pump_y, 13.5), suction], 0.045, PIPE_CHEM)
                lane = 3.6 + 0.14 * pump_n
                lane_x = 25.6 + 0.3 * pump_n
                self.pipe([discharge, (discharge[0], lane, 13.5), (lane_x, lane, 13.5), (lane_x, lane, 2.5), (lane_x, 3.1, 2.5)], 0.04, PIPE_CHEM)
        self.supports([(26.35, z) for z in (6.0, 10.0)], 3.6, width=0.75)
        add_transmitter(b, "TT-401", (40.75, 0.6, 11.0), -90)
        self.add(sensor("TT-401", "temperature", "Chemical store temperature", "Utilities", "TX-20", 2018, (-20, 60), (5, 30)))
        add_conveyor(b, "CV-401", (31.5, FLOOR, 17.4), length=6.0, height=0.8, load=True)
        self.add(DemoDevice("CV-401", "conveyor", "Chemical bag conveyor", "Utilities", "TBS-500", 2018))


# --- entry point ---------------------------------------------------------------------------


@dataclass
class DemoStats:
    devices: int
    by_type: dict[str, int]
    triangles: int
    glb_bytes: int


def build_demo(out_dir: str | Path = DEMO_DIR) -> DemoStats:
    """Write plant.glb and site.toml into out_dir (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plant = Plant()
    plant.build()
    glb = plant.b.export()
    (out / MODEL_NAME).write_bytes(glb)
    (out / "site.toml").write_text(manifest_text(plant.devices), encoding="utf-8")
    by_type: dict[str, int] = {}
    for d in plant.devices:
        by_type[d.type] = by_type.get(d.type, 0) + 1
    return DemoStats(len(plant.devices), by_type, plant.b.triangles(), len(glb))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the twinview demo site (plant.glb + site.toml).")
    parser.add_argument("out_dir", nargs="?", default=str(DEMO_DIR), help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    stats = build_demo(args.out_dir)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_type.items()))
    print(f"{args.out_dir}: {stats.devices} devices ({kinds}), {stats.triangles} triangles, {stats.glb_bytes / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
