"""The runtime: the one place where the twin changes.

It owns the site, the columnar state, the devices' looks, the connectors, the
command service and an injected clock. I/O threads only `submit` (each
connector has its own lock-free inbox); `step()`, called once per frame by
whoever hosts the runtime (the desktop's draw loop, a `Driver` thread for the
web server and the command line), drains every inbox, applies the batch
vectorised, evaluates the looks of the devices that changed and publishes typed
events on one bus. Views, tools and tests subscribe; nothing else updates the twin.

    connector (I/O thread) --submit--> inbox --step()--> TwinState --> Looks --> EventBus --> views
    views --request_command()--> CommandService --> transport (a connector) --> devices
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from twinview.site.manifest import Site

from .clock import Clock, WallClock
from .events import (
    CommandChanged,
    DevicesChanged,
    EventBus,
    LinkChanged,
    QualityChanged,
    SamplesApplied,
    StateReset,
)
from .inbox import Inbox
from .looks import Looks
from .samples import Event, LinkState
from .state import TwinState
from .vocabulary import DeviceFlag

log = logging.getLogger("twinview.runtime")
_EMPTY = np.empty(0, np.int64)


class Source(Protocol):
    """What the runtime needs of a connector: a name, start(sink), stop(), and counters to show."""

    name: str
    stats: Any

    def start(self, sink: Callable[[Event], None]) -> None: ...

    def stop(self) -> None: ...


class Evaluator(Protocol):
    """Work the runtime does inside step(): `evaluate` gets the clock's now and the changed point rows,
    returns the devices whose look must be re-evaluated; `next_due` says when time alone changes something."""

    def evaluate(self, now: float, rows: np.ndarray) -> np.ndarray: ...

    def next_due(self) -> float: ...


@dataclass
class StepStats:
    """Counters of the runtime's own work, shown by the status panel, `twinview state` and /metrics."""

    steps: int = 0
    events: int = 0
    samples_applied: int = 0
    step_seconds: float = 0.0  # the last step's duration
    errors: int = 0  # exceptions inside a step (each counted and logged, never the end of the runtime)
    last_error: str = ""
    dropped: dict[str, int] = field(default_factory=dict)


