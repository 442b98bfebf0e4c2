"""Check a glTF document's structure before any parser touches it.

trimesh trusts what a file claims: a node graph with a cycle makes it loop (or
raise "Iteration limit exceeded" from deep inside), and an accessor that claims
two billion vertices over a 36-byte buffer makes numpy fail with a message about
array shapes. Here the claims are checked against each other and against the
bytes really present, so the user is told what is wrong with the file.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from pathlib import Path
from urllib.parse import unquote

COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
COMPONENT_NAMES = {5120: "byte", 5121: "unsigned byte", 5122: "short", 5123: "unsigned short", 5125: "unsigned int", 5126: "float"}
TYPE_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
MAX_ACCESSOR_BYTES = 512 * 1024 * 1024
MAX_NODE_DEPTH = 256  # modelling tools nest a few dozen levels; a chain thousands deep only makes parsers crawl  # an accessor without a buffer view is zeros that would still be allocated


class GltfInvalid(ValueError):
    """What is wrong with the file, in the file's own terms."""


def read_glb(data: bytes) -> tuple[dict, int | None]:
    """The JSON chunk of a GLB file and the length of its BIN chunk (None when it has none)."""
    if len(data) < 20 or data[:4] != b"glTF":
        raise GltfInvalid("missing GLB header")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise GltfInvalid(f"GLB version {version}, expected 2")
    if length != len(data):
        raise GltfInvalid(f"GLB header says {length} bytes, file has {len(data)}")
    chunk_len, chunk_type = struct.unpack_from("<II", data, 12)
    if chunk_type != 0x4E4F534A or 20 + chunk_len > len(data):
        raise GltfInvalid("first GLB chunk is not a complete JSON chunk")
    doc = json.loads(data[20 : 20 + chunk_len].decode("utf-8"))
    at = 20 + chunk_len
    if at + 8 <= len(data):
        bin_len, bin_type = struct.unpack_from("<II", data, at)
        if bin_type == 0x004E4942:
            return doc, min(bin_len, len(data) - at - 8)
    return doc, None


def read_document(path: Path) -> tuple[object, int | None]:
    data = path.read_bytes()
    if path.suffix.lower() == ".gltf":
        return json.loads(data.decode("utf-8")), None
    return read_glb(data)


