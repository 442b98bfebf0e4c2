"""Hand-written glTF files, so tests can make models no exporter would write (cycles, lying counts)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

TRIANGLE = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)


def triangle_doc(nodes: list[dict], roots: list[int], count: int = 3, declared: int | None = None) -> dict:
    """One triangle mesh (36 bytes of positions in a data URI) used by every node that names mesh 0."""
    data = TRIANGLE
    return {
        "asset": {"version": "2.0"},
        "buffers": [{
            "byteLength": len(data) if declared is None else declared,
            "uri": "data:application/octet-stream;base64," + base64.b64encode(data).decode(),
        }],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 36}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": count, "type": "VEC3",
                       "min": [0, 0, 0], "max": [1, 1, 0]}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "nodes": nodes,
        "scenes": [{"nodes": roots}],
        "scene": 0,
    }  # fmt: skip


def glb_bytes(doc: dict, binary: bytes) -> bytes:
    """A GLB file: the JSON chunk and one BIN chunk (buffer 0 has no uri)."""
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def write_site(root: Path, doc: dict | bytes, manifest: str | None = None, name: str = "model.gltf") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(doc, bytes):
        (root / name).write_bytes(doc)
    else:
        (root / name).write_text(json.dumps(doc))
    (root / "site.toml").write_text(
        manifest or f'[site]\nname = "Odd"\nmodel = "{name}"\n\n[[devices]]\nid = "A"\nnode = "A"\n'
    )
    return root
