"""WebPublisher: the web bridge subscribed to a runtime.

On the runtime's thread it collects the devices that changed, and at most
`rate` times a second encodes those devices once (look and point values) for
every page; command transitions go to every page as they happen. Commands
pages asked for are answered here too, on the runtime's thread, through the
same command service as the desktop's.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from twinview.twin.events import AlarmsChanged, CommandChanged, DevicesChanged, StateReset
from twinview.twin.runtime import Runtime

from .bridge import AlarmRequest, CommandRequest, WebBridge

log = logging.getLogger("twinview.web")
CommandHandler = Callable[[CommandRequest], dict]
STATUS_PERIOD = 1.0  # seconds between status messages to every page


def refuse_all(request: CommandRequest) -> dict:
    """The command handler when no command service is configured."""
    return {"type": "command_result", "ref": request.ref, "device": request.device, "command": request.command,
            "ok": False, "state": "refused", "reason": "commands are not enabled on this server"}  # fmt: skip


class WebPublisher:
    """Keeps every page of one bridge showing one runtime's twin."""

    def __init__(self, runtime: Runtime, bridge: WebBridge, handle_command: CommandHandler | None = None, rate: float = 10.0):
        self.runtime = runtime
        self.bridge = bridge
        self.handle_command = handle_command or refuse_all
        self.period = 1.0 / rate
        self.errors = 0
        self.last_error = ""
        self._dirty = np.zeros(len(runtime.site.devices), bool)
        self._any = False
        self._last = 0.0
        self._last_status = 0.0
        self._past: Any = None  # a PastTwin, made at the first timeline request
        runtime.events.subscribe(DevicesChanged, self._on_changed, owner=self)
        runtime.events.subscribe(StateReset, self._on_reset, owner=self)
        runtime.events.subscribe(CommandChanged, self._on_command, owner=self)
        runtime.events.subscribe(AlarmsChanged, self._on_alarms, owner=self)
        if runtime.alarms is not None:
            self._on_alarms(None)

    def _on_changed(self, event: DevicesChanged) -> None:
        self._dirty[event.devices] = True
        self._any = True

    def _on_reset(self, event: StateReset) -> None:
        self._dirty[:] = True
        self._any = True

    def _on_command(self, event: CommandChanged) -> None:
        self.bridge.publish_command(event.command)

    def _on_alarms(self, event: AlarmsChanged | None) -> None:
        """The alarm list for pages: a fresh snapshot for late joiners, the changed alarms for everyone."""
        engine = self.runtime.alarms
        if engine is None:
            return
        floods = list(engine.flood_list())
        areas = engine.area_counts()
        snapshot = {"type": "alarms", "kind": "snapshot", "alarms": engine.alarms(), "floods": floods, "areas": areas,
                    "severities": engine.counts()}  # fmt: skip
        changes = None
        if event is not None:
            changes = {"type": "alarms", "kind": "changes", "alarms": list(event.alarms), "floods": floods,
                       "areas": areas, "severities": snapshot["severities"]}  # fmt: skip
        self.bridge.publish_alarms(snapshot, changes)

    def _alarm_action(self, request: AlarmRequest) -> dict:
        """A page's ack / shelve / unshelve, as its signed-in principal (the engine checks the role and audits)."""
        reply = {"type": "alarm_result", "ref": request.ref, "alarm": request.alarm, "action": request.action}
        engine = self.runtime.alarms
        if engine is None:
            return {**reply, "ok": False, "reason": "alarms are not enabled on this server"}
        from twinview.twin.alarms import AlarmError

        try:
            if request.action == "ack":
                ok, why = engine.acknowledge(request.alarm, request.principal)
            elif request.action == "shelve":
                ok, why = engine.shelve(request.alarm, request.principal, request.seconds, request.reason)
            else:
                ok, why = engine.unshelve(request.alarm, request.principal)
        except AlarmError as exc:
            return {**reply, "ok": False, "reason": str(exc)}
        if not ok and request.principal is None:
            why = "not logged in: this connection is read-only (log in with a token first)"
        return {**reply, "ok": ok, "reason": "" if ok else why}

    def publish(self, devices: np.ndarray) -> None:
        """Encode these devices' looks and points for every page (now)."""
        looks = self.runtime.looks
        state = self.runtime.state
        ids = devices.tolist()
        entries = {i: looks.look(i) for i in ids}
        points = {i: [(p.point, p.value, p.quality.label, p.ts, p.alarm) for p in state.points(i)] for i in ids}
        self.bridge.publish_changes(entries, points)

    def publish_all(self) -> None:
        """Every device once, so the first snapshot a page gets is complete."""
        self.publish(np.arange(len(self.runtime.site.devices)))

    def answer_time_requests(self) -> None:
        """Pages that scrub the timeline get the twin at that instant, from the history store."""
        for client, msg in self.bridge.take_time_requests():
            if msg.type == "live":
                self.bridge.show_live(client)
                continue
            store = getattr(self.runtime.recorder, "store", None)
            if store is None:
                self.bridge.send_to(client, {"type": "error", "code": "no_history", "ref": msg.ref,
                                             "message": "this server does not record history (started with --no-record)"})
                continue
            try:
                self.bridge.show_past(client, self._past_message(store, msg.t))
            except Exception as exc:  # a store problem refuses this request; the twin goes on
                self.errors += 1
                self.last_error = f"history: {type(exc).__name__}: {exc}"
                log.exception("time travel failed")
                self.bridge.send_to(client, {"type": "error", "code": "history_failed", "ref": msg.ref,
                                             "message": "the history store could not be read"})

    def _past_message(self, store: Any, at: float) -> str:
        from twinview.twin.memory import PastTwin

        from .protocol import device_entry, dumps

        store.flush()
        if self._past is None:
            self._past = PastTwin(self.runtime.site, store)
        past = self._past
        past.seek(at)
        span = past.span() or (at, at)
        looks, state = past.runtime.looks, past.runtime.state
        frags = []
        for i, device in enumerate(self.runtime.site.devices):
            look = looks.look(i)
            points = [(p.point, p.value, p.quality.label, p.ts, p.alarm) for p in state.points(i)]
            frags.append(device_entry(device.id, look.rgba, look.flags, look.label, look.motions, points))
        head = dumps({"type": "past", "at": at, "first": span[0], "last": max(span[1], time.time())})
        return head[:-1] + ',"devices":{' + ",".join(frags) + "}}"

    def before_step(self) -> None:
        """Answer queued page commands, then flush what changed if the rate allows (runtime's thread)."""
        if len(self.bridge.time_requests):
            self.answer_time_requests()
        for request in self.bridge.take_commands():
            try:
                reply = self.handle_command(request)
            except Exception as exc:  # a failing handler refuses that command; the twin goes on
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("web command failed")
                reply = {"type": "command_result", "ref": request.ref, "device": request.device,
                         "command": request.command, "ok": False, "state": "failed", "reason": "internal error"}  # fmt: skip
            if reply:
                self.bridge.send_to(request.client, reply)
        for alarm_request in self.bridge.take_alarm_actions():
            try:
                answer = self._alarm_action(alarm_request)
            except Exception as exc:  # refused, never the end of the server
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("web alarm action failed")
                answer = {"type": "alarm_result", "ref": alarm_request.ref, "alarm": alarm_request.alarm,
                          "action": alarm_request.action, "ok": False, "reason": "internal error"}  # fmt: skip
            self.bridge.send_to(alarm_request.client, answer)
        now = time.monotonic()
        if now - self._last_status >= STATUS_PERIOD:
            self._last_status = now
            self.bridge.publish_status(self.status())
        if self._any and now - self._last >= self.period:
            devices = np.flatnonzero(self._dirty)
            self._dirty[devices] = False
            self._any = False
            self._last = now
            self.publish(devices)

    def status(self) -> dict:
        """Points by quality, each link's state and every counted error (what the desktop's connections panel shows)."""
        rt = self.runtime
        links = {name: {"state": link.state, "detail": link.detail} for name, link in rt.link_states().items()}
        errors = {k: v for k, v in rt.counted_errors().items() if v}
        if self.errors:
            errors["web_errors"] = self.errors
        recorder = rt.recorder
        history = {"recording": recorder is not None, "since": self._history_since()} if recorder is not None else None
        return {"qualities": rt.state.quality_counts(), "links": links, "errors": errors, "history": history,
                "last_error": rt.stats.last_error or rt.events.last_error or self.last_error}  # fmt: skip

    def _history_since(self) -> float | None:
        """When the recording starts (looked up once; it only moves when retention drops old data)."""
        if getattr(self, "_since", None) is None:
            from twinview.twin.memory import PastTwin

            span = PastTwin(self.runtime.site, self.runtime.recorder.store).span()
            self._since = span[0] if span else None
        return self._since

    def close(self) -> None:
        self.runtime.events.release(self)
