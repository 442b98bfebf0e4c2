"""The point name table: "device/point" <-> a stable integer id, stored with the data.

Ids are handed out in order of first use and never reused or renumbered, so a
manifest edit (points added, removed, reordered) never changes what an id
means. The file is append-only, one `id<TAB>name` line per point, written with a
single write() and fsync'd before the id is used, so a block on disk never
refers to an id that a reopened store would not know. Readers in other
processes reload it when they meet an id they do not know yet.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable

import numpy as np


class NameTable:
    def __init__(self, path: Path, writable: bool):
        self.path = Path(path)
        self.writable = writable
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self._size = 0
        self.reload()

    def __len__(self) -> int:
        return len(self._names)

    def reload(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._size)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # ignore a torn last line (a kill mid-write)
        for line in data[:end].decode("utf-8").splitlines():
            sid, _, name = line.partition("\t")
            i = int(sid)
            if i != len(self._names):
                raise ValueError(f"{self.path}: ids out of order at {i}")
            self._names.append(name)
            self._ids[name] = i
        self._size += end

    def ids(self, names: Iterable[str], create: bool = True) -> np.ndarray:
        """Ids for names (int32), registering unknown ones when create (else -1)."""
        names = list(names)
        with self._lock:
            missing = [n for n in dict.fromkeys(names) if n not in self._ids]
            if missing and not self.writable:
                self.reload()
                missing = [n for n in missing if n not in self._ids]
            if missing and create:
                if not self.writable:
                    raise PermissionError("store is open read-only: cannot add point names")
                lines = []
                for n in missing:
                    if "\t" in n or "\n" in n:
                        raise ValueError(f"point name may not contain tab or newline: {n!r}")
                    i = len(self._names)
                    self._names.append(n)
                    self._ids[n] = i
                    lines.append(f"{i}\t{n}\n")
                data = "".join(lines).encode("utf-8")
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._size += len(data)
            return np.array([self._ids.get(n, -1) for n in names], np.int32)

    def names(self, ids: Iterable[int]) -> list[str]:
        ids = [int(i) for i in ids]
        if ids and max(ids) >= len(self._names):
            with self._lock:
                self.reload()
        return [self._names[i] if 0 <= i < len(self._names) else f"#{i}" for i in ids]

    def items(self) -> list[tuple[int, str]]:
        with self._lock:
            self.reload()
            return list(enumerate(self._names))
