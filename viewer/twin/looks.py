"""What every device should look like now, as columns: paint colour, state flags, motion targets.

Evaluated by the runtime for the devices that changed, vectorised per overlay:
the manifest's overlays are grouped (devices of one type share them), and each
group is one numpy expression over its changed devices. Label text is made on
demand (`label`), for the few labels a view actually shows.

Truth first: a value that is not current is never shown as if it were (flags
mark it, labels say so, motion holds the last good value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twinview.site.manifest import ColorOverlay, Device, PointSpec

from . import colormaps
from .overlays import color_for, label_text
from .state import BAD, NONE, STALE, TwinState
from .vocabulary import DeviceFlag

RGBA = tuple[float, float, float, float]
_POINT_FLAGS = np.zeros(5, np.uint32)  # point quality -> the device flag it raises
_POINT_FLAGS[NONE] = DeviceFlag.STALE
_POINT_FLAGS[STALE] = DeviceFlag.STALE
_POINT_FLAGS[BAD] = DeviceFlag.BAD
_ALARM = np.uint32(DeviceFlag.ALARM)
_OFFLINE = np.uint32(DeviceFlag.OFFLINE)
_PENDING = np.uint32(DeviceFlag.PENDING)
_LEGACY_ALARM = np.uint32(DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK | DeviceFlag.ALARM_SEV_LO | DeviceFlag.ALARM_SEV_HI)
_ALARM_BITS = np.uint32(DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK | DeviceFlag.ALARM_SEV_LO | DeviceFlag.ALARM_SEV_HI)


@dataclass(frozen=True, slots=True)
class DeviceLook:
    """One device's look as plain data (for the web protocol and tests)."""

    rgba: RGBA | None  # None: keep the model's own colour
    flags: int
    motions: tuple[float | None, ...]  # one target per MotionOverlay; None: never had a value
    label: str


class _ColorGroup:
    """Devices that share one colour overlay on points of one kind: evaluated as one expression."""

    def __init__(self, overlay: ColorOverlay, spec: PointSpec):
        self.overlay = overlay
        self.spec = spec
        self.devices: list[int] = []
        self.rows: list[int] = []
        self.lut: np.ndarray | None = None  # state index -> rgba (NaN: fall through to stops/map)
        kind = spec.kind
        if overlay.states and kind in ("bool", "enum"):
            names = ("false", "true") if kind == "bool" else spec.states
            self.lut = np.full((max(1, len(names)), 4), np.nan, np.float32)
            for k, name in enumerate(names):
                rgba = overlay.states.get(name)
                if rgba is not None:
                    self.lut[k] = rgba
        # A numeric point keyed by states ("1", "2.5") is rare: evaluated one by one, exactly.
        self.scalar = bool(overlay.states) and kind == "number"
        self.thresholds = np.asarray([t for t, _ in overlay.stops], np.float64)
        self.stop_rgba = np.asarray([c for _, c in overlay.stops], np.float32).reshape(-1, 4)

    def finish(self) -> None:
        self.device_arr = np.asarray(self.devices, np.int64)
        self.row_arr = np.asarray(self.rows, np.int64)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """RGBA for values x (NaN: no value); rows with alpha 0 keep the model's colour."""
        out = np.zeros((len(x), 4), np.float32)
        todo = ~np.isnan(x)
        o = self.overlay
        if self.lut is not None:
            k = np.where(todo, x, 0).astype(np.int64).clip(0, len(self.lut) - 1)
            found = todo & ~np.isnan(self.lut[k, 0])
            out[found] = self.lut[k[found]]
            todo &= ~found
            if not (o.stops or o.map):
                return out
        if o.stops:
            j = np.searchsorted(self.thresholds, x[todo], side="right") - 1
            out[todo] = self.stop_rgba[np.maximum(j, 0)]
        elif o.map and o.range:
            lo, hi = o.range
            out[todo] = colormaps.sample_many(o.map, (x[todo] - lo) / (hi - lo))
        return out


def _group_key(overlay: ColorOverlay, spec: PointSpec) -> tuple:
    """Devices whose colour rule is equal (by value, not identity) share one evaluation."""
    return (overlay.map, overlay.range, overlay.stops, tuple(sorted(overlay.states.items())), spec.kind, spec.states)


