"""The site model as one GLB for three.js: a group per device, its moving parts as children.

Layout of the scene (node names, and `extras` that the page reads as userData):

- one node per device, named by the device id, translated to the device node's
  world origin; extras {"device": id};
- below it "<id>.body": everything of the device that does not move, merged
  into one mesh; extras {"device": id, "part": "body"};
- below it "<id>.<part>" for each motion overlay: the moving part's subtree
  merged, with its geometry relative to the part's own origin (its pivot), so
  rotating the node turns the part about that origin; extras
  {"device": id, "part": part, "motion": k} with k the overlay's index;
- scenery (geometry bound to no device) keeps its model node names, one mesh each.

There is one material: PBR with metallicFactor 0 and roughness 0.8 over the
model's vertex colours (COLOR_0), so the scene looks right in three.js without
an environment map (glTF's default metallicFactor 1 renders black there).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from twinview.site.loader import node_owners
from twinview.site import LoadedSite, find_part
from twinview.site.model import NodeGeometry, SiteModel

ROUGHNESS = 0.8
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_FLOAT, _UBYTE, _UINT = 5126, 5121, 5125
_TRIANGLES = 4


class _Builder:
    """Accumulates binary data, buffer views, accessors and meshes of one glTF document."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.length = 0
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self.meshes: list[dict] = []

    def _view(self, data: bytes, target: int, stride: int | None = None) -> int:
        pad = (-self.length) % 4
        if pad:
            self.chunks.append(b"\0" * pad)
            self.length += pad
        view = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data), "target": target}
        if stride:
            view["byteStride"] = stride
        self.chunks.append(data)
        self.length += len(data)
        self.views.append(view)
        return len(self.views) - 1

    def _accessor(self, view: int, component: int, count: int, kind: str, **extra) -> int:
        self.accessors.append({"bufferView": view, "componentType": component, "count": count, "type": kind, **extra})
        return len(self.accessors) - 1

    def mesh(self, name: str, positions: np.ndarray, normals: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> int:
        positions = np.ascontiguousarray(positions, np.float32)
        lo, hi = positions.min(axis=0), positions.max(axis=0)
        pos = self._accessor(
            self._view(positions.tobytes(), _ARRAY_BUFFER), _FLOAT, len(positions), "VEC3",
            min=[float(v) for v in lo], max=[float(v) for v in hi],
        )
        nrm = self._accessor(self._view(_unit_normals(normals).tobytes(), _ARRAY_BUFFER), _FLOAT, len(normals), "VEC3")
        col = self._accessor(
            self._view(np.ascontiguousarray(colors, np.uint8).tobytes(), _ARRAY_BUFFER), _UBYTE, len(colors), "VEC4",
            normalized=True,
        )
        flat = np.ascontiguousarray(faces, np.uint32).reshape(-1)
        idx = self._accessor(self._view(flat.tobytes(), _ELEMENT_ARRAY_BUFFER), _UINT, len(flat), "SCALAR")
        self.meshes.append({
            "name": name,
            "primitives": [{
                "attributes": {"POSITION": pos, "NORMAL": nrm, "COLOR_0": col},
                "indices": idx, "material": 0, "mode": _TRIANGLES,
            }],
        })
        return len(self.meshes) - 1


def _unit_normals(normals: np.ndarray) -> np.ndarray:
    """Normals of length 1 (the validator requires it); degenerate ones point up."""
    n = np.asarray(normals, np.float64)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    bad = ~np.isfinite(length[:, 0]) | (length[:, 0] < 1e-6)
    out = n / np.where(length > 1e-6, length, 1.0)
    out[bad] = (0.0, 1.0, 0.0)
    return np.ascontiguousarray(out, np.float32)


def _merge(parts: list[NodeGeometry], origin: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """One vertex set from several world-space geometries, positions relative to origin."""
    parts = [g for g in parts if len(g.faces)]
    if not parts:
        return None
    offsets = np.cumsum([0] + [len(g.positions) for g in parts[:-1]])
    positions = np.concatenate([g.positions for g in parts]).astype(np.float64) - origin
    normals = np.concatenate([g.normals for g in parts])
    colors = np.concatenate([g.colors for g in parts])
    faces = np.concatenate([g.faces.astype(np.uint32) + np.uint32(o) for g, o in zip(parts, offsets)])
    return positions.astype(np.float32), normals, colors, faces


def _geometry(model: SiteModel, names: list[str]) -> list[NodeGeometry]:
    return [g for n in names for g in model.nodes[n].geometry]


def _translation(vector: np.ndarray) -> list[float]:
    return [float(v) for v in vector]


def build_gltf(loaded: LoadedSite) -> tuple[dict, bytes]:
    """The glTF JSON document and its binary buffer for a loaded site."""
    site, model = loaded.site, loaded.model
    b = _Builder()
    nodes: list[dict] = []
    roots: list[int] = []
    claimed: set[str] = set()
    owners = node_owners(site, model)  # nested devices: the innermost owns its subtree, as on the desktop

    for i, device in enumerate(site.devices):
        if device.node not in model.nodes:
            continue
        subtree = [n for n in model.descendants(device.node) if owners.get(n) == i]
        claimed.update(subtree)
        origin = np.asarray(model.nodes[device.node].world, np.float64)[:3, 3]
        group = {"name": device.id, "translation": _translation(origin), "children": [], "extras": {"device": device.id}}
        moving: set[str] = set()
        part_nodes: list[dict] = []
        for k, motion in enumerate(device.motions):
            name = find_part(model, device.node, motion.node)
            if name is None:
                continue
            below = [n for n in model.descendants(name) if n not in moving and owners.get(n) == i]
            moving.update(below)
            pivot = np.asarray(model.nodes[name].world, np.float64)[:3, 3]
            merged = _merge(_geometry(model, below), pivot)
            node = {
                "name": f"{device.id}.{motion.node}",
                "translation": _translation(pivot - origin),
                "extras": {"device": device.id, "part": motion.node, "motion": k},
            }
            if merged is not None:
                node["mesh"] = b.mesh(node["name"], *merged)
            part_nodes.append(node)
        still = [n for n in subtree if n not in moving]
        merged = _merge(_geometry(model, still), origin)
        if merged is not None:
            body_name = "body" if all(m.node != "body" for m in device.motions) else "body_static"
            name = f"{device.id}.{body_name}"
            part_nodes.insert(0, {"name": name, "mesh": b.mesh(name, *merged), "extras": {"device": device.id, "part": "body"}})
        for node in part_nodes:
            nodes.append(node)
            group["children"].append(len(nodes) - 1)
        if not group["children"]:
            del group["children"]
        nodes.append(group)
        roots.append(len(nodes) - 1)

    for node in model.nodes.values():
        if node.name in claimed or not node.geometry:
            continue
        merged = _merge(node.geometry, np.zeros(3))
        if merged is None:
            continue
        nodes.append({"name": node.name, "mesh": b.mesh(node.name, *merged), "extras": {"scenery": True}})
        roots.append(len(nodes) - 1)

    binary = b"".join(b.chunks)
    binary += b"\0" * ((-len(binary)) % 4)
    doc: dict = {
        "asset": {"version": "2.0", "generator": "twinview"},
        "scene": 0,
        "scenes": [{"name": site.name, "nodes": roots}],
        "nodes": nodes,
        "materials": [{
            "name": "site",
            "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": ROUGHNESS},
        }],
    }
    if b.meshes:
        doc["meshes"] = b.meshes
        doc["accessors"] = b.accessors
        doc["bufferViews"] = b.views
        doc["buffers"] = [{"byteLength": len(binary)}]
    return doc, binary


def glb_bytes(doc: dict, binary: bytes) -> bytes:
    """A GLB container: 12-byte header, JSON chunk (space padded), BIN chunk (zero padded)."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def export_glb(loaded: LoadedSite, out_path: str | Path) -> Path:
    """Write the site model as a GLB for three.js (see the module docstring); returns the path."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc, binary = build_gltf(loaded)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(glb_bytes(doc, binary))
    tmp.replace(out)
    return out
