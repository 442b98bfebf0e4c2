"""Recorder: what the runtime subscribes to the store, mapping its point indices to stable store ids.

The runtime numbers points per process (their order in the manifest); the store
numbers them for ever ("device/point" names in its name table). A Recorder holds
the mapping as one int32 array, so recording a step is one fancy-index and one
append:

    rec = Recorder(store, [f"{d.id}/{p.id}" for d in site.devices for p in d.points])
    rec.record(changed_indices, t, v, quality)     # once per runtime step, from one thread
    rec.remap(new_names)                           # after a manifest edit: old points keep their ids
"""

from __future__ import annotations

import numpy as np


class Recorder:
    def __init__(self, store, point_names):
        self.store = store
        self.remap(point_names)
        self.recorded = 0

    def remap(self, point_names) -> None:
        self.ids = np.asarray(self.store.ids(list(point_names)), np.int32)

    def record(self, point_index, t, v, quality=None) -> None:
        idx = np.asarray(point_index, np.intp)
        if idx.size == 0:
            return
        self.store.append(self.ids[idx], t, v, quality)
        self.recorded += int(idx.size)

    def close(self) -> None:
        self.store.close()
