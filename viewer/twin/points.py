"""The site's points as columns: one row per (device, point), in manifest order.

Built once per site. Every per-point array of the twin (values, qualities,
times, flags) is indexed by these rows, and every device owns one contiguous
range of them, so "the points of these devices" is a slice, never a search.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twinview.site.manifest import Device, PointSpec, Site

KIND_NUMBER, KIND_BOOL, KIND_ENUM = 0, 1, 2
_KINDS = {"number": KIND_NUMBER, "bool": KIND_BOOL, "enum": KIND_ENUM}


class PointTable:
    """Static facts about every point of a site, as numpy columns."""

    def __init__(self, site: Site):
        self.site = site
        self.devices: tuple[Device, ...] = site.devices
        specs: list[PointSpec] = []
        device_of: list[int] = []
        starts = [0]
        for i, d in enumerate(site.devices):
            specs.extend(d.points)
            device_of.extend([i] * len(d.points))
            starts.append(len(specs))
        self.specs: tuple[PointSpec, ...] = tuple(specs)
        n = len(specs)
        self.size = n
        self.device = np.asarray(device_of, np.int32)  # point -> device index
        self.start = np.asarray(starts, np.int64)  # device i owns points start[i]:start[i+1]
        self.count = np.diff(self.start)
        self.kind = np.asarray([_KINDS.get(s.kind, KIND_NUMBER) for s in specs], np.uint8)
        self.window = np.asarray([s.period * site.stale_factor for s in specs], np.float64)  # silence -> STALE
        self.period = np.asarray([s.period for s in specs], np.float64)
        self.alarm_lo = np.asarray([s.alarm[0] if s.alarm else -math.inf for s in specs], np.float64)
        self.alarm_hi = np.asarray([s.alarm[1] if s.alarm else math.inf for s in specs], np.float64)
        self.alarm_states = np.asarray([_state_mask(s) for s in specs], np.uint64)
        self.device_index: dict[str, int] = {d.id: i for i, d in enumerate(site.devices)}
        self._index: dict[tuple[str, str], int] = {
            (d.id, s.id): int(self.start[i]) + k for i, d in enumerate(site.devices) for k, s in enumerate(d.points)
        }
        self._by_device: list[dict[str, int]] = [
            {s.id: int(self.start[i]) + k for k, s in enumerate(d.points)} for i, d in enumerate(site.devices)
        ]

    def __len__(self) -> int:
        return self.size

    def index(self, device: str, point: str) -> int | None:
        """Row of a (device id, point id), or None when the site has no such point."""
        return self._index.get((device, point))

    def of_device(self, device: int) -> dict[str, int]:
        """point id -> row, for the device at `device` (site.devices order)."""
        return self._by_device[device]

    def key(self, row: int) -> str:
        """A stable, human name of a point: 'device/point' (survives manifest edits that reorder)."""
        return f"{self.devices[self.device[row]].id}/{self.specs[row].id}"

    def rows_of(self, devices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, offsets): every point of the given devices, concatenated, and where each device's run starts."""
        devices = np.asarray(devices, np.int64)
        counts = self.count[devices]
        offsets = np.zeros(len(devices), np.int64)
        if len(devices) > 1:
            np.cumsum(counts[:-1], out=offsets[1:])
        total = int(counts.sum())
        rows = np.arange(total, dtype=np.int64) - np.repeat(offsets - self.start[devices], counts)
        return rows, offsets

    def to_float(self, row: int, value: Any) -> float:
        """A decoded value in the twin's float terms: 0/1 for bools, the state index for enums."""
        if value is None:
            return math.nan
        kind = self.kind[row]
        if kind == KIND_BOOL or isinstance(value, bool):
            return 1.0 if value else 0.0
        if kind == KIND_ENUM or isinstance(value, str):
            try:
                return float(self.specs[row].states.index(value))
            except ValueError:
                return math.nan
        return float(value)

    def from_float(self, row: int, x: float) -> float | bool | str | None:
        """The value as a person reads it: a number, True/False, or the enum state's name."""
        if x != x:  # NaN: no value
            return None
        kind = self.kind[row]
        if kind == KIND_BOOL:
            return bool(x)
        if kind == KIND_ENUM:
            states = self.specs[row].states
            k = int(x)
            return states[k] if 0 <= k < len(states) else None
        return float(x)


def _state_mask(spec: PointSpec) -> int:
    """Bit k set when state k of an enum (or false/true of a bool) is an alarm state."""
    mask = 0
    if spec.kind == "enum":
        for k, state in enumerate(spec.states):
            if state in spec.alarm_states and k < 64:
                mask |= 1 << k
    elif spec.kind == "bool":
        if "false" in spec.alarm_states:
            mask |= 1
        if "true" in spec.alarm_states:
            mask |= 2
    return mask
