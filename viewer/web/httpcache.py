"""HTTP weight for the page's files: gzip when the browser accepts it, ETags, 304s.

Each file's encoded forms are computed once (and again only when a file on disk
changes), so a visit costs the server a dictionary lookup. A browser that has a
file revalidates it with If-None-Match and gets 304 Not Modified without a body:
the site GLB is downloaded again only when it changed. Python's gzip (stdlib) is
used rather than brotli: no extra dependency, and the GLB and three.js shrink
about as much with either at the levels worth spending CPU on here.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".glb", ".svg", ".txt")
MIN_GZIP_BYTES = 512


@dataclass(frozen=True)
class Encoded:
    body: bytes
    gzipped: bytes | None
    etag: str  # strong, of the uncompressed body; the gzip variant gets a "-gz" suffix


class EncodedFiles:
    """name -> Encoded, for bytes or files on disk (re-read when size or mtime change)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[object, Encoded]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, entry: Path | bytes) -> Encoded:
        if isinstance(entry, bytes):
            key: object = id(entry)
        else:
            st = entry.stat()
            key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        body = entry if isinstance(entry, bytes) else entry.read_bytes()
        gz = None
        if name.lower().endswith(COMPRESSIBLE) and len(body) >= MIN_GZIP_BYTES:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            gz = packed if len(packed) < len(body) * 0.95 else None
        encoded = Encoded(body, gz, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        with self._lock:
            self._cache[name] = (key, encoded)
        return encoded


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when an Accept-Encoding header allows gzip (and does not give it q=0)."""
    for part in (accept_encoding or "").split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
