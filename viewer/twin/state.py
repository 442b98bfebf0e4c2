"""The twin: latest value, quality, alarm and history of every point of a site.

Owned by the render loop: apply() a drained batch of events, tick() once per
frame, then redraw the devices whose indices came back. Cost is proportional to
the events applied and the deadlines that passed, never to the size of the site.

Quality rules (docs/telemetry.md):
- a good sample makes its point GOOD, unless the device is offline (stays OFFLINE)
  or the sample's own timestamp is already older than period * stale_factor
  (STALE, "arrived stale");
- a bad sample makes its point BAD (value kept for display when it decoded but
  was out of range) until a good sample arrives;
- a GOOD point silent for longer than period * stale_factor becomes STALE (tick);
- LinkState "down" from a connector makes the GOOD points it feeds STALE;
- Availability offline makes every point of the device OFFLINE; back online they
  become STALE (NONE if never received) until fresh values arrive;
- a sample whose source timestamp is older than the point's latest one is counted
  as out of order and not applied.
"""

from __future__ import annotations

import heapq
import math
from typing import Iterable

import numpy as np

from ..connectors.base import Availability, Event, LinkState, Sample
from ..site.manifest import Device, PointSpec, Site
from .history import History
from .quality import Quality

GOOD, NONE, STALE, BAD, OFFLINE = Quality.GOOD, Quality.NONE, Quality.STALE, Quality.BAD, Quality.OFFLINE
HISTORY_BUDGET_BYTES = 64 * 1024 * 1024
MAX_HISTORY_LEN = 2048


