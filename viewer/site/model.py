"""Load a site's model file safely into named nodes with world-space triangle geometry.

Every path a model refers to must stay inside the site folder, files are capped
in size before parsing, and whatever trimesh raises (it raises many kinds) or
silently accepts (empty or inconsistent geometry) becomes one ModelError.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import numpy as np

from .errors import ModelError
from .gltf_check import GltfInvalid, check_structure, read_document

SUPPORTED = (".glb", ".gltf", ".obj", ".stl", ".ply")
MAX_MODEL_BYTES = 512 * 1024 * 1024
MAX_TEXTURE_PIXELS = 64 * 1024 * 1024
DEFAULT_RGBA = np.array([200, 200, 205, 255], np.uint8)

Progress = Callable[[str, float], None]


@dataclass
class NodeGeometry:
    """Triangles of one node in world space: float32 positions and normals, uint8 RGBA per vertex."""

    positions: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    colors: np.ndarray


@dataclass
class ModelNode:
    name: str
    parent: str | None
    world: np.ndarray  # 4x4 world transform
    geometry: list[NodeGeometry] = field(default_factory=list)


@dataclass
class SiteModel:
    path: Path
    nodes: dict[str, ModelNode]

    def children(self) -> dict[str, list[str]]:
        """Parent name -> child names; built once (nodes do not change after loading)."""
        kids = self.__dict__.get("_children_cache")
        if kids is None:
            kids = {}
            for node in self.nodes.values():
                if node.parent is not None:
                    kids.setdefault(node.parent, []).append(node.name)
            self.__dict__["_children_cache"] = kids
        return kids

    def descendants(self, name: str) -> list[str]:
        """The node and everything below it, depth first."""
        kids = self.children()
        out, stack = [], [name]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(reversed(kids.get(current, [])))
        return out

    @property
    def bounds(self) -> np.ndarray:
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for node in self.nodes.values():
            for g in node.geometry:
                lo = np.minimum(lo, g.positions.min(axis=0))
                hi = np.maximum(hi, g.positions.max(axis=0))
        if not np.isfinite(lo).all():
            return np.zeros((2, 3))
        return np.stack([lo, hi])


def load_model(path: str | Path, site_root: str | Path, progress: Progress | None = None) -> SiteModel:
    """Read a model file that must lie inside site_root. Raises ModelError."""
    path = Path(path)
    root = Path(site_root).resolve()
    report = progress or (lambda stage, fraction: None)
    name = str(path)

    _check_inside(path, root, name)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}", name)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ModelError(f"unsupported model format {suffix!r} (supported: {', '.join(SUPPORTED)})", name)
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelError(f"model file is {size / 2**20:.0f} MiB, above the {MAX_MODEL_BYTES // 2**20} MiB limit", name)
    if size == 0:
        raise ModelError("model file is empty", name)

    if suffix in (".gltf", ".glb"):
        _check_gltf(path, root, name)

    report("reading", 0.0)
    scene = _trimesh_load(path, root, name)
    report("reading", 1.0)
    try:
        return _to_nodes(scene, path, name, report)
    except ModelError:
        raise
    except Exception as exc:  # trimesh's scene graph raises its own errors for graphs it cannot walk
        raise ModelError(f"cannot place the model's nodes ({type(exc).__name__}): {_first_line(exc)}", name) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _check_inside(path: Path, root: Path, name: str) -> None:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        raise ModelError(f"model path escapes the site folder ({root})", name) from None


def _check_gltf(path: Path, root: Path, name: str) -> None:
    """Refuse external references that leave the site folder or point at the network, then check
    the document's structure (node graph, accessors against buffers) before trimesh trusts it."""
    try:
        doc, bin_chunk = read_document(path)
    except RecursionError:
        raise ModelError("not a valid glTF file: its JSON is nested too deeply to read", name) from None
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ModelError(f"not a valid glTF file: {exc}", name) from None
    if not isinstance(doc, dict):
        raise ModelError("not a valid glTF file: top level is not a JSON object", name)
    _check_gltf_references(doc, path, root, name)
    try:
        check_structure(doc, path, bin_chunk)
    except GltfInvalid as exc:
        raise ModelError(f"not a valid glTF file: {exc}", name) from None


def _check_gltf_references(doc: dict, path: Path, root: Path, name: str) -> None:
    for kind in ("buffers", "images"):
        entries = doc.get(kind) or []
        if not isinstance(entries, list):
            raise ModelError(f"not a valid glTF file: {kind} is not a list", name)
        for i, entry in enumerate(entries):
            uri = entry.get("uri") if isinstance(entry, dict) else None
            if uri is None or not isinstance(uri, str):
                continue
            if uri.startswith("data:"):
                continue
            lowered = uri.lower()
            if "://" in lowered or lowered.startswith(("file:", "http:", "https:", "//")):
                raise ModelError(f"{kind}[{i}] refers to {uri!r}: URIs are refused, files must be inside the site folder", name)
            target = Path(unquote(uri))
            if target.is_absolute():
                raise ModelError(f"{kind}[{i}] refers to absolute path {uri!r}: files must be inside the site folder", name)
            try:
                (path.parent / target).resolve().relative_to(root)
            except ValueError:
                raise ModelError(f"{kind}[{i}] refers to {uri!r}, which is outside the site folder", name) from None
            if not (path.parent / target).is_file():
                raise ModelError(f"{kind}[{i}] refers to {uri!r}, which does not exist", name)


