"""The page's files: our static folder plus exactly the three.js modules it imports.

three.js comes from viewer/web/node_modules (npm ci in viewer/web), or from the
folder named by TWINVIEW_NODE_MODULES. Only the modules reachable from the
page's imports are served or exported, found by following import statements,
so a static bundle carries a few hundred kB of three.js, not all of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
THREE_URL = "three/"  # URL prefix, relative to the page

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".glb": "model/gltf-binary",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".crt": "application/x-x509-ca-cert",  # the local CA (DER): headsets offer to install it
    ".pem": "application/x-pem-file",
}

_IMPORT = re.compile(r"""(?:^|[\s;}])(?:import|export)\s*(?:[\w*{}\s,$]*?\s*from\s*)?["']([^"']+)["']""", re.M)


class MissingThree(FileNotFoundError):
    """three.js is not installed next to the page."""


def node_modules() -> Path:
    """The node_modules folder that holds three (TWINVIEW_NODE_MODULES overrides)."""
    override = os.environ.get("TWINVIEW_NODE_MODULES")
    return Path(override) if override else WEB_DIR / "node_modules"


def three_root() -> Path:
    root = node_modules() / "three"
    if not (root / "build" / "three.module.js").is_file():
        raise MissingThree(
            f"three.js not found in {root.parent}: run `npm ci` in {WEB_DIR} (packaging/setup.sh does it), "
            "or set TWINVIEW_NODE_MODULES to a node_modules folder that has three"
        )
    return root


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


def imports_of(source: str) -> list[str]:
    """Module specifiers of the static import/export-from statements in a JS source."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"(?m)^\s*//.*$", "", source)
    return _IMPORT.findall(source)


def _resolve(spec: str, importer: str) -> str | None:
    """A specifier as a path relative to the three package root; None for our own files."""
    if spec == "three":
        return "build/three.module.js"
    if spec.startswith("three/addons/"):
        return "examples/jsm/" + spec[len("three/addons/"):]
    if spec.startswith("./") or spec.startswith("../"):
        if importer.startswith("static:"):
            return None
        parts = list(PurePosixPath(importer).parent.parts)
        for piece in PurePosixPath(spec).parts:
            if piece == "..":
                if not parts:
                    return None
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        return "/".join(parts)
    return None


def three_files(entry_sources: list[str] | None = None) -> list[str]:
    """Paths (relative to the three package) that the page's modules import, transitively."""
    root = three_root()
    if entry_sources is None:
        entry_sources = [p.read_text(encoding="utf-8") for p in sorted(STATIC_DIR.glob("*.js"))]
    seen: set[str] = set()
    todo: list[tuple[str, str]] = []
    for src in entry_sources:
        todo.extend((spec, "static:") for spec in imports_of(src))
    while todo:
        spec, importer = todo.pop()
        rel = _resolve(spec, importer)
        if rel is None or rel in seen:
            continue
        path = (root / rel).resolve()
        if root.resolve() not in path.parents or not path.is_file():
            raise MissingThree(f"{spec!r} (imported by {importer.removeprefix('static:') or 'the page'}) is not in {root}")
        seen.add(rel)
        todo.extend((s, rel) for s in imports_of(path.read_text(encoding="utf-8")))
    return sorted(seen)


def page_files() -> dict[str, Path]:
    """URL path (without leading slash) -> file, for the page and the three.js it needs."""
    files = {p.name: p for p in sorted(STATIC_DIR.iterdir()) if p.is_file() and not p.name.startswith(".")}
    root = three_root()
    for rel in three_files():
        files[THREE_URL + rel] = root / rel
    return files