def _list(doc: dict, key: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise GltfInvalid(f"{key} is not a list")
    return value


def _int(value, what: str, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value >= hi):
        bound = f"from {lo} to {hi - 1}" if hi is not None else f"of at least {lo}"
        if hi is not None and hi <= lo:
            raise GltfInvalid(f"{what} is {value!r}, but there are none to refer to")
        raise GltfInvalid(f"{what} is {value!r}, expected a whole number {bound}")
    return value


def _node_label(nodes: list, i: int) -> str:
    name = nodes[i].get("name") if isinstance(nodes[i], dict) else None
    return f"node {i} ({name!r})" if isinstance(name, str) else f"node {i}"


def check_nodes(doc: dict) -> None:
    """Every child index valid, no node with two parents, no cycles, scene roots that are roots."""
    nodes = _list(doc, "nodes")
    n = len(nodes)
    meshes = len(_list(doc, "meshes"))
    parent: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise GltfInvalid(f"node {i} is not an object")
        if "mesh" in node:
            _int(node["mesh"], f"{_node_label(nodes, i)} mesh", 0, meshes)
        children = node.get("children", [])
        if not isinstance(children, list):
            raise GltfInvalid(f"{_node_label(nodes, i)} children is not a list")
        for c in children:
            _int(c, f"{_node_label(nodes, i)} child", 0, n)
            if c == i:
                raise GltfInvalid(f"{_node_label(nodes, i)} is its own child: the node graph has a cycle")
            if c in parent and parent[c] != i:
                raise GltfInvalid(
                    f"{_node_label(nodes, c)} is a child of both {_node_label(nodes, parent[c])} and "
                    f"{_node_label(nodes, i)}: glTF nodes have one parent"
                )
            parent[c] = i
    depth: dict[int, int] = {}  # levels below a root, known once walked: each node is walked once
    for start in range(n):
        path = [start]
        on_path = {start}
        at = start
        while at in parent and at not in depth:
            at = parent[at]
            if at in on_path:
                raise GltfInvalid(f"{_node_label(nodes, at)} is its own ancestor: the node graph has a cycle")
            path.append(at)
            on_path.add(at)
        d = depth.get(at, 0) if at in depth else -1
        for node in reversed(path):
            if node not in depth:
                d += 1
                depth[node] = d
        if depth[start] > MAX_NODE_DEPTH:
            raise GltfInvalid(
                f"{_node_label(nodes, start)} is nested {depth[start]} levels deep; at most {MAX_NODE_DEPTH} levels are read"
            )
    for s, scene in enumerate(_list(doc, "scenes")):
        roots = scene.get("nodes", []) if isinstance(scene, dict) else None
        if not isinstance(roots, list):
            raise GltfInvalid(f"scene {s} nodes is not a list")
        for r in roots:
            _int(r, f"scene {s} node", 0, n)
            if r in parent:
                raise GltfInvalid(
                    f"scene {s} lists {_node_label(nodes, r)} as a root, but it is a child of {_node_label(nodes, parent[r])}"
                )


def buffer_sizes(doc: dict, path: Path, bin_chunk: int | None) -> list[int]:
    """Bytes really present for each buffer (data URI, file next to the model, or the GLB's BIN chunk)."""
    sizes = []
    for i, buf in enumerate(_list(doc, "buffers")):
        if not isinstance(buf, dict):
            raise GltfInvalid(f"buffer {i} is not an object")
        declared = _int(buf.get("byteLength"), f"buffer {i} byteLength", 0)
        uri = buf.get("uri")
        if uri is None:
            if i != 0 or bin_chunk is None:
                raise GltfInvalid(f"buffer {i} has no uri and the file has no binary chunk for it")
            actual = bin_chunk
        elif not isinstance(uri, str):
            raise GltfInvalid(f"buffer {i} uri is not a string")
        elif uri.startswith("data:"):
            head, _, payload = uri.partition(",")
            try:
                actual = len(base64.b64decode(payload, validate=False)) if head.endswith(";base64") else len(unquote(payload).encode())
            except (binascii.Error, ValueError):
                raise GltfInvalid(f"buffer {i} has a data URI that is not valid base64") from None
        else:
            target = path.parent / unquote(uri)
            actual = target.stat().st_size if target.is_file() else 0
        if actual < declared:
            raise GltfInvalid(f"buffer {i} declares {declared} bytes but holds {actual}")
        sizes.append(declared)
    return sizes


def check_accessors(doc: dict, sizes: list[int]) -> None:
    """Every accessor fits in its buffer view, every buffer view in its buffer."""
    views = _list(doc, "bufferViews")
    accessors = _list(doc, "accessors")
    for v, view in enumerate(views):
        if not isinstance(view, dict):
            raise GltfInvalid(f"bufferView {v} is not an object")
        b = _int(view.get("buffer"), f"bufferView {v} buffer", 0, len(sizes))
        offset = _int(view.get("byteOffset", 0), f"bufferView {v} byteOffset")
        length = _int(view.get("byteLength"), f"bufferView {v} byteLength", 1)
        if offset + length > sizes[b]:
            raise GltfInvalid(f"bufferView {v} spans bytes {offset}..{offset + length} but buffer {b} holds {sizes[b]} bytes")
        if "byteStride" in view:
            _int(view["byteStride"], f"bufferView {v} byteStride", 4, 253)

    role = _accessor_roles(doc)
    for a, acc in enumerate(accessors):
        if not isinstance(acc, dict):
            raise GltfInvalid(f"accessor {a} is not an object")
        comp = acc.get("componentType")
        if comp not in COMPONENT_BYTES:
            raise GltfInvalid(f"accessor {a} componentType is {comp!r}, not a glTF component type")
        kind = acc.get("type")
        if kind not in TYPE_COMPONENTS:
            raise GltfInvalid(f"accessor {a} type is {kind!r}, expected one of {', '.join(TYPE_COMPONENTS)}")
        count = _int(acc.get("count"), f"accessor {a} count", 1)
        what = role.get(a, "elements")
        element = COMPONENT_BYTES[comp] * TYPE_COMPONENTS[kind]
        needed_tight = count * element
        sparse = acc.get("sparse")
        if sparse is not None:
            _check_sparse(a, sparse, count, views)
        if "bufferView" not in acc:
            if needed_tight > MAX_ACCESSOR_BYTES:
                raise GltfInvalid(f"accessor {a} claims {count} {what} with no buffer behind them ({needed_tight} bytes of zeros)")
            continue
        v = _int(acc["bufferView"], f"accessor {a} bufferView", 0, len(views))
        view = views[v]
        offset = _int(acc.get("byteOffset", 0), f"accessor {a} byteOffset")
        stride = view.get("byteStride") or element
        needed = offset + stride * (count - 1) + element
        if needed > view["byteLength"]:
            raise GltfInvalid(
                f"accessor {a} claims {count} {what} ({kind} {COMPONENT_NAMES[comp]}, {needed} bytes) "
                f"but its bufferView {v} holds {view['byteLength']} bytes"
            )


def _check_sparse(a: int, sparse, count: int, views: list) -> None:
    """A sparse accessor's replaced elements: at most `count`, indices and values inside their views."""
    if not isinstance(sparse, dict):
        raise GltfInvalid(f"accessor {a} sparse is not an object")
    n = _int(sparse.get("count"), f"accessor {a} sparse count", 1)
    if n > count:
        raise GltfInvalid(f"accessor {a} replaces {n} elements sparsely but has only {count}")
    for part in ("indices", "values"):
        entry = sparse.get(part)
        if not isinstance(entry, dict):
            raise GltfInvalid(f"accessor {a} sparse {part} is not an object")
        v = _int(entry.get("bufferView"), f"accessor {a} sparse {part} bufferView", 0, len(views))
        offset = _int(entry.get("byteOffset", 0), f"accessor {a} sparse {part} byteOffset")
        if part == "indices" and entry.get("componentType") not in (5121, 5123, 5125):
            raise GltfInvalid(f"accessor {a} sparse indices componentType is {entry.get('componentType')!r}, expected an unsigned type")
        size = n * COMPONENT_BYTES[entry["componentType"]] if part == "indices" else n  # values: at least a byte each
        if offset + size > views[v]["byteLength"]:
            raise GltfInvalid(f"accessor {a} sparse {part} claim {n} elements but bufferView {v} holds {views[v]['byteLength']} bytes")


def _accessor_roles(doc: dict) -> dict[int, str]:
    roles: dict[int, str] = {}
    for mesh in _list(doc, "meshes"):
        prims = mesh.get("primitives", []) if isinstance(mesh, dict) else []
        for prim in prims if isinstance(prims, list) else []:
            if not isinstance(prim, dict):
                continue
            attrs = prim.get("attributes", {})
            if isinstance(attrs, dict):
                for name, a in attrs.items():
                    if isinstance(a, int):
                        roles.setdefault(a, "vertices" if name == "POSITION" else f"{name} values")
            if isinstance(prim.get("indices"), int):
                roles.setdefault(prim["indices"], "indices")
    return roles


def check_meshes(doc: dict) -> None:
    accessors = len(_list(doc, "accessors"))
    for m, mesh in enumerate(_list(doc, "meshes")):
        prims = mesh.get("primitives") if isinstance(mesh, dict) else None
        if not isinstance(prims, list):
            raise GltfInvalid(f"mesh {m} has no primitives list")
        for p, prim in enumerate(prims):
            if not isinstance(prim, dict) or not isinstance(prim.get("attributes"), dict):
                raise GltfInvalid(f"mesh {m} primitive {p} has no attributes")
            for name, a in prim["attributes"].items():
                _int(a, f"mesh {m} primitive {p} attribute {name}", 0, accessors)
            if "indices" in prim:
                _int(prim["indices"], f"mesh {m} primitive {p} indices", 0, accessors)


def check_structure(doc: dict, path: Path, bin_chunk: int | None) -> None:
    """Raise GltfInvalid with what is wrong; returns when the structure is consistent."""
    check_nodes(doc)
    check_meshes(doc)
    check_accessors(doc, buffer_sizes(doc, path, bin_chunk))
