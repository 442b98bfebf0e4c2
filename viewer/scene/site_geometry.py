"""Merge a site model into one vertex set with a part table (numpy only, no GPU).

Static geometry of every node goes into one set of arrays; each vertex carries
a part index. Parts are rigid pieces: one per device body, one per moving part
(a motion overlay's node and what is below it), one for all scenery. The part
table tells the shader which device a part belongs to and how it moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinview.site import LoadedSite, find_part, node_owners
from twinview.site.manifest import MotionOverlay

NO_DEVICE = -1
MOTION_KINDS = {"rotate": 1, "translate": 2, "scale": 3}


@dataclass
class SiteGeometry:
    positions: np.ndarray  # (V, 3) float32, world space
    normals: np.ndarray  # (V, 3) float32
    colors: np.ndarray  # (V,) uint32, RGBA8 packed little-endian (r in the low byte)
    parts: np.ndarray  # (V,) uint32
    indices: np.ndarray  # (F, 3) uint32
    part_info: np.ndarray  # (P * 3, 4) float32: [pivot, kind], [axis, rate], [phase, t0, amount, device]
    device_of_part: np.ndarray  # (P,) int32
    motion_parts: list[tuple[int, int, MotionOverlay]]  # (part, device index, overlay)
    device_bounds: np.ndarray  # (N, 2, 3) float32; NaN for devices without geometry
    bounds: np.ndarray  # (2, 3)

    @property
    def device_centers(self) -> np.ndarray:
        return self.device_bounds.mean(axis=1)

    def split(self) -> tuple["MeshArrays", "MeshArrays | None"]:
        """Static geometry (per-vertex device index) and moving parts (per-vertex part index).

        Drawing them apart keeps the motion code out of the shader for the bulk
        of the site: on a software rasterizer that halves vertex cost.
        """
        kinds = self.part_info[0::3, 3]
        moving_vertex = kinds[self.parts] != 0
        static = _subset(self, ~moving_vertex, self.device_of_part[self.parts].astype(np.int32))
        if not moving_vertex.any():
            return static, None
        return static, _subset(self, moving_vertex, self.parts.astype(np.int32))


@dataclass
class MeshArrays:
    positions: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    per_vertex: np.ndarray  # int32: device index (static) or part index (moving)
    indices: np.ndarray


def _subset(g: SiteGeometry, keep: np.ndarray, per_vertex: np.ndarray) -> MeshArrays:
    new_index = np.cumsum(keep, dtype=np.int64) - 1
    faces = g.indices[keep[g.indices[:, 0]]]
    return MeshArrays(
        positions=np.ascontiguousarray(g.positions[keep]),
        normals=np.ascontiguousarray(g.normals[keep]),
        colors=np.ascontiguousarray(g.colors[keep]),
        per_vertex=np.ascontiguousarray(per_vertex[keep]),
        indices=np.ascontiguousarray(new_index[faces].astype(np.uint32)),
    )


def build_site_geometry(loaded: LoadedSite) -> SiteGeometry:
    site, model = loaded.site, loaded.model
    part_rows: list[np.ndarray] = []
    device_of_part: list[int] = []
    motion_parts: list[tuple[int, int, MotionOverlay]] = []

    def new_part(device: int, pivot=(0.0, 0.0, 0.0), kind: int = 0, axis=(0.0, 1.0, 0.0)) -> int:
        row = np.zeros((3, 4), np.float32)
        row[0, :3], row[0, 3] = pivot, kind
        row[1, :3] = axis
        row[2, 2] = 1.0 if kind == MOTION_KINDS["scale"] else 0.0
        row[2, 3] = device
        part_rows.append(row)
        device_of_part.append(device)
        return len(part_rows) - 1

    scenery = new_part(NO_DEVICE)
    owners = node_owners(site, model)  # nested devices: the innermost owns its subtree
    body_of: dict[int, int] = {}
    for d_index, device in enumerate(site.devices):
        if device.node in model.nodes:
            body_of[d_index] = new_part(d_index)
    node_part: dict[str, int] = {node: body_of[d] for node, d in owners.items()}
    for d_index, device in enumerate(site.devices):
        if d_index not in body_of:
            continue
        for motion in device.motions:
            name = find_part(model, device.node, motion.node)
            if name is None:
                continue
            world = model.nodes[name].world
            axis = world[:3, :3] @ np.asarray(motion.axis, np.float64)
            norm = np.linalg.norm(axis)
            axis = axis / norm if norm > 0 else np.array([0.0, 1.0, 0.0])
            part = new_part(d_index, world[:3, 3], MOTION_KINDS[motion.kind], axis)
            motion_parts.append((part, d_index, motion))
            for node in model.descendants(name):
                if owners.get(node) == d_index:  # a device nested below the moving part keeps its own
                    node_part[node] = part

    chunks_pos, chunks_nrm, chunks_col, chunks_part, chunks_idx = [], [], [], [], []
    offset = 0
    for node in model.nodes.values():
        part = node_part.get(node.name, scenery)
        for g in node.geometry:
            n = len(g.positions)
            chunks_pos.append(g.positions)
            chunks_nrm.append(g.normals)
            chunks_col.append(g.colors)
            chunks_part.append(np.full(n, part, np.uint32))
            chunks_idx.append(g.faces + np.uint32(offset))
            offset += n

    positions = np.ascontiguousarray(np.concatenate(chunks_pos), dtype=np.float32)
    normals = np.ascontiguousarray(np.concatenate(chunks_nrm), dtype=np.float32)
    colors = np.ascontiguousarray(np.concatenate(chunks_col), dtype=np.uint8).view(np.uint32).reshape(-1)
    parts = np.concatenate(chunks_part)
    indices = np.ascontiguousarray(np.concatenate(chunks_idx), dtype=np.uint32)
    device_of_part_arr = np.asarray(device_of_part, np.int32)

    device_bounds = _device_bounds(positions, parts, device_of_part_arr, len(site.devices))
    bounds = np.stack([positions.min(axis=0), positions.max(axis=0)])
    return SiteGeometry(
        positions=positions,
        normals=normals,
        colors=colors,
        parts=parts,
        indices=indices,
        part_info=np.concatenate(part_rows).astype(np.float32),
        device_of_part=device_of_part_arr,
        motion_parts=motion_parts,
        device_bounds=device_bounds,
        bounds=bounds,
    )


def _device_bounds(positions: np.ndarray, parts: np.ndarray, device_of_part: np.ndarray, n_devices: int) -> np.ndarray:
    """Axis-aligned bounds per device, vectorised over all vertices."""
    bounds = np.full((n_devices, 2, 3), np.nan, np.float32)
    if n_devices == 0:
        return bounds
    vertex_device = device_of_part[parts]
    mask = vertex_device >= 0
    vd = vertex_device[mask]
    vp = positions[mask]
    lo = np.full((n_devices, 3), np.inf, np.float32)
    hi = np.full((n_devices, 3), -np.inf, np.float32)
    for axis in range(3):
        np.minimum.at(lo[:, axis], vd, vp[:, axis])
        np.maximum.at(hi[:, axis], vd, vp[:, axis])
    has = np.isfinite(lo).all(axis=1)
    bounds[has, 0] = lo[has]
    bounds[has, 1] = hi[has]
    return bounds
