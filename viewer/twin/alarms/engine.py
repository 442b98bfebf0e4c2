"""The alarm engine: an evaluator of the runtime that runs the ISA-18.2 lifecycle of every alarm.

Each step the runtime hands it the point rows that changed. The rules that
watch those rows are found through a row -> rules index and their conditions
are computed as numpy expressions per kind (limits with hysteresis, rate of
change, deviation from a setpoint point, discrete states, quality); a changed
condition starts an on- or off-delay timer on the runtime's clock. Timers
(delays, shelve expiry, the end of chattering) are checked against the
earliest deadline only. What moves an alarm's lifecycle is rare, and is done
one alarm at a time: activation, return to normal, acknowledgement, shelving,
suppression by design, out of service, chattering and floods.

    condition (hysteresis) --on_delay--> active --off_delay--> returned
    lifecycle: normal -> unacknowledged -> acknowledged -> normal
                                       \\-> returned_unacknowledged -> normal
    shown over it: out_of_service > shelved > suppressed

Persistence goes through an AlarmStore (store.py); acknowledging, shelving and
taking out of service need a role and are written to the command audit log.
Every change is published as one AlarmsChanged event per step.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from typing import Any, Iterable

import numpy as np

from ..events import AlarmsChanged, CommandChanged
from ..interlock import Interlock
from ..state import GOOD, NONE, OFFLINE, STALE, BAD
from ..vocabulary import ALARM_SEVERITY_SHIFT, AlarmState, DeviceFlag
from .rules import COMMAND_ENDS, SEVERITIES, AlarmRule, RuleSet, compile_rules, format_message
from .store import AlarmStore, MemoryStore

log = logging.getLogger("twinview.alarms")

HH, H, L, LL, RATE, DEV, STATE, QUAL, CMD = range(9)
_KIND_CODE = {"high_high": HH, "high": H, "low": L, "low_low": LL, "rate": RATE, "deviation": DEV,
              "state": STATE, "quality": QUAL, "command": CMD}  # fmt: skip
_QUALITY_CODE = {"bad": BAD, "stale": STALE, "offline": OFFLINE, "no data": NONE}
_ALARM = np.uint32(DeviceFlag.ALARM)
_UNACK = np.uint32(DeviceFlag.ALARM_UNACK)
CHATTER_WINDOW = 60.0
TAIL_PERIOD = 1.0  # seconds between looks at the store for other writers' records (the command line's acks)
HISTORY_KEPT = 5000  # journal records kept in memory for the inspector's history
_EMPTY = np.empty(0, np.int64)
_PERSISTED = ("active", "acked", "shelved_until", "shelve_reason", "shelved_by", "suppressed", "oos", "oos_reason",
              "chattering", "activated_at", "cleared_at", "acked_at", "acked_by", "activations", "value", "message",
              "changed_at", "first_out")  # fmt: skip


# What each operator action changes: its journal record carries only these, so that the command
# line's action, appended while a viewer runs, never overwrites what that viewer evaluated.
ACTION_FIELDS = {
    "acked": ("acked", "acked_at", "acked_by"),
    "shelved": ("shelved_until", "shelve_reason", "shelved_by"),
    "unshelved": ("shelved_until", "acked"),
    "out_of_service": ("oos", "oos_reason"),
    "in_service": ("oos", "oos_reason", "acked"),
}


class AlarmError(Exception):
    """An alarm action that is not possible (unknown alarm, bad duration); the message is safe to show."""


class AlarmEngine:
    """Every alarm of one runtime's site: conditions, timers, lifecycle, persistence, events."""

    def __init__(self, runtime: Any, store: AlarmStore | None = None, audit: Any = None, rules: RuleSet | None = None):
        self.runtime = runtime
        state = runtime.state
        table = state.table
        self.state = state
        ruleset = rules if rules is not None else compile_rules(runtime.site)
        self.settings = ruleset.settings
        self.problems = ruleset.problems
        dev_index = table.device_index
        known = [r for r in ruleset.rules if r.device in dev_index]
        self.rules: list[AlarmRule] = sorted(known, key=lambda r: dev_index[r.device])  # a device's rules are contiguous
        rules_ = self.rules
        n = len(rules_)
        self.ids = [r.id for r in rules_]
        self.index = {aid: k for k, aid in enumerate(self.ids)}
        self.device = np.asarray([dev_index[r.device] for r in rules_], np.int64)
        self.dev_start = np.searchsorted(self.device, np.arange(len(runtime.site.devices) + 1))
        self.row = np.asarray([_row(table, r.device, r.point) for r in rules_], np.int64)
        self.sp_row = np.asarray([_row(table, r.device, r.setpoint) for r in rules_], np.int64)
        self.kind = np.asarray([_KIND_CODE[r.kind] for r in rules_], np.int64)
        self.limit = np.asarray([r.limit for r in rules_], np.float64)
        self.deadband = np.asarray([r.deadband for r in rules_], np.float64)
        self.on_delay = np.asarray([r.on_delay for r in rules_], np.float64)
        self.off_delay = np.asarray([r.off_delay for r in rules_], np.float64)
        self.priority = np.asarray([r.priority for r in rules_], np.int64)
        self.state_mask = np.asarray([_state_mask(r, table) for r in rules_], np.uint64)
        self.quality_mask = np.asarray([sum(1 << _QUALITY_CODE[q] for q in r.qualities) for r in rules_], np.int64)
        self.areas = sorted({r.area for r in rules_})
        # row -> rules that read it (the watched point and a deviation's setpoint)
        rows = np.concatenate([self.row, self.sp_row])
        owners = np.concatenate([np.arange(n), np.arange(n)])
        keep = rows >= 0
        order = np.argsort(rows[keep], kind="stable")
        self._by_row = owners[keep][order]
        self._row_start = np.searchsorted(rows[keep][order], np.arange(len(table) + 1))
        # lifecycle columns
        self.cond = np.zeros(n, bool)  # the condition now (with hysteresis), before delays
        self.active = np.zeros(n, bool)  # the alarm's process state (after on/off delays)
        self.acked = np.ones(n, bool)
        self.suppressed = np.zeros(n, bool)
        self.oos = np.zeros(n, bool)
        self.chattering = np.zeros(n, bool)
        self.first_out = np.zeros(n, bool)
        self.due = np.full(n, np.inf)  # when a pending on/off delay ends
        self.shelved_until = np.zeros(n)  # 0: not shelved
        self.value = np.full(n, np.nan)  # the watched value when last evaluated (rate: the rate)
        self.prev_v = np.full(n, np.nan)
        self.prev_t = np.full(n, np.nan)
        # A rate of change is judged between changes; a value that stops changing has a rate of 0 once
        # the point's period has passed without a change.
        self.quiet_at = np.full(n, np.inf)
        self.period = np.asarray([table.period[r] if r >= 0 else 1.0 for r in self.row.tolist()], np.float64)
        self._min_quiet = math.inf
        self.activated_at = np.full(n, np.nan)
        self.cleared_at = np.full(n, np.nan)
        self.acked_at = np.full(n, np.nan)
        self.changed_at = np.full(n, np.nan)
        self.activations = np.zeros(n, np.int64)
        self.text: dict[int, dict[str, str]] = {}  # sparse: message, acked_by, shelve_reason, shelved_by, oos_reason, value_text
        self._min_due = math.inf
        self._min_shelve = math.inf
        self._chatter_due = math.inf
        self._recent: dict[int, deque] = {}  # activation times in the last minute (alarms that activated)
        self._area_events: dict[str, deque] = {}
        self.floods: dict[str, dict[str, Any]] = {}
        self._suppress = [(k, Interlock.parse(r.suppress_when)) for k, r in enumerate(rules_) if r.suppress_when]
        self._suppress_devices = {int(self.device[k]) for k, _ in self._suppress}
        self._changed: set[int] = set()  # alarms whose public state changed since the last publish
        self._touched: set[int] = set()  # devices whose alarm bits must be recomputed
        self._records: list[dict[str, Any]] = []  # journal records waiting to be written
        self._commands: list[dict[str, Any]] = []
        self.alarm_bits = np.zeros(len(runtime.site.devices), np.uint32)
        self.counters = {"activations": 0, "evaluations": 0, "refused": 0, "audit_errors": 0, "orphans": 0, "external": 0}
        self.store: AlarmStore = store if store is not None else MemoryStore()
        self.audit = audit
        self.log: deque = deque(maxlen=HISTORY_KEPT)
        self._next_tail = -math.inf
        self._restore(self.store.load())
        try:
            self.log.extend(list(self.store.history())[-HISTORY_KEPT:])
        except OSError:
            pass
        self._bits(range(len(runtime.site.devices)))
        self._touched.clear()
        runtime.looks.alarm_bits = self.alarm_bits
        runtime.events.subscribe(CommandChanged, self._on_command, owner=self)

    # --- the runtime's evaluator interface ----------------------------------------------

    def next_due(self) -> float:
        """The earliest time something changes with time alone (a delay, a shelve expiry, chatter's end)."""
        flood = min((f["check"] for f in self.floods.values()), default=math.inf)
        return min(self._min_due, self._min_shelve, self._chatter_due, self._min_quiet, flood)

    def evaluate(self, now: float, rows: np.ndarray) -> np.ndarray:
        """Run inside Runtime.step(): conditions of the rules on `rows`, timers, lifecycle. Returns devices to repaint."""
        if now >= self._next_tail:
            self._next_tail = now + TAIL_PERIOD
            self._apply_external(self.store.tail(), now)
        if rows.size and len(self.rules):
            if self._suppress_devices:  # any changed point of such a device may change its suppression
                devs = np.unique(self.state.table.device[rows]).tolist()
                self._touched_rows_devices = self._suppress_devices.intersection(devs)
            self._conditions(now, rows)
        if self._commands:
            self._command_conditions(now)
        if self._suppress and self._touched_rows_devices:
            self._suppression(now)
        if now >= self.next_due():
            self._timers(now)
        if self._records:
            records, self._records = self._records, []
            self.store.append(records)
            self.log.extend(records)
            if getattr(self.store, "wants_snapshot", False):
                self._apply_external(self.store.tail(), now)  # the snapshot must hold what others appended
                self.store.snapshot(self.snapshot())
        if not (self._changed or self._touched):
            return _EMPTY
        devices = self._bits(self._touched | {int(self.device[k]) for k in self._changed})
        self._touched.clear()
        changed, self._changed = sorted(self._changed), set()
        if changed:
            self.runtime.events.publish(AlarmsChanged(now, tuple(self.describe(k, now) for k in changed), self.flood_list()))
        return devices

    _touched_rows_devices: set[int] = set()

    # --- conditions -----------------------------------------------------------------------

    def _conditions(self, now: float, rows: np.ndarray) -> None:
        start, end = self._row_start[rows], self._row_start[rows + 1]
        counts = end - start
        if not counts.any():
            return
        offsets = np.repeat(start - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        k = np.unique(self._by_row[np.arange(int(counts.sum())) + offsets])
        self.counters["evaluations"] += int(k.size)
        st = self.state
        kind = self.kind[k]
        row = np.maximum(self.row[k], 0)
        q = np.where(st.offline[st.table.device[row]], OFFLINE, st.quality[row]).astype(np.int64)
        v = st.value[row]
        good = q == GOOD
        old = self.cond[k]
        new = old.copy()
        lim, db = self.limit[k], self.deadband[k]
        shown = v.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            m = good & ((kind == HH) | (kind == H))
            new[m] = np.where(old[m], v[m] > lim[m] - db[m], v[m] > lim[m])
            m = good & ((kind == LL) | (kind == L))
            new[m] = np.where(old[m], v[m] < lim[m] + db[m], v[m] < lim[m])
            m = kind == DEV
            if m.any():
                sp_row = np.maximum(self.sp_row[k], 0)
                sp_good = (st.quality[sp_row] == GOOD) & ~st.offline[st.table.device[sp_row]]
                d = np.abs(v - st.value[sp_row])
                m &= good & sp_good
                new[m] = np.where(old[m], d[m] > lim[m] - db[m], d[m] > lim[m])
            m = good & (kind == RATE)
            if m.any():
                km = k[m]
                src = st.source_ts[row[m]]
                t = np.where(np.isnan(src), st.recv_ts[row[m]], src)
                pv, pt = self.prev_v[km], self.prev_t[km]
                dt = t - pt
                fresh = ~(dt <= 0)  # NaN (first sample) counts as fresh
                rate = np.abs(v[m] - pv) / dt
                valid = fresh & np.isfinite(rate)
                o = old[m]
                rnew = np.where(valid, np.where(o, rate > lim[m] - db[m], rate > lim[m]), o)
                new[m] = rnew
                shown[m] = np.where(valid, rate, np.nan)
                self.prev_v[km[fresh]] = v[m][fresh]
                self.prev_t[km[fresh]] = t[fresh]
                quiet = np.where(rnew, now + np.maximum(self.period[km], 1.0), np.inf)
                self.quiet_at[km] = quiet
                if quiet.size:
                    self._min_quiet = min(self._min_quiet, float(quiet.min()))
            m = good & (kind == STATE)
            if m.any():
                idx = np.nan_to_num(v[m], nan=63).clip(0, 63).astype(np.uint64)
                new[m] = (self.state_mask[k[m]] >> idx) & np.uint64(1) > 0
            m = kind == QUAL
            if m.any():
                new[m] = (self.quality_mask[k[m]] >> q[m]) & 1 > 0
                shown[m] = q[m]
        evaluated = good | (kind == QUAL)
        self.value[k[evaluated]] = shown[evaluated]
        flip = new != old
        if flip.any():
            kf = k[flip]
            self.cond[kf] = new[flip]
            self._schedule(kf, now)

    def _command_conditions(self, now: float) -> None:
        commands, self._commands = self._commands, []
        dev_index = self.state.table.device_index
        for c in commands:
            d = dev_index.get(c.get("device", ""))
            if d is None:
                continue
            for k in range(int(self.dev_start[d]), int(self.dev_start[d + 1])):
                if self.kind[k] != CMD:
                    continue
                watched = self.rules[k].commands
                if watched and c.get("command") not in watched:
                    continue
                state = c.get("state")
                if state in COMMAND_ENDS:
                    on = True
                    self.text.setdefault(k, {})["value_text"] = f"{c.get('command')} {str(state).replace('_', ' ')}"
                elif state == "confirmed":
                    on = False
                else:
                    continue
                if bool(self.cond[k]) != on:
                    self.cond[k] = on
                    self._schedule(np.asarray([k]), now)

    def _on_command(self, event: CommandChanged) -> None:
        self._commands.append(event.command)

    def _schedule(self, ks: np.ndarray, now: float) -> None:
        c = self.cond[ks]
        delay = np.where(c, self.on_delay[ks], self.off_delay[ks])
        due = np.where(c != self.active[ks], now + delay, np.inf)
        self.due[ks] = due
        if due.size:
            self._min_due = min(self._min_due, float(due.min()))

    def _suppression(self, now: float) -> None:
        devices, self._touched_rows_devices = self._touched_rows_devices, set()
        st = self.state
        for k, lock in self._suppress:
            d = int(self.device[k])
            if d not in devices:
                continue
            rows = st.table.of_device(d)

            def read(point: str, rows: dict = rows) -> tuple[Any, str] | None:
                row = rows.get(point)
                if row is None:
                    return None
                view = st.view(row)
                return view.value, view.quality.label

            verdict = lock.evaluate(read)
            if verdict.unknown:  # a point of the condition is not current: the suppression stays as it was
                continue
            on = bool(verdict)
            if on != bool(self.suppressed[k]):
                self.suppressed[k] = on
                if not on and not self.active[k]:
                    self.acked[k] = True  # what cleared while hidden needs no acknowledgement
                self._event(k, "suppressed" if on else "unsuppressed", now, reason=lock.text)

    # --- time ---------------------------------------------------------------------------

    def _timers(self, now: float) -> None:
        if now >= self._min_quiet:
            quiet = np.flatnonzero(self.quiet_at <= now)
            self.quiet_at[quiet] = np.inf
            steady = quiet[self.cond[quiet]]
            if steady.size:  # no change for a period: the rate is 0
                self.cond[steady] = False
                self.value[steady] = 0.0
                self._schedule(steady, now)
            finite = self.quiet_at[np.isfinite(self.quiet_at)]
            self._min_quiet = float(finite.min()) if finite.size else math.inf
        if now >= self._min_due:
            fire = np.flatnonzero(self.due <= now)
            for k in fire.tolist():
                at = float(self.due[k])
                self.due[k] = np.inf
                self._set_active(k, bool(self.cond[k]), at, now)
            finite = self.due[np.isfinite(self.due)]
            self._min_due = float(finite.min()) if finite.size else math.inf
        if now >= self._min_shelve:
            for k in np.flatnonzero((self.shelved_until > 0) & (self.shelved_until <= now)).tolist():
                self._unshelve(k, now, "shelve expired", "")
            left = self.shelved_until[self.shelved_until > 0]
            self._min_shelve = float(left.min()) if left.size else math.inf
        if now >= self._chatter_due:
            nxt = math.inf
            for k in np.flatnonzero(self.chattering).tolist():
                recent = self._recent.get(k)
                last = recent[-1] if recent else -math.inf
                if now - last >= CHATTER_WINDOW:
                    self.chattering[k] = False
                    self._event(k, "chatter_end", now)
                else:
                    nxt = min(nxt, last + CHATTER_WINDOW)
            self._chatter_due = nxt
        self._floods(now)

    def _set_active(self, k: int, on: bool, at: float, now: float) -> None:
        if bool(self.active[k]) == on:
            return
        self.active[k] = on
        rule = self.rules[k]
        if on:
            self.activations[k] += 1
            self.counters["activations"] += 1
            self.activated_at[k] = at
            self.cleared_at[k] = np.nan
            recent = self._recent.setdefault(k, deque())
            recent.append(at)
            while recent and recent[0] < at - CHATTER_WINDOW:
                recent.popleft()
            limit = rule.chatter_per_minute or self.settings.chatter_per_minute
            repeat = bool(self.chattering[k])
            if len(recent) > limit and not repeat:
                self.chattering[k] = True
                self._event(k, "chattering", now, reason=f"{len(recent)} activations in {CHATTER_WINDOW:g} s")
            if self.chattering[k]:
                self._chatter_due = min(self._chatter_due, at + CHATTER_WINDOW)
            if not (repeat and self.acked[k]):  # a chattering alarm already acknowledged is shown once, not again
                self.acked[k] = False
            self.text.setdefault(k, {})["message"] = self.message(k)
            hidden = self._hidden(k, now)
            if not (repeat or hidden):  # floods count what operators are shown
                events = self._area_events.setdefault(rule.area, deque())
                events.append((at, k))
            self._event(k, "activated", now, at=at, hidden=hidden, repeat=repeat)
        else:
            self.cleared_at[k] = at
            if self._hidden(k, now):
                self.acked[k] = True
            self._event(k, "cleared", now, at=at)

    def _floods(self, now: float) -> None:
        window, count = self.settings.flood_window, self.settings.flood_count
        for area, events in self._area_events.items():
            while events and events[0][0] < now - window:
                events.popleft()
            flood = self.floods.get(area)
            if flood is None and len(events) > count:
                first = events[0][1]
                self.first_out[first] = True
                self.floods[area] = {"area": area, "since": float(events[0][0]), "count": len(events),
                                     "first_out": self.ids[first], "check": now + 1.0}  # fmt: skip
                self._event(first, "flood_start", now, reason=f"{len(events)} alarms in {window / 60:g} min in {area or 'the site'}")
            elif flood is not None:
                flood["count"] = len(events)
                flood["check"] = now + 1.0
                if len(events) <= count // 2:
                    del self.floods[area]
                    k = self.index.get(flood["first_out"])
                    if k is not None:
                        self.first_out[k] = False
                        self._event(k, "flood_end", now, reason=f"{area or 'the site'} below {count // 2 + 1} alarms in {window / 60:g} min")

    # --- lifecycle actions (the runtime's thread) --------------------------------------------

    def _require(self, alarm_id: str) -> int:
        k = self.index.get(alarm_id)
        if k is None:
            raise AlarmError(f"no alarm {alarm_id!r} in {self.runtime.site.name}")
        return k

    def _allowed(self, action: str, k: int, principal: Any, role: str, args: dict | None = None) -> str:
        """'' when the principal may act; else the refusal (audited)."""
        if principal is None:
            why = "not signed in"
        elif not principal.can(role):
            why = f"{action} needs the {role} role; {principal.name} is {principal.role}"
        else:
            return ""
        self.counters["refused"] += 1
        self._audit(action, k, principal, "refused", why, args)
        return why

    def acknowledge(self, alarm_id: str, principal: Any, comment: str = "") -> tuple[bool, str]:
        """Acknowledge one alarm (operator role). Returns (done, why not)."""
        k = self._require(alarm_id)
        why = self._allowed("acknowledge", k, principal, "operator", {"comment": comment} if comment else None)
        if why:
            return False, why
        if self.acked[k]:
            return False, "nothing to acknowledge"
        now = self.runtime.clock.now()
        self.acked[k] = True
        self.acked_at[k] = now
        self.text.setdefault(k, {})["acked_by"] = principal.name
        self._audit("acknowledge", k, principal, "acknowledged", comment)
        self._event(k, "acked", now, user=principal.name, reason=comment)
        self._wake()
        return True, ""

    def shelve(self, alarm_id: str, principal: Any, seconds: float, reason: str) -> tuple[bool, str]:
        """Shelve for `seconds` with a reason (operator role); unshelved automatically when the time is up."""
        k = self._require(alarm_id)
        args = {"for": seconds, "reason": reason}
        why = self._allowed("shelve", k, principal, "operator", args)
        if why:
            return False, why
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= self.settings.max_shelve):
            return False, f"shelve for more than 0 and at most {self.settings.max_shelve / 3600:g} h"
        if not reason or not reason.strip():
            return False, "shelving needs a reason"
        now = self.runtime.clock.now()
        self.shelved_until[k] = now + float(seconds)
        self._min_shelve = min(self._min_shelve, now + float(seconds))
        self.text.setdefault(k, {}).update(shelve_reason=reason.strip()[:500], shelved_by=principal.name)
        self._audit("shelve", k, principal, "shelved", reason, args)
        self._event(k, "shelved", now, user=principal.name, reason=reason.strip()[:500])
        self._wake()
        return True, ""

    def unshelve(self, alarm_id: str, principal: Any) -> tuple[bool, str]:
        k = self._require(alarm_id)
        why = self._allowed("unshelve", k, principal, "operator")
        if why:
            return False, why
        if not self.shelved_until[k]:
            return False, "not shelved"
        self._audit("unshelve", k, principal, "unshelved", "")
        self._unshelve(k, self.runtime.clock.now(), "unshelved", principal.name)
        self._wake()
        return True, ""

    def set_out_of_service(self, alarm_id: str, principal: Any, on: bool, reason: str = "") -> tuple[bool, str]:
        """Take an alarm out of service (maintenance) or put it back (admin role)."""
        k = self._require(alarm_id)
        action = "remove from service" if on else "return to service"
        why = self._allowed(action, k, principal, "admin", {"reason": reason})
        if why:
            return False, why
        if bool(self.oos[k]) == on:
            return False, "already out of service" if on else "already in service"
        now = self.runtime.clock.now()
        self.oos[k] = on
        self.text.setdefault(k, {})["oos_reason"] = reason if on else ""
        if not on and not self.active[k]:
            self.acked[k] = True
        self._audit(action, k, principal, "out_of_service" if on else "in_service", reason)
        self._event(k, "out_of_service" if on else "in_service", now, user=principal.name, reason=reason)
        self._wake()
        return True, ""

    def _unshelve(self, k: int, now: float, why: str, user: str) -> None:
        self.shelved_until[k] = 0.0
        if not self.active[k]:
            self.acked[k] = True
        self._event(k, "unshelved", now, user=user, reason=why)

    def _wake(self) -> None:
        wake = getattr(self.runtime, "_on_put", None)
        if callable(wake):
            wake()

    def _audit(self, action: str, k: int, principal: Any, state: str, reason: str, args: dict | None = None) -> None:
        if self.audit is None:
            return
        rule = self.rules[k]
        try:
            self.audit.write({
                "ts": self.runtime.clock.now(), "event": "alarm", "id": uuid.uuid4().hex, "state": state,
                "outcome": "failed" if state == "refused" else "succeeded",
                "user": getattr(principal, "name", "") or "anonymous", "role": getattr(principal, "role", ""),
                "site": self.runtime.site.name, "device": rule.device, "command": f"alarm.{action.replace(' ', '_')}",
                "alarm": rule.id, "args": dict(args or {}), "reason": reason,
            })  # fmt: skip
        except OSError:
            self.counters["audit_errors"] += 1

    # --- records, state ---------------------------------------------------------------------

    def _event(self, k: int, ev: str, now: float, at: float | None = None, user: str = "", reason: str = "",
               hidden: bool = False, repeat: bool = False) -> None:
        self.changed_at[k] = now
        self._changed.add(k)
        rule = self.rules[k]
        st = self._persisted(k)
        fields = ACTION_FIELDS.get(ev) if user else None
        if fields is not None:  # an operator's action changes only its own fields (another process may know better)
            st = {f: st[f] for f in fields + ("changed_at",)}
        rec = {"ts": float(now if at is None else at), "id": rule.id, "ev": ev, "dev": rule.device, "point": rule.point,
               "area": rule.area, "sev": rule.severity, "st": st}  # fmt: skip
        if user:
            rec["user"] = user
        if reason:
            rec["reason"] = reason
        if hidden:
            rec["hidden"] = True  # activated while shelved, suppressed or out of service: not annunciated
        if repeat:
            rec["repeat"] = True  # a chattering alarm again
        self._records.append(rec)

    def _persisted(self, k: int) -> dict[str, Any]:
        t = self.text.get(k, {})
        return {
            "active": bool(self.active[k]), "acked": bool(self.acked[k]), "shelved_until": _f(self.shelved_until[k]),
            "shelve_reason": t.get("shelve_reason", ""), "shelved_by": t.get("shelved_by", ""),
            "suppressed": bool(self.suppressed[k]), "oos": bool(self.oos[k]), "oos_reason": t.get("oos_reason", ""),
            "chattering": bool(self.chattering[k]), "activated_at": _f(self.activated_at[k]),
            "cleared_at": _f(self.cleared_at[k]), "acked_at": _f(self.acked_at[k]), "acked_by": t.get("acked_by", ""),
            "activations": int(self.activations[k]), "value": self.shown_value(k), "message": t.get("message", ""),
            "changed_at": _f(self.changed_at[k]), "first_out": bool(self.first_out[k]),
        }  # fmt: skip

    def _restore(self, states: dict[str, dict[str, Any]]) -> None:
        for aid, st in states.items():
            k = self.index.get(aid)
            if k is None:
                self.counters["orphans"] += 1  # an alarm the manifest no longer has
                continue
            self._apply_state(k, st)
        self.cond[:] = self.active
        left = self.shelved_until[self.shelved_until > 0]
        self._min_shelve = float(left.min()) if left.size else math.inf
        self.first_out[:] = False  # floods are not carried over a restart; a new one names its own first-out
        for k in np.flatnonzero(self.chattering).tolist():  # ends a minute after its last activation, as before
            last = float(self.activated_at[k]) if math.isfinite(self.activated_at[k]) else self.runtime.clock.now()
            self._recent[k] = deque([last])
            self._chatter_due = min(self._chatter_due, last + CHATTER_WINDOW)

    def _apply_state(self, k: int, st: dict[str, Any]) -> None:
        for key in ("active", "acked", "suppressed", "oos", "chattering", "first_out"):
            if key in st:
                getattr(self, key)[k] = bool(st[key])
        for key in ("shelved_until", "activated_at", "cleared_at", "acked_at", "changed_at"):
            if key in st:
                getattr(self, key)[k] = _num(st[key], 0.0 if key == "shelved_until" else math.nan)
        if isinstance(st.get("activations"), int):
            self.activations[k] = st["activations"]
        for key in ("shelve_reason", "shelved_by", "oos_reason", "acked_by", "message"):
            if isinstance(st.get(key), str):
                self.text.setdefault(k, {})[key] = st[key]
        if "value" in st:
            v = st["value"]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.value[k] = float(v)
            elif isinstance(v, str):
                self.text.setdefault(k, {})["value_text"] = v

    def _apply_external(self, records: list[dict[str, Any]], now: float) -> None:
        """Records another process appended (`twinview alarms ack ...`): take their state as ours."""
        for rec in records:
            k = self.index.get(rec.get("id", ""))
            st = rec.get("st")
            if k is None or not isinstance(st, dict):
                continue
            if not (rec.get("user") and rec.get("ev") in ACTION_FIELDS):
                continue  # another runtime's own evaluation of the same site: it is not ours to copy
            self.counters["external"] += 1
            self._apply_state(k, st)
            if st.get("shelved_until"):
                self._min_shelve = min(self._min_shelve, float(self.shelved_until[k]))
            self._changed.add(k)
            self.log.append(rec)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The persisted state of every alarm that ever left normal (for the store's snapshot)."""
        out = {}
        for k in range(len(self.rules)):
            if self.activations[k] or self.shelved_until[k] or self.oos[k] or not self.acked[k] or self.active[k]:
                out[self.ids[k]] = self._persisted(k)
        return out

    def _bits(self, devices: Iterable[int]) -> np.ndarray:
        """Recompute the alarm flag bits of these devices (vectorised); returns those whose bits changed."""
        devs = np.unique(np.fromiter(devices, np.int64))
        if not devs.size:
            return _EMPTY
        now = self.runtime.clock.now()
        start = self.dev_start[devs]
        counts = self.dev_start[devs + 1] - start
        bits = np.zeros(devs.size, np.uint32)
        has = counts > 0
        if has.any():
            s, c = start[has], counts[has]
            offsets = np.zeros(s.size, np.int64)
            np.cumsum(c[:-1], out=offsets[1:])
            ks = np.arange(int(c.sum())) - np.repeat(offsets - s, c)
            visible = ~(self.oos[ks] | self.suppressed[ks] | (self.shelved_until[ks] > now))
            shown = self.active[ks] & visible
            unack = ~self.acked[ks] & visible
            prio = self.priority[ks]
            any_shown = np.logical_or.reduceat(shown, offsets)
            any_unack = np.logical_or.reduceat(unack, offsets)
            sev = np.where(any_shown, np.maximum.reduceat(np.where(shown, prio, -1), offsets),
                           np.maximum.reduceat(np.where(unack, prio, -1), offsets))  # fmt: skip
            b = np.where(any_shown, _ALARM, np.uint32(0)) | np.where(any_unack, _UNACK, np.uint32(0))
            b |= np.where(any_shown | any_unack, np.maximum(sev, 0).astype(np.uint32) << np.uint32(ALARM_SEVERITY_SHIFT), np.uint32(0))
            bits[has] = b
        changed = self.alarm_bits[devs] != bits
        self.alarm_bits[devs] = bits
        return devs[changed]

    # --- reading --------------------------------------------------------------------------------

    def _hidden(self, k: int, now: float) -> bool:
        return bool(self.oos[k] or self.suppressed[k] or self.shelved_until[k] > now)

    def state_of(self, k: int, now: float | None = None) -> AlarmState:
        now = self.runtime.clock.now() if now is None else now
        if self.oos[k]:
            return AlarmState.OUT_OF_SERVICE
        if self.shelved_until[k] > now:
            return AlarmState.SHELVED
        if self.suppressed[k]:
            return AlarmState.SUPPRESSED
        if self.active[k]:
            return AlarmState.ACKNOWLEDGED if self.acked[k] else AlarmState.UNACKNOWLEDGED
        return AlarmState.NORMAL if self.acked[k] else AlarmState.RETURNED_UNACKNOWLEDGED

    def shown_value(self, k: int) -> Any:
        """The value as a person reads it: a number, a state name, a quality word, a command's end."""
        t = self.text.get(k, {})
        kind = int(self.kind[k])
        if kind == CMD:
            return t.get("value_text", "")
        x = float(self.value[k])
        if math.isnan(x):
            return t.get("value_text")
        if kind == QUAL:
            from ..vocabulary import Quality

            return Quality(int(x)).label
        if kind == STATE:
            row = int(self.row[k])
            return self.state.table.from_float(row, x)
        return x

    def message(self, k: int) -> str:
        rule = self.rules[k]
        spec = self.state.table.specs[int(self.row[k])] if self.row[k] >= 0 else None
        sp = None
        if self.sp_row[k] >= 0:
            sp = _f(self.state.value[int(self.sp_row[k])])
        return format_message(rule, self.shown_value(k), spec.unit if spec is not None else "", sp)

    def describe(self, k: int, now: float | None = None) -> dict[str, Any]:
        """One alarm's public state (lists, web pages, MQTT, the command line)."""
        now = self.runtime.clock.now() if now is None else now
        rule = self.rules[k]
        t = self.text.get(k, {})
        return {
            "id": rule.id, "device": rule.device, "name": rule.name, "point": rule.point, "kind": rule.kind,
            "severity": rule.severity, "priority": rule.priority, "area": rule.area,
            "state": self.state_of(k, now).value, "active": bool(self.active[k]), "acked": bool(self.acked[k]),
            "value": self.shown_value(k), "limit": _f(self.limit[k]),
            "message": t.get("message") or self.message(k),
            "activated_at": _f(self.activated_at[k]), "cleared_at": _f(self.cleared_at[k]),
            "acked_at": _f(self.acked_at[k]), "acked_by": t.get("acked_by", ""), "changed_at": _f(self.changed_at[k]),
            "shelved_until": _f(self.shelved_until[k]) if self.shelved_until[k] > now else None,
            "shelve_reason": t.get("shelve_reason", "") if self.shelved_until[k] > now else "",
            "shelved_by": t.get("shelved_by", "") if self.shelved_until[k] > now else "",
            "suppressed": bool(self.suppressed[k]), "out_of_service": bool(self.oos[k]),
            "chattering": bool(self.chattering[k]), "first_out": bool(self.first_out[k]),
            "activations": int(self.activations[k]),
        }  # fmt: skip

    def alarms(self, include_normal: bool = False, active_only: bool = False) -> list[dict[str, Any]]:
        """Alarms as the alarm list shows them: not normal ones (or all), worst first, newest first."""
        now = self.runtime.clock.now()
        keep = np.ones(len(self.rules), bool)
        if active_only:
            keep &= self.active
        if not include_normal:
            keep &= self.oos | (self.shelved_until > now) | self.suppressed | self.active | ~self.acked
        out = [self.describe(k, now) for k in np.flatnonzero(keep).tolist()]
        out.sort(key=lambda a: (-a["priority"], -(a["activated_at"] or 0.0)))
        return out

    def device_alarms(self, device: int) -> list[dict[str, Any]]:
        now = self.runtime.clock.now()
        return [self.describe(k, now) for k in range(int(self.dev_start[device]), int(self.dev_start[device + 1]))]

    def history(self, alarm_id: str | None = None, device: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest journal records of an alarm or a device, newest first (from memory)."""
        out = []
        for rec in reversed(self.log):
            if alarm_id is not None and rec.get("id") != alarm_id:
                continue
            if device is not None and rec.get("dev") != device:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        return out

    def flood_list(self) -> tuple[dict[str, Any], ...]:
        return tuple({k: v for k, v in f.items() if k != "check"} for f in self.floods.values())

    def area_counts(self) -> dict[str, int]:
        """Active alarms shown (not hidden) per area: the badges of a zoomed-out scene."""
        now = self.runtime.clock.now()
        visible = self.active & ~(self.oos | self.suppressed | (self.shelved_until > now))
        out: dict[str, int] = {}
        for k in np.flatnonzero(visible).tolist():
            area = self.rules[k].area
            out[area] = out.get(area, 0) + 1
        return out

    def counts(self) -> dict[str, int]:
        """How many alarms are in each state (vectorised: the same precedence as state_of)."""
        now = self.runtime.clock.now()
        oos = self.oos
        shelved = ~oos & (self.shelved_until > now)
        suppressed = ~oos & ~shelved & self.suppressed
        rest = ~(oos | shelved | suppressed)
        return {
            AlarmState.NORMAL.value: int((rest & ~self.active & self.acked).sum()),
            AlarmState.UNACKNOWLEDGED.value: int((rest & self.active & ~self.acked).sum()),
            AlarmState.ACKNOWLEDGED.value: int((rest & self.active & self.acked).sum()),
            AlarmState.RETURNED_UNACKNOWLEDGED.value: int((rest & ~self.active & ~self.acked).sum()),
            AlarmState.SHELVED.value: int(shelved.sum()),
            AlarmState.SUPPRESSED.value: int(suppressed.sum()),
            AlarmState.OUT_OF_SERVICE.value: int(oos.sum()),
        }

    def flush(self) -> None:
        """Write the records waiting for the next step (a command line that acts without stepping)."""
        if self._records:
            records, self._records = self._records, []
            self.store.append(records)
            self.log.extend(records)

    def close(self) -> None:
        """Write what is pending and a snapshot; release the store."""
        self.flush()
        self._apply_external(self.store.tail(), self.runtime.clock.now())
        self.store.snapshot(self.snapshot())
        self.store.close()
        self.runtime.events.release(self)


def _row(table: Any, device: str, point: str | None) -> int:
    if not point:
        return -1
    row = table.index(device, point)
    return -1 if row is None else int(row)


def _state_mask(rule: AlarmRule, table: Any) -> int:
    if rule.kind != "state" or not rule.point:
        return 0
    row = table.index(rule.device, rule.point)
    if row is None:
        return 0
    spec = table.specs[row]
    names = ("false", "true") if spec.kind == "bool" else spec.states
    return sum(1 << i for i, name in enumerate(names) if name in rule.states and i < 64)


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _num(x: Any, default: float) -> float:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return default


def severity_of(bits: int) -> str:
    """The severity word of a device's alarm flag bits."""
    return SEVERITIES[(int(bits) >> ALARM_SEVERITY_SHIFT) & 3]
