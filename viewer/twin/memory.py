"""The twin remembers: a recorder subscribed to the runtime, and the twin as it was at any past instant.

StoreRecorder writes every good sample the runtime applies (with its own
time) and every change of quality that came without one (silence, a link
down, a device offline, a bad payload) into a history store
(twinview.history). PastTwin is a second runtime, with no connector and no
command transport, whose clock is the timeline's cursor: seek(t) loads the
store's state at t into its columns and redraws everything; play() moves the
cursor and applies the samples recorded in between. Views show a PastTwin the
way they show the live runtime, and say that it is the past.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twinview.site.manifest import Site

from .clock import ManualClock
from .events import DevicesChanged, SamplesApplied
from .runtime import Runtime
from .vocabulary import Quality

GOOD = int(Quality.GOOD)


def point_names(site: Site) -> list[str]:
    """The stable name of every point, in the runtime's row order ('device/point')."""
    return [f"{d.id}/{p.id}" for d in site.devices for p in d.points]


class StoreRecorder:
    """Records a runtime into a history store: samples as they are applied, qualities as they change."""

    def __init__(self, runtime: Runtime, store: Any):
        self.runtime = runtime
        self.store = store
        self.ids = np.asarray(store.ids(point_names(runtime.site)), np.int32)
        self.recorded = 0
        self.errors = 0
        self.last_error = ""
        runtime.events.subscribe(SamplesApplied, self._on_samples, owner=self)
        runtime.events.subscribe(DevicesChanged, self._on_changed, owner=self)

    def _on_samples(self, event: SamplesApplied) -> None:
        quality = self.runtime.state.quality[event.rows]
        self._append(event.rows, event.times, event.values, quality)

    def _on_changed(self, event: DevicesChanged) -> None:
        """Quality changes that came without a good sample (they are in no SamplesApplied)."""
        rows = event.points
        if not rows.size:
            return
        state = self.runtime.state
        quality = state.shown_quality()[rows]
        changed = quality != GOOD
        if not changed.any():
            return
        rows = rows[changed]
        self._append(rows, np.full(rows.size, event.now), state.value[rows], quality[changed])

    def _append(self, rows: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray) -> None:
        try:
            self.store.append(self.ids[rows], t, v, q)
            self.recorded += int(rows.size)
        except Exception as exc:  # a full disk must not stop the twin: counted, shown, logged
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.runtime.events.release(self)


class PastTwin:
    """The twin at a past instant, from a history store; its runtime never reaches a device."""

    def __init__(self, site: Site, store: Any):
        self.store = store
        self.clock = ManualClock(0.0)
        self.runtime = Runtime(site, self.clock)
        self.runtime.mode = "past"
        names = point_names(site)
        ids = np.asarray(store.ids(names, create=False) if _has_create(store) else store.ids(names), np.int64)
        self._row_of_id = np.full(int(ids.max()) + 1 if ids.size else 0, -1, np.int64)
        known = ids >= 0
        self._row_of_id[ids[known]] = np.flatnonzero(known)
        self.at = math.nan
        self.speed = 0.0

    def span(self) -> tuple[float, float] | None:
        """(first, last) recorded time, or None for an empty store."""
        latest = self.store.latest()
        if not len(latest):
            return None
        first = getattr(self.store, "first_time", None)
        start = first() if callable(first) else float(latest.t.min())
        return float(start), float(latest.t.max())

    def seek(self, at: float) -> None:
        """Show the twin as it was at `at`: every point's last recorded value and quality then."""
        past = self.store.state_at(at)
        rows, keep = self._rows(past.ids)
        state = self.runtime.state
        state.value[:] = np.nan
        state.good[:] = np.nan
        state.quality[:] = int(Quality.NONE)
        state.source_ts[:] = np.nan
        state.recv_ts[:] = np.nan
        state.good_recv_ts[:] = np.nan
        state.offline[:] = False
        state.errors.clear()
        state.notes.clear()
        state.clear_history()
        self._load(rows, past.t[keep], past.v[keep], past.q[keep])
        self.at = float(at)
        self.clock.set(at)
        self.runtime.reset()

    def advance(self, seconds: float) -> np.ndarray:
        """Move the cursor forward and apply what was recorded in between (playback); returns changed devices."""
        if not seconds > 0 or math.isnan(self.at):
            return np.empty(0, np.int64)
        t0, t1 = self.at, self.at + seconds
        pid, t, v, q = self.store.samples(t0, t1)
        rows, keep = self._rows(pid)
        self._load(rows, t[keep], v[keep], q[keep])
        self.at = t1
        self.clock.set(t1)
        devices = np.unique(self.runtime.state.table.device[rows]).astype(np.int64)
        if devices.size:
            motions = self.runtime.looks.evaluate(devices)
            self.runtime.events.publish(DevicesChanged(t1, devices, np.unique(rows), motions))
        return devices

    def event_near(self, at: float, forward: bool, horizon: float = 86400.0, step: float = 3600.0) -> float | None:
        """When the nearest recorded event after (or before) `at` happened: a point of this site turning
        stale, bad or offline. Looks an hour at a time, up to `horizon`; None when there is none."""
        reach = 0.0
        while reach < horizon:
            t0, t1 = (at + reach, at + reach + step) if forward else (at - reach - step, at - reach)
            pid, t, _, q = self.store.samples(t0, t1)
            rows, keep = self._rows(pid)
            times = t[keep][q[keep] != GOOD]
            times = times[times > at + 1e-3] if forward else times[times < at - 1e-3]
            if times.size:
                return float(times.min() if forward else times.max())
            reach += step
        return None

    def _rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64)
        inside = ids < self._row_of_id.size
        rows = np.full(ids.size, -1, np.int64)
        rows[inside] = self._row_of_id[ids[inside]]
        keep = rows >= 0
        return rows[keep], keep

    def _load(self, rows: np.ndarray, t: np.ndarray, v: np.ndarray, q: np.ndarray) -> None:
        """Write recorded samples into the columns, in time order (the last one of a point wins)."""
        if not rows.size:
            return
        state = self.runtime.state
        table = state.table
        state.value[rows] = v
        good = q == GOOD
        state.good[rows[good]] = v[good]
        state.quality[rows] = q
        state.source_ts[rows] = t
        state.recv_ts[rows] = t
        state.good_recv_ts[rows[good]] = t[good]
        state.alarm[rows] = np.where(
            table.kind[rows] == 0,
            (v < table.alarm_lo[rows]) | (v > table.alarm_hi[rows]),
            (table.alarm_states[rows] >> np.nan_to_num(v, nan=63).clip(0, 63).astype(np.uint64)) & np.uint64(1) > 0,
        )
        offline_rows = rows[q == int(Quality.OFFLINE)]
        devices = np.unique(table.device[rows])
        state.offline[devices] = False
        state.offline[table.device[offline_rows]] = True
        state._record_history(rows[good], t[good], v[good])


def _has_create(store: Any) -> bool:
    import inspect

    try:
        return "create" in inspect.signature(store.ids).parameters
    except (TypeError, ValueError):
        return False