class Looks:
    """Paint, flags and motion targets of every device; updated by index for the devices that changed."""

    def __init__(self, state: TwinState):
        self.state = state
        site = state.site
        table = state.table
        n = len(site.devices)
        self.rgba = np.zeros((n, 4), np.float32)
        self.flags = np.zeros(n, np.uint32)
        self.pending = np.zeros(n, bool)  # a command is in flight (set by the runtime)
        # Alarm flag bits per device from an alarm engine (ALARM, ALARM_UNACK, severity); None: the
        # simple rule, ALARM while a point's last value is outside its band or in an alarm state.
        self.alarm_bits: np.ndarray | None = None
        groups: dict[tuple[int, str], _ColorGroup] = {}
        self._group_of = np.full(n, -1, np.int64)
        motion_rows: list[int] = []
        motion_params: list[tuple[float, float, float, float]] = []
        motion_start = [0]
        for i, d in enumerate(site.devices):
            rows = table.of_device(i)
            if d.color is not None and d.color.point in rows:
                spec = table.specs[rows[d.color.point]]
                key = _group_key(d.color, spec)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _ColorGroup(d.color, spec)
                self._group_of[i] = list(groups).index(key)
                group.devices.append(i)
                group.rows.append(rows[d.color.point])
            for m in d.motions:
                motion_rows.append(rows.get(m.point, -1))
                (r0, r1), (t0, t1) = m.range, m.to
                motion_params.append((r0, r1, t0, t1))
            motion_start.append(len(motion_rows))
        self._groups = list(groups.values())
        for g in self._groups:
            g.finish()
        self._row_of = np.full(n, -1, np.int64)  # colour point per device
        for g in self._groups:
            self._row_of[g.device_arr] = g.row_arr
        self.motion_row = np.asarray(motion_rows, np.int64)
        self.motion_start = np.asarray(motion_start, np.int64)  # device i owns motions start[i]:start[i+1]
        params = np.asarray(motion_params, np.float64).reshape(-1, 4)
        self._m_r0, self._m_r1, self._m_t0, self._m_t1 = params.T
        self.motion_target = np.full(len(motion_rows), np.nan)  # NaN: never had a value (hold)

    # --- evaluation (the runtime's thread) ----------------------------------------------

    def evaluate(self, devices: np.ndarray) -> np.ndarray:
        """Recompute the looks of `devices` (unique indices); returns the motion entries that changed."""
        devices = np.asarray(devices, np.int64)
        if not devices.size:
            return np.empty(0, np.int64)
        self._evaluate_flags(devices)
        self._evaluate_colors(devices)
        return self._evaluate_motions(devices)

    def _evaluate_flags(self, devices: np.ndarray) -> None:
        state, table = self.state, self.state.table
        has_points = table.count[devices] > 0
        flags = np.zeros(len(devices), np.uint32)
        with_points = devices[has_points]
        if with_points.size:
            rows, offsets = table.rows_of(with_points)
            bits = _POINT_FLAGS[state.quality[rows]]
            if self.alarm_bits is None:  # the simple rule looks like an unacknowledged critical alarm
                bits = bits | np.where(state.alarm[rows], _LEGACY_ALARM, np.uint32(0))
            flags[has_points] = np.bitwise_or.reduceat(bits, offsets)
        if self.alarm_bits is not None:
            flags |= self.alarm_bits[devices]
        offline = state.offline[devices]
        flags = np.where(offline, _OFFLINE | (flags & _ALARM_BITS), flags)
        flags |= np.where(self.pending[devices], _PENDING, np.uint32(0))
        self.flags[devices] = flags

    def _evaluate_colors(self, devices: np.ndarray) -> None:
        group_of = self._group_of[devices]
        colored = group_of >= 0
        if not colored.any():
            return
        devices, group_of = devices[colored], group_of[colored]
        good = self.state.good
        for g in np.unique(group_of).tolist():
            group = self._groups[g]
            members = devices[group_of == g]
            if group.scalar:
                for i in members.tolist():
                    row = int(self._row_of[i])
                    value = self.state.table.from_float(row, good[row])
                    rgba = color_for(group.overlay, group.spec, value)
                    self.rgba[i] = rgba if rgba is not None else (0, 0, 0, 0)
                continue
            self.rgba[members] = group.evaluate(good[self._row_of[members]])

    def _evaluate_motions(self, devices: np.ndarray) -> np.ndarray:
        counts = self.motion_start[devices + 1] - self.motion_start[devices]
        if not counts.any():
            return np.empty(0, np.int64)
        moving = devices[counts > 0]
        counts = counts[counts > 0]
        offsets = np.zeros(len(moving), np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        entries = np.arange(int(counts.sum())) - np.repeat(offsets - self.motion_start[moving], counts)
        rows = self.motion_row[entries]
        x = np.where(rows >= 0, self.state.good[np.maximum(rows, 0)], np.nan)
        r0, r1, t0, t1 = self._m_r0[entries], self._m_r1[entries], self._m_t0[entries], self._m_t1[entries]
        span = r1 - r0
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(span == 0, 0.0, np.clip((x - r0) / np.where(span == 0, 1.0, span), 0.0, 1.0))
        target = np.where(np.isnan(x), np.nan, t0 + t * (t1 - t0))
        old = self.motion_target[entries]
        changed = ~((old == target) | (np.isnan(old) & np.isnan(target)))
        self.motion_target[entries] = target
        return entries[changed]

    # --- reading ------------------------------------------------------------------------

    def label(self, device: int) -> str:
        """The device's label text now (made on demand: only shown labels pay for formatting)."""
        d: Device = self.state.devices[device]
        if d.label is None:
            return ""
        return label_text(d, self.state, device)

    def look(self, device: int) -> DeviceLook:
        """One device's look as plain data."""
        rgba = self.rgba[device]
        start, end = int(self.motion_start[device]), int(self.motion_start[device + 1])
        motions = tuple(None if math.isnan(t) else float(t) for t in self.motion_target[start:end].tolist())
        return DeviceLook(
            tuple(float(c) for c in rgba) if rgba[3] > 0 else None, int(self.flags[device]), motions, self.label(device)
        )