class PointState:
    """Live state of one point. Read it; only TwinState writes it."""

    __slots__ = (
        "device", "point", "spec", "dev", "index", "window",
        "value", "good_value", "quality", "source_ts", "recv_ts", "good_recv_ts",
        "error", "last_error", "note", "alarm",
        "updates", "bad", "out_of_order",
        "deadline", "armed", "history", "hist_len", "hist_interval",
    )  # fmt: skip

    def __init__(self, device: str, spec: PointSpec, dev: int, index: int, window: float):
        self.device = device
        self.point = spec.id
        self.spec = spec
        self.dev = dev  # device index in site.devices order
        self.index = index
        self.window = window  # seconds of silence before STALE
        self.value: float | bool | str | None = None  # shown value (may be a bad, out-of-range one)
        self.good_value: float | bool | str | None = None  # last good value
        self.quality = NONE
        self.source_ts: float | None = None  # device timestamp of the latest good sample
        self.recv_ts: float | None = None  # receive time of the latest sample, good or bad
        self.good_recv_ts: float | None = None
        self.error: str | None = None  # why the point is BAD now
        self.last_error: str | None = None
        self.note = ""  # why it is STALE / what was odd about the last sample
        self.alarm = False
        self.updates = 0
        self.bad = 0
        self.out_of_order = 0
        self.deadline = math.inf
        self.armed = False
        self.history: History | None = None
        self.hist_len = 0
        self.hist_interval = 0.0

    @property
    def ts(self) -> float | None:
        """Best known time of the shown value: the device's own, else receive time."""
        return self.source_ts if self.source_ts is not None else self.good_recv_ts

    def as_dict(self) -> dict:
        return {
            "device": self.device, "point": self.point, "value": self.value, "good_value": self.good_value,
            "quality": self.quality.label, "source_ts": self.source_ts, "recv_ts": self.recv_ts,
            "error": self.error, "last_error": self.last_error, "note": self.note, "alarm": self.alarm,
            "updates": self.updates, "bad": self.bad, "out_of_order": self.out_of_order,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"PointState({self.device}.{self.point}={self.value!r} {self.quality.label})"


def in_alarm(spec: PointSpec, value: float | bool | str | None) -> bool:
    """True when a value is outside the point's alarm band or is one of its alarm states."""
    if value is None:
        return False
    if spec.kind == "number":
        return spec.alarm is not None and not (spec.alarm[0] <= value <= spec.alarm[1])  # type: ignore[operator]
    if not spec.alarm_states:
        return False
    key = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return key in spec.alarm_states


def _history_value(spec: PointSpec, value: float | bool | str) -> float | None:
    if spec.kind == "number":
        return float(value)  # type: ignore[arg-type]
    if spec.kind == "bool":
        return 1.0 if value else 0.0
    try:
        return float(spec.states.index(value))  # type: ignore[arg-type]
    except ValueError:
        return None


class TwinState:
    """Latest value, quality, alarm and history for every point of a site."""

    def __init__(
        self,
        site: Site,
        history_seconds: float = 600.0,
        history_len: int | None = None,
        history_budget_bytes: int = HISTORY_BUDGET_BYTES,
    ):
        self.site = site
        self.history_seconds = float(history_seconds)
        self.devices: tuple[Device, ...] = site.devices
        self._index: dict[str, int] = {d.id: i for i, d in enumerate(site.devices)}
        self._points: list[PointState] = []
        self._by_device: list[list[PointState]] = []
        self._lookup: dict[str, dict[str, PointState]] = {}
        factor = site.stale_factor
        for i, d in enumerate(site.devices):
            recs = []
            for spec in d.points:
                rec = PointState(d.id, spec, i, len(self._points), spec.period * factor)
                self._points.append(rec)
                recs.append(rec)
            self._by_device.append(recs)
            self._lookup[d.id] = {r.point: r for r in recs}
        self._maps: list[dict[str, PointState]] = [self._lookup[d.id] for d in site.devices]
        n = max(1, len(self._points))
        if history_len is None:
            history_len = int(min(MAX_HISTORY_LEN, max(16, history_budget_bytes // (16 * n))))
        self.history_len = int(history_len)
        resolution = self.history_seconds / self.history_len  # seconds between stored samples, at least
        for rec in self._points:
            step = max(rec.spec.period * 0.8, resolution)
            rec.hist_len = int(min(self.history_len, math.ceil(self.history_seconds / step) + 2))
            rec.hist_interval = resolution
        self._offline = bytearray(len(site.devices))
        self._heap: list[tuple[float, int]] = []
        self._feeds: dict[str, list[PointState]] = {}
        self.links: dict[str, LinkState] = {}
        self.samples = 0  # good samples applied
        self.bad = 0
        self.out_of_order = 0
        self.unknown = 0  # samples for points the site does not have
        self.stale_on_arrival = 0
        self.stale_by_tick = 0

    # --- feeding ------------------------------------------------------------------

    def set_feed(self, connector: str, points: Iterable[tuple[str, str]] | None) -> None:
        """Tell which (device, point) pairs a connector feeds, so its link going down
        stales only those. Connectors never named here stale every point."""
        if points is None:
            self._feeds.pop(connector, None)
            return
        recs = []
        for device, point in points:
            rec = self._lookup.get(device, {}).get(point)
            if rec is not None:
                recs.append(rec)
        self._feeds[connector] = recs

    def apply(self, events: Iterable[Event]) -> set[int]:
        """Apply a batch of events; returns the indices of devices whose visible state changed."""
        changed: set[int] = set()
        lookup = self._lookup
        offline = self._offline
        for ev in events:
            if type(ev) is not Sample:
                if type(ev) is Availability:
                    self._apply_availability(ev, changed)
                elif type(ev) is LinkState:
                    self._apply_link(ev, changed)
                continue
            recs = lookup.get(ev.device)
            rec = recs.get(ev.point) if recs is not None else None
            if rec is None:
                self.unknown += 1
                continue
            old_value, old_quality, old_alarm = rec.value, rec.quality, rec.alarm
            if ev.error is not None:
                self.bad += 1
                rec.bad += 1
                rec.error = rec.last_error = ev.error
                rec.recv_ts = ev.recv_ts
                if ev.value is not None:
                    rec.value = ev.value
                if not offline[rec.dev]:
                    rec.quality = BAD
            else:
                src = ev.source_ts
                if src is not None and rec.source_ts is not None and src < rec.source_ts:
                    rec.out_of_order += 1
                    self.out_of_order += 1
                    continue
                self.samples += 1
                rec.updates += 1
                value = ev.value
                rec.value = rec.good_value = value
                rec.source_ts = src
                rec.recv_ts = rec.good_recv_ts = ev.recv_ts
                rec.error = None
                rec.note = ""
                rec.alarm = in_alarm(rec.spec, value)
                if offline[rec.dev]:
                    pass  # the device said it is gone; values wait for "online"
                elif src is not None and ev.recv_ts - src > rec.window:
                    rec.quality = STALE
                    rec.note = f"arrived stale: sent {ev.recv_ts - src:.0f} s before it was received"
                    self.stale_on_arrival += 1
                else:
                    rec.quality = GOOD
                    rec.deadline = ev.recv_ts + rec.window
                    if not rec.armed:
                        rec.armed = True
                        heapq.heappush(self._heap, (rec.deadline, rec.index))
                hv = _history_value(rec.spec, value)  # type: ignore[arg-type]
                if hv is not None:
                    h = rec.history
                    if h is None:
                        h = rec.history = History(rec.hist_len, rec.hist_interval)
                    h.append(src if src is not None else ev.recv_ts, hv)
            if rec.value != old_value or rec.quality is not old_quality or rec.alarm != old_alarm:
                changed.add(rec.dev)
        return changed

    def _apply_availability(self, ev: Availability, changed: set[int]) -> None:
        i = self._index.get(ev.device)
        if i is None:
            self.unknown += 1
            return
        offline = not ev.online
        if bool(self._offline[i]) == offline:
            return
        self._offline[i] = offline
        for rec in self._by_device[i]:
            old = rec.quality
            if offline:
                rec.quality = OFFLINE
                rec.note = "device offline"
            elif old is OFFLINE:
                rec.quality = STALE if rec.good_value is not None else NONE
                rec.note = "device back online, waiting for a fresh value"
            if rec.quality is not old:
                changed.add(i)
        changed.add(i)

    def _apply_link(self, ev: LinkState, changed: set[int]) -> None:
        self.links[ev.connector] = ev
        if ev.state != "down":
            return
        recs = self._feeds.get(ev.connector, self._points)
        note = f"link down ({ev.connector}{': ' + ev.detail if ev.detail else ''})"
        for rec in recs:
            if rec.quality is GOOD:
                rec.quality = STALE
                rec.note = note
                changed.add(rec.dev)

    def tick(self, now: float) -> set[int]:
        """Time-based transitions (GOOD -> STALE after silence). Cost: deadlines that passed."""
        changed: set[int] = set()
        heap = self._heap
        points = self._points
        while heap and heap[0][0] <= now:
            _, i = heapq.heappop(heap)
            rec = points[i]
            if rec.quality is not GOOD:
                rec.armed = False
                continue
            if rec.deadline > now:  # refreshed since it was pushed: re-arm at the real deadline
                heapq.heappush(heap, (rec.deadline, i))
                continue
            rec.armed = False
            rec.quality = STALE
            rec.note = f"silent for more than {rec.window:g} s"
            self.stale_by_tick += 1
            changed.add(rec.dev)
        return changed

    # --- reading ------------------------------------------------------------------

    def index(self, device: int | str) -> int:
        """Device index (site.devices order) for an id or index; KeyError if unknown."""
        if isinstance(device, int):
            if not 0 <= device < len(self.devices):
                raise KeyError(device)
            return device
        return self._index[device]

    def point(self, device: int | str, point_id: str) -> PointState:
        """Live state of one point; KeyError if the device or point is unknown."""
        return self._lookup[self.devices[self.index(device)].id][point_id]

    def point_map(self, index: int) -> dict[str, PointState]:
        """point id -> PointState of the device at `index` (fast path for per-frame code)."""
        return self._maps[index]

    def points(self, device: int | str) -> list[PointState]:
        """Every point of a device, in manifest order."""
        return list(self._by_device[self.index(device)])

    def device_quality(self, device: int | str) -> Quality:
        """Worst quality of the device's points (OFFLINE when the device said so)."""
        i = self.index(device)
        if self._offline[i]:
            return OFFLINE
        return max((r.quality for r in self._by_device[i]), default=NONE)

    def device_qualities(self, device: int | str) -> set[Quality]:
        """The set of qualities present among the device's points."""
        i = self.index(device)
        if self._offline[i]:
            return {OFFLINE}
        return {r.quality for r in self._by_device[i]}

    def device_offline(self, device: int | str) -> bool:
        return bool(self._offline[self.index(device)])

    def device_alarm(self, device: int | str) -> bool:
        """True when any point's last good value is outside its alarm band or in an alarm state."""
        return any(r.alarm for r in self._by_device[self.index(device)])

    def history(self, device: int | str, point_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of the point over the last history_seconds; values of bool
        points are 0/1 and of enum points the state index. Empty arrays when none."""
        rec = self.point(device, point_id)
        if rec.history is None:
            return np.empty(0), np.empty(0)
        return rec.history.arrays(since=rec.history.last_t - self.history_seconds)

    @property
    def counters(self) -> dict[str, int]:
        return {
            "samples": self.samples,
            "bad": self.bad,
            "out_of_order": self.out_of_order,
            "unknown": self.unknown,
            "stale_on_arrival": self.stale_on_arrival,
            "stale_by_tick": self.stale_by_tick,
        }

    def quality_counts(self) -> dict[str, int]:
        """How many points are in each quality (for a status panel; walks every point)."""
        counts = {q.label: 0 for q in Quality}
        for rec in self._points:
            counts[(OFFLINE if self._offline[rec.dev] else rec.quality).label] += 1
        return counts

    def history_bytes(self) -> int:
        return sum(r.history.nbytes for r in self._points if r.history is not None)

    def snapshot(self) -> tuple:
        """Everything visible about every point, as comparable plain data (tests, replay checks)."""
        return tuple(
            (r.device, r.point, r.value, int(r.quality), r.source_ts, r.recv_ts, r.error, r.alarm, r.out_of_order)
            for r in self._points
        )
