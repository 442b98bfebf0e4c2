"""The twin's state: value, quality, times and alarm of every point, as numpy columns.

Written only by the runtime, on its thread (twinview.twin.runtime): apply a
batch, tick the clock, read what changed. The cost of a batch follows the number
of samples in it; nothing walks the whole site per frame. Readers get
`PointView`s, plain snapshots built on demand.

Quality rules (docs/telemetry.md):
- a good sample makes its point GOOD, unless the device is offline (stays OFFLINE)
  or the sample's own timestamp is already older than period * stale_factor
  (STALE, "arrived stale");
- a bad sample makes its point BAD (value kept for display when it decoded but
  was out of range) until a good sample arrives;
- a GOOD point silent for longer than period * stale_factor becomes STALE (tick);
- a link going down makes STALE the GOOD points that link delivered, and no others;
- Availability offline makes every point of the device OFFLINE; back online they
  become STALE (NONE if never received) until fresh values arrive;
- a sample whose source timestamp is older than the point's latest one is counted
  as out of order and not applied;
- a source timestamp ahead of the receive time is clock skew: the receive time is
  used instead and it is counted (clock_skew), so that no timestamp from the future
  can make later readings look out of order.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from twinview.site.manifest import Device, PointSpec, Site

from .points import KIND_NUMBER, PointTable
from .samples import Availability, LinkState, Sample, SampleBatch
from .vocabulary import Quality

GOOD, NONE, STALE, BAD, OFFLINE = (int(q) for q in Quality)
HISTORY_BUDGET_BYTES = 64 * 1024 * 1024
MAX_HISTORY_LEN = 2048
STALE_RESOLUTION = 0.25  # seconds: silence is checked at most this often (a vectorised pass)
NO_CONNECTOR = -1


class PointView:
    """One point of the twin, read through to its columns (always current; cheap to make)."""

    __slots__ = ("_s", "index", "dev", "spec", "device", "point")

    def __init__(self, state: "TwinState", row: int):
        self._s = state
        self.index = row
        self.dev = int(state.table.device[row])
        self.spec: PointSpec = state.table.specs[row]
        self.device: str = state.devices[self.dev].id
        self.point: str = self.spec.id

    @property
    def value(self) -> float | bool | str | None:
        """The shown value (a bad one that decoded stays visible)."""
        return self._s.table.from_float(self.index, self._s.value[self.index])

    @property
    def good_value(self) -> float | bool | str | None:
        return self._s.table.from_float(self.index, self._s.good[self.index])

    @property
    def quality(self) -> Quality:
        if self._s.offline[self.dev]:
            return Quality.OFFLINE
        return Quality(int(self._s.quality[self.index]))

    @property
    def source_ts(self) -> float | None:
        return _opt(self._s.source_ts[self.index])

    @property
    def recv_ts(self) -> float | None:
        return _opt(self._s.recv_ts[self.index])

    @property
    def good_recv_ts(self) -> float | None:
        return _opt(self._s.good_recv_ts[self.index])

    @property
    def ts(self) -> float | None:
        """Best known time of the shown value: the device's own, else receive time."""
        src = self.source_ts
        return src if src is not None else self.good_recv_ts

    @property
    def error(self) -> str | None:
        return self._s.errors.get(self.index)

    @property
    def last_error(self) -> str | None:
        return self._s.last_errors.get(self.index)

    @property
    def note(self) -> str:
        return self._s.notes.get(self.index, "")

    @property
    def alarm(self) -> bool:
        return bool(self._s.alarm[self.index])

    @property
    def updates(self) -> int:
        return int(self._s.updates[self.index])

    @property
    def bad(self) -> int:
        return int(self._s.bad_count[self.index])

    @property
    def out_of_order(self) -> int:
        return int(self._s.ooo_count[self.index])

    def as_dict(self) -> dict:
        return {
            "device": self.device, "point": self.point, "value": self.value, "good_value": self.good_value,
            "quality": self.quality.label, "source_ts": self.source_ts, "recv_ts": self.recv_ts,
            "error": self.error, "last_error": self.last_error, "note": self.note, "alarm": self.alarm,
            "updates": self.updates, "bad": self.bad, "out_of_order": self.out_of_order,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"PointView({self.device}.{self.point}={self.value!r} {self.quality.label})"


def _opt(x: float) -> float | None:
    return None if x != x else float(x)


class TwinState:
    """Latest value, quality, alarm and short history of every point of a site, column-wise."""

    def __init__(
        self,
        site: Site,
        history_seconds: float = 600.0,
        history_len: int | None = None,
        history_budget_bytes: int = HISTORY_BUDGET_BYTES,
    ):
        self.site = site
        self.table = table = PointTable(site)
        self.devices: tuple[Device, ...] = site.devices
        n = len(table)
        self.value = np.full(n, np.nan)  # shown value (a bad one that decoded stays visible)
        self.good = np.full(n, np.nan)  # last good value
        self.quality = np.full(n, NONE, np.uint8)
        self.source_ts = np.full(n, np.nan)
        self.recv_ts = np.full(n, np.nan)
        self.good_recv_ts = np.full(n, np.nan)
        self.deadline = np.full(n, np.inf)
        self.alarm = np.zeros(n, bool)
        self.updates = np.zeros(n, np.int64)
        self.bad_count = np.zeros(n, np.int64)
        self.ooo_count = np.zeros(n, np.int64)
        self.source = np.full(n, NO_CONNECTOR, np.int16)  # which connector delivered the point last
        self.offline = np.zeros(len(site.devices), bool)
        self.errors: dict[int, str] = {}  # point -> why it is BAD (only BAD points)
        self.last_errors: dict[int, str] = {}
        self.notes: dict[int, str] = {}  # point -> why it is STALE / odd (sparse)
        self._scratch = np.full(n, -1, np.int64)
        self._best = np.full(n, -np.inf)
        self._best_at = np.full(n, -1, np.int64)
        self._applied: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, values, times) since the last take
        self._min_deadline = math.inf  # a lower bound of every GOOD point's deadline
        self._bound_exact = True  # the bound is some point's deadline (it has not moved since the last scan)
        self._last_scan = -math.inf
        self.connectors: list[str] = []  # connector id -> name
        self.links: dict[str, LinkState] = {}
        self.samples = 0  # good samples applied
        self.bad = 0
        self.out_of_order = 0
        self.clock_skew = 0  # samples whose source time was ahead of their receive time (clamped)
        self.unknown = 0  # samples for points the site does not have
        self.stale_on_arrival = 0
        self.stale_by_tick = 0
        # Short in-memory history for charts: one ring of (time, value) per point.
        self.history_seconds = float(history_seconds)
        if history_len is None:
            history_len = int(min(MAX_HISTORY_LEN, max(16, history_budget_bytes // (16 * max(1, n)))))
        self.history_len = int(history_len)
        self._hist_interval = self.history_seconds / self.history_len
        self._hist_t: np.ndarray | None = None  # (history_len, points), made at the first value
        self._hist_v: np.ndarray | None = None
        self._hist_n = np.zeros(n, np.int64)  # entries written so far (ring position = n % len)
        self._hist_bucket = np.full(n, -np.inf)
        self.scans = 0  # vectorised silence checks run (tick's cost)

    # --- feeding (the runtime's thread only) ------------------------------------------

    def connector_id(self, name: str) -> int:
        """A small integer for a connector, used to know which points each link delivered."""
        if name not in self.connectors:
            self.connectors.append(name)
        return self.connectors.index(name)

    def apply(self, events: Iterable, connector: str = "") -> np.ndarray:
        """Apply events in order; returns the rows of points whose visible state changed."""
        cid = self.connector_id(connector) if connector else NO_CONNECTOR
        changed: list[np.ndarray] = []
        pending: list[Sample] = []
        for ev in events:
            kind = type(ev)
            if kind is Sample:
                pending.append(ev)
                continue
            if pending:
                changed.append(self._apply_samples(pending, cid))
                pending = []
            if kind is SampleBatch:
                changed.append(self.apply_batch(ev.points, ev.values, ev.recv_ts, ev.source_ts, cid))
            elif kind is Availability:
                changed.append(self._apply_availability(ev))
            elif kind is LinkState:
                changed.append(self._apply_link(ev, connector))
        if pending:
            changed.append(self._apply_samples(pending, cid))
        if not changed:
            return np.empty(0, np.int64)
        return changed[0] if len(changed) == 1 else np.concatenate(changed)

    def _apply_samples(self, samples: list[Sample], cid: int) -> np.ndarray:
        """Good samples go through the vectorised path; bad ones are few and go one by one."""
        index = self.table.index
        to_float = self.table.to_float
        rows: list[int] = []
        values: list[float] = []
        recv: list[float] = []
        src: list[float] = []
        bad_rows: list[int] = []
        nan = math.nan
        for s in samples:
            row = index(s.device, s.point)
            if row is None:
                self.unknown += 1
                continue
            if s.error is not None:
                if rows:  # keep order: what came before the bad sample is applied first
                    bad_rows.extend(self._flush(rows, values, recv, src, cid))
                    rows, values, recv, src = [], [], [], []
                self._apply_bad(row, s)
                bad_rows.append(row)
                continue
            rows.append(row)
            values.append(to_float(row, s.value))
            recv.append(s.recv_ts)
            src.append(nan if s.source_ts is None else s.source_ts)
        out = self._flush(rows, values, recv, src, cid) if rows else np.empty(0, np.int64)
        if bad_rows:
            out = np.concatenate([out, np.asarray(bad_rows, np.int64)])
        return out

    def _flush(self, rows: list, values: list, recv: list, src: list, cid: int) -> np.ndarray:
        return self.apply_batch(
            np.asarray(rows, np.int64), np.asarray(values, np.float64),
            np.asarray(recv, np.float64), np.asarray(src, np.float64), cid,
        )  # fmt: skip

    def apply_batch(
        self, rows: np.ndarray, values: np.ndarray, recv: np.ndarray, src: np.ndarray, cid: int = NO_CONNECTOR
    ) -> np.ndarray:
        """Apply good samples given as columns; returns the rows whose visible state changed."""
        rows = np.asarray(rows, np.int64)
        if not rows.size:
            return rows
        values = np.asarray(values, np.float64)
        recv = np.broadcast_to(np.asarray(recv, np.float64), rows.shape)
        src = np.broadcast_to(np.asarray(src, np.float64), rows.shape)
        # Clock skew: never trust a time after the sample arrived; it would block every later reading.
        ahead = src > recv  # NaN source time: False
        if ahead.any():
            self.clock_skew += int(ahead.sum())
            src = np.where(ahead, recv, src)
        # Each sample's time: the device's own, else its arrival. Out of order: older than what the
        # point already shows, or than a newer sample of the same point earlier in this batch.
        when = np.where(np.isnan(src), recv, src)
        late = src < self.source_ts[rows]  # NaN on either side compares False
        order = np.arange(rows.size)
        scratch = self._scratch
        if rows.size > 1:
            best, at = self._best, self._best_at  # reusable marks, reset below: no per-batch O(site) work
            if rows.size * 8 < self.table.size:  # few rows: one sorted pass
                by = np.lexsort((order, when, rows))
                r = rows[by]
                pick = by[np.r_[r[1:] != r[:-1], True]]  # per point the newest, the last arrival among equals
            else:
                np.maximum.at(best, rows, when)
                ties = when == best[rows]
                scratch[rows[ties]] = order[ties]
                pick = np.unique(scratch[rows[ties]])
                scratch[rows] = -1
            chosen = np.zeros(rows.size, bool)
            chosen[pick] = True
            best[rows[pick]] = when[pick]
            at[rows[pick]] = pick
            late |= (when < best[rows]) & (order > at[rows])  # arrived after a newer one of its point
            best[rows] = -np.inf
            at[rows] = -1
        else:
            chosen = np.ones(1, bool)
        if late.any():
            n_late = int(late.sum())
            self.out_of_order += n_late
            np.add.at(self.ooo_count, rows[late], 1)
        applied = ~late
        self._applied.append((rows[applied], values[applied], when[applied]))  # in order: what SamplesApplied reports
        superseded = applied & ~chosen  # applied, then replaced by a newer one in this batch
        if superseded.any():
            self.samples += int(superseded.sum())
            np.add.at(self.updates, rows[superseded], 1)
        keep = chosen & applied
        rows, values, recv, src = rows[keep], values[keep], recv[keep], src[keep]
        if not rows.size:
            return rows
        t = self.table
        self.samples += int(rows.size)
        old_value = self.good[rows]
        old_quality = self.quality[rows]
        old_alarm = self.alarm[rows]
        old_shown = self.value[rows]
        self.value[rows] = values
        self.good[rows] = values
        self.source_ts[rows] = src
        self.recv_ts[rows] = recv
        self.good_recv_ts[rows] = recv
        self.updates[rows] += 1
        if cid != NO_CONNECTOR:
            self.source[rows] = cid
        kind = t.kind[rows]
        numeric = kind == KIND_NUMBER
        alarm = np.where(
            numeric,
            (values < t.alarm_lo[rows]) | (values > t.alarm_hi[rows]),
            (t.alarm_states[rows] >> np.nan_to_num(values, nan=63).clip(0, 63).astype(np.uint64)) & np.uint64(1) > 0,
        )
        self.alarm[rows] = alarm
        offline = self.offline[t.device[rows]]
        window = t.window[rows]
        stale_arrival = (recv - src) > window  # NaN source time: False
        quality = np.where(offline, OFFLINE, np.where(stale_arrival, STALE, GOOD)).astype(np.uint8)
        self.quality[rows] = quality
        good = quality == GOOD
        deadline = recv + window
        old_deadline = self.deadline[rows]
        if self._bound_exact and (old_deadline <= self._min_deadline).any():
            self._bound_exact = False  # the point that set the bound was refreshed: it is only a lower bound now
        self.deadline[rows] = np.where(good, deadline, np.inf)
        if good.any():
            self._min_deadline = min(self._min_deadline, float(deadline[good].min()))
        if self.errors:
            for r in rows[old_quality == BAD].tolist():
                self.errors.pop(r, None)
        if self.notes:
            for r in rows.tolist():
                self.notes.pop(r, None)
        if stale_arrival.any():
            n = int((stale_arrival & ~offline).sum())
            self.stale_on_arrival += n
            for r, age in zip(rows[stale_arrival & ~offline].tolist(), (recv - src)[stale_arrival & ~offline].tolist()):
                self.notes[r] = f"arrived stale: sent {age:.0f} s before it was received"
        self._record_history(rows, np.where(np.isnan(src), recv, src), values)
        changed = (old_shown != values) | (old_value != values) | (old_quality != quality) | (old_alarm != alarm)
        return rows[changed]

    def take_applied(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(rows, values, times) of every good sample applied since the last call, in order; None if none."""
        if not self._applied:
            return None
        parts, self._applied = self._applied, []
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(c) for c in zip(*parts))  # type: ignore[return-value]

    def _apply_bad(self, row: int, s: Sample) -> None:
        self.bad += 1
        self.bad_count[row] += 1
        self.errors[row] = self.last_errors[row] = s.error or "bad"
        self.recv_ts[row] = s.recv_ts
        if s.value is not None:
            self.value[row] = self.table.to_float(row, s.value)
        if not self.offline[self.table.device[row]]:
            self.quality[row] = BAD
            self.deadline[row] = math.inf

    def _apply_availability(self, ev: Availability) -> np.ndarray:
        i = self.table.device_index.get(ev.device)
        if i is None:
            self.unknown += 1
            return np.empty(0, np.int64)
        offline = not ev.online
        if bool(self.offline[i]) == offline:
            return np.empty(0, np.int64)
        self.offline[i] = offline
        rows = np.arange(self.table.start[i], self.table.start[i + 1])
        if offline:
            self.quality[rows] = OFFLINE
            self.deadline[rows] = np.inf
            for r in rows.tolist():
                self.notes[r] = "device offline"
        else:
            was = self.quality[rows] == OFFLINE
            back = rows[was]
            self.quality[back] = np.where(np.isnan(self.good[back]), NONE, STALE)
            for r in back.tolist():
                self.notes[r] = "device back online, waiting for a fresh value"
        return rows

    def _apply_link(self, ev: LinkState, connector: str) -> np.ndarray:
        self.links[ev.connector] = ev
        if ev.state != "down":
            return np.empty(0, np.int64)
        name = connector or ev.connector
        if name not in self.connectors:
            return np.empty(0, np.int64)
        cid = self.connectors.index(name)
        rows = np.flatnonzero((self.source == cid) & (self.quality == GOOD))
        self.quality[rows] = STALE
        self.deadline[rows] = np.inf
        note = f"link down ({ev.connector}{': ' + ev.detail if ev.detail else ''})"
        for r in rows.tolist():
            self.notes[r] = note
        return rows

    def tick(self, now: float) -> np.ndarray:
        """Time-based transitions (GOOD -> STALE after silence); returns the rows that went stale.

        A vectorised pass over the deadlines runs only when one has passed, or may
        have (then at most every STALE_RESOLUTION seconds).
        """
        if now < self._min_deadline or (not self._bound_exact and now - self._last_scan < STALE_RESOLUTION):
            return np.empty(0, np.int64)
        self._last_scan = now
        self.scans += 1
        due = np.flatnonzero(self.deadline <= now)
        if due.size:
            self.quality[due] = STALE
            self.deadline[due] = np.inf
            self.stale_by_tick += int(due.size)
            window = self.table.window
            for r in due.tolist():
                self.notes[r] = f"silent for more than {window[r]:g} s"
        finite = self.deadline[np.isfinite(self.deadline)]
        self._min_deadline = float(finite.min()) if finite.size else math.inf
        self._bound_exact = True
        return due

    def _record_history(self, rows: np.ndarray, t: np.ndarray, v: np.ndarray) -> None:
        """Append to each point's ring; within one chart-resolution bucket the newest sample replaces the last."""
        if self._hist_t is None:  # slot-major: one frame's writes land close together
            self._hist_t = np.zeros((self.history_len, len(self.table)))
            self._hist_v = np.zeros((self.history_len, len(self.table)))
        n = self._hist_n[rows]
        new_bucket = (n == 0) | (t - self._hist_bucket[rows] >= self._hist_interval)
        self._hist_bucket[rows] = np.where(new_bucket, t, self._hist_bucket[rows])
        n = n + new_bucket
        self._hist_n[rows] = n
        slot = (n - 1) % self.history_len
        self._hist_t[slot, rows] = t
        self._hist_v[slot, rows] = v  # type: ignore[index]

    def clear_history(self) -> None:
        self._hist_n[:] = 0
        self._hist_bucket[:] = -np.inf

    # --- reading ------------------------------------------------------------------------

    def index(self, device: int | str) -> int:
        """Device index (site.devices order) for an id or index; KeyError if unknown."""
        if isinstance(device, (int, np.integer)):
            if not 0 <= device < len(self.devices):
                raise KeyError(device)
            return int(device)
        return self.table.device_index[device]

    def row(self, device: int | str, point_id: str) -> int:
        """Row of one point; KeyError if the device or point is unknown."""
        return self.table.of_device(self.index(device))[point_id]

    def view(self, row: int) -> PointView:
        """The point at `row`, read through to the columns."""
        return PointView(self, row)

    def point(self, device: int | str, point_id: str) -> PointView:
        """Live state of one point; KeyError if the device or point is unknown."""
        return self.view(self.row(device, point_id))

    def points(self, device: int | str) -> list[PointView]:
        """Every point of a device, in manifest order."""
        i = self.index(device)
        return [self.view(r) for r in range(int(self.table.start[i]), int(self.table.start[i + 1]))]

    def point_map(self, index: int) -> dict[str, PointView]:
        """point id -> PointView of the device at `index`."""
        return {p.point: p for p in self.points(index)}

    def device_quality(self, device: int | str) -> Quality:
        """Worst quality of the device's points (OFFLINE when the device said so)."""
        i = self.index(device)
        if self.offline[i]:
            return Quality.OFFLINE
        q = self.quality[self.table.start[i] : self.table.start[i + 1]]
        return Quality(int(q.max())) if q.size else Quality.NONE

    def device_qualities(self, device: int | str) -> set[Quality]:
        """The set of qualities present among the device's points."""
        i = self.index(device)
        if self.offline[i]:
            return {Quality.OFFLINE}
        return {Quality(int(q)) for q in np.unique(self.quality[self.table.start[i] : self.table.start[i + 1]])}

    def device_offline(self, device: int | str) -> bool:
        return bool(self.offline[self.index(device)])

    def device_alarm(self, device: int | str) -> bool:
        """True when any point's last good value is outside its alarm band or in an alarm state."""
        i = self.index(device)
        return bool(self.alarm[self.table.start[i] : self.table.start[i + 1]].any())

    def history(self, device: int | str, point_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of the point over the last history_seconds, oldest first; values of
        bool points are 0/1 and of enum points the state index. Empty arrays when none."""
        row = self.row(device, point_id)
        n = int(self._hist_n[row])
        if n == 0 or self._hist_t is None or self._hist_v is None:
            return np.empty(0), np.empty(0)
        size = self.history_len
        idx = (np.arange(max(0, n - size), n)) % size
        t, v = self._hist_t[idx, row], self._hist_v[idx, row]
        keep = t >= t[-1] - self.history_seconds
        return t[keep].copy(), v[keep].copy()

    @property
    def counters(self) -> dict[str, int]:
        return {
            "samples": self.samples,
            "bad": self.bad,
            "out_of_order": self.out_of_order,
            "clock_skew": self.clock_skew,
            "unknown": self.unknown,
            "stale_on_arrival": self.stale_on_arrival,
            "stale_by_tick": self.stale_by_tick,
        }

    def shown_quality(self) -> np.ndarray:
        """Every point's quality as shown: OFFLINE for every point of an offline device."""
        return np.where(self.offline[self.table.device], OFFLINE, self.quality).astype(np.uint8)

    def quality_counts(self) -> dict[str, int]:
        """How many points are in each quality, by the quality's word ('good', 'no data', ...)."""
        counts = np.bincount(self.shown_quality(), minlength=len(Quality))
        return {q.label: int(counts[q]) for q in Quality}

    def history_bytes(self) -> int:
        """Bytes reserved for charts (zero until the first value; pages untouched by the OS cost nothing)."""
        return 0 if self._hist_t is None or self._hist_v is None else int(self._hist_t.nbytes + self._hist_v.nbytes)

    def snapshot(self) -> tuple:
        """Everything visible about every point, as comparable plain data (tests, replay checks)."""
        return tuple(
            (p.device, p.point, p.value, int(p.quality), p.source_ts, p.recv_ts, p.error, p.alarm, p.out_of_order)
            for p in (self.view(r) for r in range(len(self.table)))
        )