class IndexSet:
    """Sorted unique indices below `size`, in time that follows the input (a reusable mark array)."""

    def __init__(self, size: int):
        self._mark = np.zeros(size, bool)

    def of(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if indices.size < 64:
            return np.unique(indices)
        mark = self._mark
        mark[indices] = True
        if indices.size * 8 >= mark.size:
            out = np.flatnonzero(mark)
        else:
            out = np.sort(indices[mark[indices]])  # mark[...] is True for every index: dedupe below
            out = out[np.r_[True, out[1:] != out[:-1]]]
        mark[out] = False
        return out


class ThreadError(RuntimeError):
    """Twin state was about to be written from a thread that is not the runtime's."""


class Runtime:
    """A site's live twin: state, looks, sources, commands, clock and the event bus."""

    def __init__(self, site: Site, clock: Clock | None = None, history_seconds: float = 600.0):
        self.site = site
        self.clock: Clock = clock or WallClock()
        self.state = TwinState(site, history_seconds=history_seconds)
        self.looks = Looks(self.state)
        self.events = EventBus()
        self.stats = StepStats()
        self.connectors: list[Source] = []
        self._inboxes: list[tuple[str, Inbox]] = []
        self.commands: Any = None  # CommandService, once commands are enabled
        self.command_transport: Any = None
        self.principal: Any = None  # who acts from a local view (None: look only until signed in)
        self.mode = "live"  # "live", "past" (time travel) or "simulation" (what-if): every view says which
        self.recorder: Any = None  # what records this runtime into the history store, if anything
        self.evaluators: list[Evaluator] = []  # called inside step() with the rows that changed (alarms)
        self.alarms: Any = None  # AlarmEngine, once alarms are enabled
        self._on_stop: list[Callable[[], None]] = []  # subscribers with a connection of their own (alarm publishers)
        self.wake: Callable[[], None] | None = None  # asked for a step when data arrives (e.g. request_draw)
        self._woken = False
        self._thread: int | None = None
        self._started = False
        self._pending_devices: frozenset[str] = frozenset()
        self._point_set = IndexSet(len(self.state.table))
        self._device_set = IndexSet(len(site.devices))
        self.looks.evaluate(np.arange(len(site.devices)))

    # --- wiring -----------------------------------------------------------------------

    def add_connector(self, connector: Source) -> None:
        """A source whose samples this runtime applies (started with the runtime)."""
        inbox: Inbox = Inbox(on_put=self._on_put)
        self.connectors.append(connector)
        self._inboxes.append((connector.name, inbox))
        if self._started:
            connector.start(inbox.put)

    def enable_commands(self, transport: Any, principal: Any = None, audit_path: Any = None, **options: Any) -> Any:
        """Route commands through a CommandService (roles, interlocks, audit) over `transport`."""
        from .commands import CommandService, TwinStateReader

        self.command_transport = transport
        self.commands = CommandService(self.site, TwinStateReader(self.state), transport, audit_path,
                                       clock=self.clock.now, **options)  # fmt: skip
        self.commands.on_event = self._on_put
        self.commands.subscribe(self._on_command)
        self.principal = principal
        return self.commands

    def on_stop(self, fn: Callable[[], None]) -> None:
        """Call fn when the runtime stops (before the alarm engine and the connectors)."""
        self._on_stop.append(fn)

    def add_evaluator(self, evaluator: Evaluator) -> None:
        """Something evaluated inside every step() (after samples and timers, before looks): alarms."""
        self.evaluators.append(evaluator)

    def enable_alarms(self, store: Any = None, audit_path: Any = None) -> Any:
        """Evaluate the manifest's alarm rules in every step (twinview.twin.alarms); returns the AlarmEngine.

        store: an AlarmStore, a journal path, or None for no persistence. Acknowledging and
        shelving are audited in the command service's log, else in `audit_path`'s.
        """
        from .alarms import AlarmEngine, open_store
        from .audit import AuditLog

        audit = getattr(self.commands, "audit", None)
        if audit is None and audit_path is not None:
            audit = audit_path if isinstance(audit_path, AuditLog) else AuditLog(audit_path)
        self.alarms = AlarmEngine(self, open_store(store), audit)
        self.add_evaluator(self.alarms)
        self.looks.evaluate(np.arange(len(self.site.devices)))  # alarms restored from the store show at once
        return self.alarms

    def submit(self, event: Event, connector: str = "") -> None:
        """Hand the runtime an event from any thread (tests, tools); connectors use their own inbox."""
        for name, inbox in self._inboxes:
            if name == connector:
                inbox.put(event)
                return
        self.add_connector(_Submitted(connector or "submitted"))
        self.submit(event, connector or "submitted")

    # --- running ----------------------------------------------------------------------

    def start(self) -> "Runtime":
        if not self._started:
            self._started = True
            for connector, (_, inbox) in zip(self.connectors, self._inboxes):
                connector.start(inbox.put)
        return self

    def stop(self) -> None:
        """Stop the command service, its transport and every connector (each failure logged)."""
        for fn in self._on_stop:
            _quietly(fn, getattr(fn, "__qualname__", "a subscriber"))
        self._on_stop.clear()
        if self.alarms is not None:
            _quietly(self.alarms.close, "alarm engine")
        if self.commands is not None:
            _quietly(self.commands.close, "command service")
        stop_transport = getattr(self.command_transport, "stop", None)
        if callable(stop_transport):
            _quietly(stop_transport, "command transport")
        for connector in self.connectors:
            _quietly(connector.stop, f"connector {connector.name}")
        self._started = False

    def _on_put(self) -> None:
        """From I/O threads when something is queued: ask the host for a step (only sets a flag there)."""
        if not self._woken and self.wake is not None:
            self._woken = True
            self.wake()

    def _check_thread(self) -> None:
        me = threading.get_ident()
        if self._thread is None:
            self._thread = me
        elif self._thread != me:
            raise ThreadError("the twin is stepped from one thread only; submit() from the others")

    def bind_thread(self) -> None:
        """Make the calling thread the runtime's (a driver thread calls this before its first step)."""
        self._thread = threading.get_ident()

    def step(self, now: float | None = None) -> np.ndarray:
        """Drain, apply, tick, evaluate, publish. Returns the indices of devices whose look changed."""
        self._check_thread()
        if not self._started:
            self.start()
        self._woken = False
        t0 = time.perf_counter()
        now = self.clock.now() if now is None else now
        state = self.state
        changed_points: list[np.ndarray] = []
        applied: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        wants_samples = self.events.wants(SamplesApplied)
        for name, inbox in self._inboxes:
            if not len(inbox):
                continue
            events = inbox.drain()
            self.stats.events += len(events)
            before = state.samples
            try:
                rows = state.apply(events, name)
            except Exception as exc:  # a bad batch is counted and shown, never the end of the twin
                self._count_error(f"applying {name}: {type(exc).__name__}: {exc}")
                continue
            self.stats.samples_applied += state.samples - before
            if rows.size:
                changed_points.append(rows)
            for ev in events:
                if type(ev) is LinkState:
                    self.events.publish(LinkChanged(now, ev.connector, ev.state, ev.detail))
        taken = state.take_applied()
        if taken is not None and wants_samples:
            applied.append(taken)
        stale = state.tick(now)
        if stale.size:
            changed_points.append(stale)
            self.events.publish(QualityChanged(now, stale, "silence"))
        changed_devices = self._poll_commands(now, changed_points)
        points = self._point_set.of(np.concatenate(changed_points)) if changed_points else _EMPTY
        devices = self._device_set.of(np.concatenate([state.table.device[points], changed_devices]))
        for evaluator in self.evaluators:
            try:
                more = evaluator.evaluate(now, points)
            except Exception as exc:  # counted and shown, never the end of the twin
                self._count_error(f"evaluator {type(evaluator).__name__}: {type(exc).__name__}: {exc}")
                continue
            if more.size:
                devices = np.union1d(devices, more)
        motions = self.looks.evaluate(devices) if devices.size else _EMPTY
        if applied:
            rows, values, times = (np.concatenate(a) for a in zip(*applied))
            self.events.publish(SamplesApplied(now, rows, values, times))
        if devices.size:
            self.events.publish(DevicesChanged(now, devices, points, motions))
        self.stats.steps += 1
        self.stats.step_seconds = time.perf_counter() - t0
        return devices

    def _poll_commands(self, now: float, changed_points: list[np.ndarray]) -> np.ndarray:
        commands = self.commands
        if commands is None:
            return _EMPTY
        if changed_points:
            changed = self._device_set.of(self.state.table.device[np.concatenate(changed_points)])
            commands.on_values(changed.tolist())
        ids = commands.poll(now)
        pending = commands.pending_devices()
        if pending == self._pending_devices and not ids:
            return _EMPTY
        index = self.state.table.device_index
        flips = (pending ^ self._pending_devices) | set(ids)
        self._pending_devices = pending
        devices = np.asarray(sorted(index[d] for d in flips if d in index), np.int64)
        self.looks.pending[devices] = [self.site.devices[i].id in pending for i in devices.tolist()]
        return devices

    def _on_command(self, cmd: Any, prev: str) -> None:
        from .commands import public_state

        self.events.publish(CommandChanged(self.clock.now(), cmd.device, public_state(cmd)))

    def _count_error(self, text: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = text
        log.error("%s", text)

    def reset(self) -> None:
        """Re-evaluate every device and tell every view to redraw everything."""
        self.looks.evaluate(np.arange(len(self.site.devices)))
        self.events.publish(StateReset(self.clock.now()))

    def run_for(self, seconds: float, step: float = 0.05) -> None:
        """Step on this thread for a while (render --wait, `twinview state --wait`, tests)."""
        self.start()
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.step()
            if time.monotonic() >= end:
                break
            time.sleep(step)

    # --- commands ---------------------------------------------------------------------

    def request_command(self, device_id: str, command: str, args: dict, confirmed: bool, principal: Any = None):
        """Ask the command service on behalf of `principal` (default: this view's; refused if none)."""
        from twinview.security.auth import Principal

        if self.commands is None:
            raise RuntimeError("commands are not enabled for this runtime")
        who = principal or self.principal or Principal("anonymous", "viewer")
        return self.commands.request(who, device_id, command, args, confirmed)

    # --- reading ----------------------------------------------------------------------

    @property
    def needs_steps(self) -> bool:
        """True while something changes with time alone: a blinking alarm, a command in flight, an alarm timer."""
        blink = _UNACK_BIT if self.alarms is not None else _ALARM_BIT
        if self._pending_devices or (self.looks.flags & blink).any():
            return True
        soon = self.clock.now() + 1.0  # a deadline further away is met by a later step (data keeps coming)
        return any(e.next_due() <= soon for e in self.evaluators)

    def device_index(self, device_id: str) -> int | None:
        return self.state.table.device_index.get(device_id)

    def point_state(self, device_id: str, point_id: str):
        """A point as it is now (PointView), or None when the site has no such point."""
        try:
            return self.state.point(device_id, point_id)
        except KeyError:
            return None

    def device_summary(self, index: int) -> str:
        """One line for a tooltip: worst quality, ALARM, and the label."""
        parts = [self.state.device_quality(index).label]
        if self.state.device_alarm(index):
            parts.append("ALARM")
        label = self.looks.label(index)
        if label:
            parts.append(label)
        return "  ·  ".join(parts)

    def link_states(self) -> dict[str, LinkState]:
        return dict(self.state.links)

    def counted_errors(self) -> dict[str, Any]:
        """Every counted error, from every part, in one place (panels, `twinview state`, /metrics)."""
        s = self.state
        out: dict[str, Any] = {
            "bad_samples": s.bad, "out_of_order": s.out_of_order, "unknown_points": s.unknown, "clock_skew": s.clock_skew,
            "runtime_errors": self.stats.errors, "event_handler_errors": self.events.errors,
        }  # fmt: skip
        for connector in self.connectors:
            snap = connector.stats.snapshot() if getattr(connector, "stats", None) is not None else {}
            out[f"{connector.name}.bad"] = snap.get("bad", 0)
        if self.commands is not None:
            out["audit_errors"] = self.commands.counters.get("audit_errors", 0)
        return out


_ALARM_BIT = np.uint32(DeviceFlag.ALARM)
_UNACK_BIT = np.uint32(DeviceFlag.ALARM_UNACK)


class _Submitted:
    """The inbox behind Runtime.submit() for events that come from no connector."""

    def __init__(self, name: str):
        self.name = name
        self.stats = None

    def start(self, sink: Callable[[Event], None]) -> None:
        pass

    def stop(self) -> None:
        pass


def _quietly(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except Exception:
        log.exception("stopping %s failed", what)


class Driver:
    """Steps a runtime on its own thread at a fixed rate: the host when there is no window.

    `twinview serve`, `record`, `state` and `command` run the runtime this way; the
    desktop steps it from its draw loop instead. Exactly one host steps a runtime.
    """

    def __init__(self, runtime: Runtime, rate: float = 20.0, before_step: Callable[[], None] | None = None):
        self.runtime = runtime
        self.period = 1.0 / rate
        self.before_step = before_step  # work that must run on the runtime's thread (e.g. web commands)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._calls: deque[Callable[[], None]] = deque()

    def start(self) -> "Driver":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="twinview-runtime", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        runtime = self.runtime
        runtime.bind_thread()
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                while self._calls:
                    self._calls.popleft()()
                if self.before_step is not None:
                    self.before_step()
                runtime.step()
            except Exception as exc:  # counted and shown, never the end of the loop
                runtime._count_error(f"step: {type(exc).__name__}: {exc}")
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run fn on the runtime's thread and return its result (from another thread)."""
        if self._thread is None or threading.get_ident() == self._thread.ident:
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed back to the caller
                box["error"] = exc
            finally:
                done.set()

        self._calls.append(job)
        if not done.wait(timeout):
            raise TimeoutError("the runtime did not answer in time")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