def _trimesh_load(path: Path, root: Path, name: str):
    import trimesh
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_TEXTURE_PIXELS
    resolver = trimesh.resolvers.FilePathResolver(str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                scene = trimesh.load(f, file_type=path.suffix.lower()[1:], resolver=resolver, force="scene")
    except ModelError:
        raise
    except Exception as exc:  # trimesh raises many unrelated types for broken files
        raise ModelError(f"cannot read model ({type(exc).__name__}): {_first_line(exc)}", name) from None
    return scene


def _to_nodes(scene, path: Path, name: str, report: Progress) -> SiteModel:
    graph = scene.graph
    parents = dict(graph.transforms.parents)
    base = graph.base_frame
    nodes: dict[str, ModelNode] = {}
    all_names = [n for n in graph.nodes if n != base]
    for node_name in all_names:
        parent = parents.get(node_name)
        nodes[node_name] = ModelNode(
            name=str(node_name), parent=None if parent in (None, base) else str(parent), world=np.eye(4)
        )

    # Gather (node, world) per mesh first, then transform every instance of a mesh in one
    # numpy call: sites reuse a few meshes across thousands of nodes.
    instances: dict[str, list[tuple[str, np.ndarray]]] = {}
    geometry_nodes = list(graph.nodes_geometry)
    total = max(len(geometry_nodes), 1)
    for i, node_name in enumerate(geometry_nodes):
        world, geom_name = graph[node_name]
        instances.setdefault(geom_name, []).append((str(node_name), np.asarray(world, dtype=np.float64)))
        if i % 1024 == 0:
            report("placing", i / total)
    triangles = 0
    for geom_name, placed in instances.items():
        mesh = scene.geometry.get(geom_name)
        if mesh is None or not hasattr(mesh, "faces") or len(mesh.faces) == 0:
            continue
        positions, normals, faces, colors = _mesh_arrays(mesh, name)
        worlds = np.stack([w for _, w in placed])  # (K, 4, 4)
        rot = worlds[:, :3, :3]
        world_pos = (np.einsum("kij,vj->kvi", rot, positions) + worlds[:, None, :3, 3]).astype(np.float32)
        world_nrm = _world_normals(normals, rot)
        for k, (node_name, world) in enumerate(placed):
            node = nodes.setdefault(node_name, ModelNode(node_name, None, world))
            node.world = world
            node.geometry.append(NodeGeometry(world_pos[k], world_nrm[k], faces, colors))
        triangles += len(faces) * len(placed)
        report("building", min(1.0, triangles / max(1, triangles + 1)))
    report("building", 1.0)
    if triangles == 0:
        raise ModelError("model has no triangle geometry", name)
    return SiteModel(path=path, nodes=nodes)


def _world_normals(normals: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Normals (V, 3) through K node transforms (K, 3, 3) -> (K, V, 3) float32.

    Uses the cofactor matrix (the inverse-transpose times the determinant, so no
    inversion), sign-corrected for mirrored nodes, then renormalises.
    """
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    g, h, i = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    cof = np.stack([
        np.stack([e * i - f * h, f * g - d * i, d * h - e * g], axis=-1),
        np.stack([c * h - b * i, a * i - c * g, b * g - a * h], axis=-1),
        np.stack([b * f - c * e, c * d - a * f, a * e - b * d], axis=-1),
    ], axis=1)  # fmt: skip
    det = a * cof[:, 0, 0] + b * cof[:, 0, 1] + c * cof[:, 0, 2]
    cof *= np.where(det < 0, -1.0, 1.0)[:, None, None]
    out = np.einsum("kij,vj->kvi", cof, normals)
    lengths = np.linalg.norm(out, axis=2, keepdims=True)
    return (out / np.where(lengths > 0, lengths, 1)).astype(np.float32)


def _mesh_arrays(mesh, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    positions = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if positions.ndim != 2 or positions.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ModelError("model has malformed geometry (vertex or face arrays of the wrong shape)", name)
    if not np.isfinite(positions).all():
        raise ModelError("model has vertices that are not finite numbers", name)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(positions)):
        raise ModelError("model has faces that refer to vertices it does not have", name)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
    return positions, normals, faces.astype(np.uint32), _vertex_colors(mesh)


def _vertex_colors(mesh) -> np.ndarray:
    n = len(mesh.vertices)
    visual = getattr(mesh, "visual", None)
    try:
        if visual is not None and visual.kind in ("vertex", "face"):
            colors = np.asarray(visual.vertex_colors, dtype=np.uint8)
            if colors.shape == (n, 4):
                return colors
        material = getattr(visual, "material", None)
        if material is not None:
            main = getattr(material, "baseColorFactor", None)
            if main is None:
                main = getattr(material, "main_color", None)
            if main is not None:
                main = np.asarray(main, dtype=np.float64)
                if main.max() <= 1.0:
                    main = main * 255
                rgba = np.clip(np.round(main), 0, 255).astype(np.uint8)
                if rgba.shape == (3,):
                    rgba = np.append(rgba, 255).astype(np.uint8)
                return np.broadcast_to(rgba, (n, 4)).copy()
    except Exception:  # a visual trimesh cannot resolve falls back to a neutral colour
        pass
    return np.broadcast_to(DEFAULT_RGBA, (n, 4)).copy()
