"""Closed-loop commands: requested -> sent -> acknowledged -> confirmed, or why not.

CommandService checks who asks (role), what (device, command, arguments), and
whether it is safe now (interlock), writes every step to the audit log before
showing it, publishes through a Transport, and calls a command confirmed only
when the device's reported state matches what was asked (docs/commands.md).

States:
    requested     accepted by the service; being sent (retried while the broker is unreachable)
    sent          the broker accepted it (MQTT 5 PUBACK success)
    acknowledged  the device said it accepted it
    confirmed     the reported success point equals the wanted value (GOOD quality) and that is
                  news: the device answered this command id, or the value changed to it after the
                  command was handed to the broker (it read something else until then); for a
                  command without a success point, the device acknowledged it
    unverified    the time was up and the success point shows the wanted value, but it already
                  did (or was unknown) before the command and nothing since shows the device
                  received it
    refused       by the service: unknown device/command, role, missing confirmation,
                  invalid argument, interlock. Nothing is published.
    rejected      by the device
    timed_out     sent, but not confirmed within CommandSpec.timeout
    expired       sent, but not acknowledged before it expired (the broker drops it)
    failed        could not be sent before it expired, or the broker refused it

Threads: request(), poll() and on_values() belong to one owner thread (the
render loop, or the CLI's main loop). on_ack() and on_link() may be called from
any thread: they only enqueue. Publishing runs on a small sender thread (or
inline in poll() with threaded=False), so a slow broker never stalls a frame.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from ..site.manifest import CommandArg, CommandSpec, Device, Site
from .audit import AuditLog, default_audit_path, iter_audit, outcome_of, owner_alive
from twinview.security.auth import ROLE_RANK, Principal, role_at_least
from .interlock import Interlock, InterlockError
from .vocabulary import FINAL_COMMAND_STATES, CommandState

REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED = (
    CommandState.REQUESTED, CommandState.SENT, CommandState.ACKNOWLEDGED, CommandState.CONFIRMED)
REFUSED, REJECTED, TIMED_OUT, EXPIRED, FAILED, UNVERIFIED = (
    CommandState.REFUSED, CommandState.REJECTED, CommandState.TIMED_OUT, CommandState.EXPIRED, CommandState.FAILED,
    CommandState.UNVERIFIED)
STATES = tuple(CommandState)
FINAL = FINAL_COMMAND_STATES
MIN_EXPIRY_S = 1  # a command with less than this left is not sent any more
UNKNOWN_OUTCOME = "outcome unknown"
UNRESOLVED_SHOWN_S = 24 * 3600  # commands of a stopped run stay listed in the UI this long
MAX_RESPONSE_BYTES = 64 * 1024


# --- the device contract ------------------------------------------------------------


def command_topic(prefix: str, device: str, command: str) -> str:
    """Where a command is published: '{prefix}/{device}/cmd/{command}'."""
    return f"{prefix}/{device}/cmd/{command}".lstrip("/")


def response_topic(prefix: str, device: str) -> str:
    """Where the device answers: '{prefix}/{device}/cmd_response' (outside cmd/+ on purpose)."""
    return f"{prefix}/{device}/cmd_response".lstrip("/")


def response_filter(prefix: str) -> str:
    """Subscription that receives every device's answers: '{prefix}/+/cmd_response'."""
    return f"{prefix}/+/cmd_response".lstrip("/")


def device_of_response_topic(prefix: str, topic: str) -> str | None:
    """The device id in a response topic, or None when the topic is not one."""
    head = f"{prefix}/".lstrip("/") if prefix else ""
    tail = "/cmd_response"
    if not topic.startswith(head) or not topic.endswith(tail):
        return None
    device = topic[len(head) : -len(tail)]
    return device if device and "/" not in device else None


def encode_command(cmd: "Command") -> bytes:
    """The JSON payload devices receive (docs/commands.md)."""
    body = {
        "id": cmd.id,
        "device": cmd.device,
        "command": cmd.command,
        "args": cmd.args,
        "user": cmd.user,
        "issued_at": round(cmd.created, 3),
        "expires_at": round(cmd.expires_at, 3),
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class Response:
    id: str
    status: str  # "accepted" | "rejected"
    reason: str = ""


def parse_response(payload: bytes | str, correlation_id: str | None = None) -> Response:
    """Decode a device's answer {"id", "status", "reason"}; raises ValueError when it is not one.

    Also accepted: {"accepted": true|false, "reason": ...}, and no "id" when the MQTT 5
    correlation data carries it. When both are present they must agree.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        if len(payload) > MAX_RESPONSE_BYTES:
            raise ValueError("response is too large")
        payload = bytes(payload).decode("utf-8")
    elif len(payload) > MAX_RESPONSE_BYTES:
        raise ValueError("response is too large")
    try:
        data = json.loads(payload)
    except RecursionError:
        raise ValueError("response is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("response is not a JSON object")
    cid, status, reason = data.get("id"), data.get("status"), data.get("reason", "")
    if cid is None:
        cid = correlation_id
    elif correlation_id is not None and cid != correlation_id:
        raise ValueError("response id and correlation data differ")
    if not isinstance(cid, str) or not 0 < len(cid) <= 64:
        raise ValueError("response has no valid id")
    if status is None and type(data.get("accepted")) is bool:
        status = "accepted" if data["accepted"] else "rejected"
    if status not in ("accepted", "rejected"):
        raise ValueError(f"response status must be 'accepted' or 'rejected', not {status!r}")
    if not isinstance(reason, str):
        reason = json.dumps(reason)[:500] if reason is not None else ""
    return Response(cid, status, " ".join(reason.split())[:500])


# --- protocols ----------------------------------------------------------------------


class PublishError(Exception):
    """A transport could not publish. permanent=True: retrying cannot help (e.g. not authorized)."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@runtime_checkable
class Transport(Protocol):
    """Carries commands to devices. publish() may block briefly (it runs on the sender thread).

    Returns True when the message was accepted for delivery (MQTT 5: PUBACK with a
    success reason code), False when it could not be now (not connected, no PUBACK
    in time): the service retries with the same id until the command expires.
    Raise PublishError(reason, permanent=True) when retrying cannot help.
    A transport may also have attach(service) (to call service.on_ack / on_link) and
    poll(now) (called at the start of every service.poll).
    """

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, expiry_s: int, correlation_id: str, response_topic: str
    ) -> bool: ...


class StateReader(Protocol):
    """What the service needs of the twin: a point's current value and quality label
    ("good", "stale", "bad", "offline", "no data"); None or KeyError when unknown.
    Optionally received_at(device_id, point_id) -> time of the latest good value."""

    def value(self, device_id: str, point_id: str) -> tuple[Any, str] | None: ...


class TwinStateReader:
    """StateReader over a TwinState (twinview.twin.state)."""

    def __init__(self, state: Any):
        self.state = state

    def value(self, device_id: str, point_id: str) -> tuple[Any, str] | None:
        try:
            rec = self.state.point(device_id, point_id)
        except KeyError:
            return None
        return rec.value, rec.quality.label

    def received_at(self, device_id: str, point_id: str) -> float | None:
        try:
            return self.state.point(device_id, point_id).good_recv_ts
        except KeyError:
            return None


# --- commands -----------------------------------------------------------------------


@dataclass
class Command:
    """One command and everything known about it. Read it; only the service changes it."""

    id: str
    device: str
    command: str
    args: dict[str, Any]
    user: str
    role: str
    state: str
    reason: str
    created: float
    updated: float
    expires_at: float
    timeout: float
    times: dict[str, float] = field(default_factory=dict)  # state -> when it was reached
    desired: dict[str, Any] = field(default_factory=dict)  # success point -> wanted value
    tolerance: float = 0.0
    topic: str = ""
    response_topic: str = ""
    attempts: int = 0  # publish attempts so far
    acked: bool = False
    deadline: float | None = None  # confirmation deadline: sent + timeout
    notes: list[str] = field(default_factory=list)  # what happened after the final state
    payload: bytes = field(default=b"", repr=False)
    spec: CommandSpec | None = field(default=None, repr=False)
    _interlock: Interlock | None = field(default=None, repr=False)
    _sending: bool = field(default=False, repr=False)
    _next_attempt: float = field(default=0.0, repr=False)
    _mismatch_seen: bool = field(default=False, repr=False)  # read something else since it was last dispatched
    _matched_before: bool = field(default=False, repr=False)  # already read the wanted value when sent
    _last_error: str = field(default="", repr=False)
    _ack_reason: str = field(default="", repr=False)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def in_flight(self) -> bool:
        return self.state not in FINAL

    @property
    def outcome(self) -> str:
        return outcome_of(self.state)

    @property
    def sent_at(self) -> float | None:
        return self.times.get(SENT)

    @property
    def waiting_for_broker(self) -> bool:
        """Requested, but not yet accepted by the broker (shown as 'sent pending')."""
        return self.state == REQUESTED and self.attempts > 0

    @property
    def display_state(self) -> str:
        return "sent pending" if self.waiting_for_broker else self.state.replace("_", " ")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "device": self.device, "command": self.command, "args": dict(self.args),
            "user": self.user, "role": self.role, "state": self.state, "reason": self.reason,
            "created": self.created, "updated": self.updated, "expires_at": self.expires_at,
            "timeout": self.timeout, "times": dict(self.times), "desired": dict(self.desired),
            "attempts": self.attempts, "acked": self.acked, "notes": list(self.notes),
        }  # fmt: skip


def initial_from(spec: CommandSpec, arg: CommandArg) -> str | None:
    """The point whose reported value an argument's input starts at, when it has no default.

    One rule for every view (desktop, page, headset): an argument starts at its
    default; else, when the command's success point reports that argument, at
    the value the device reports now; else it has no start value and must be
    entered (a number never silently starts at 0: that would stop a pump).
    """
    if arg.default is not None:
        return None
    if spec.success_point and spec.success_value == f"${arg.name}":
        return spec.success_point
    return None


def initial_value(spec: CommandSpec, arg: CommandArg, reported: Callable[[str], Any]) -> Any:
    """Where an argument's input starts (see initial_from); None when the person must enter it."""
    if arg.default is not None:
        return arg.default
    point = initial_from(spec, arg)
    if point is not None:
        value = reported(point)
        if value is not None:
            return value
    if arg.kind == "enum":
        return arg.states[0] if arg.states else None
    return None


def public_state(cmd: Command) -> dict[str, Any]:
    """What every view is told about a command: no payload, no internals."""
    return {
        "id": cmd.id, "device": cmd.device, "command": cmd.command, "args": dict(cmd.args), "user": cmd.user,
        "role": cmd.role, "state": str(cmd.state), "display": cmd.display_state, "reason": cmd.reason,
        "note": cmd.notes[-1] if cmd.notes else "", "updated": cmd.updated, "final": bool(cmd.final),
    }  # fmt: skip


@dataclass(frozen=True)
class DesiredValue:
    """Desired vs reported for one point of a device with a command in flight (inspector)."""

    point: str
    wanted: Any
    tolerance: float
    reported: Any
    quality: str
    command_id: str
    command: str
    state: str


Listener = Callable[[Command, str], None]  # (command, previous state); "" for a new command


def _arg_error(arg: CommandArg, value: Any) -> tuple[Any, str | None]:
    """(normalized value, error) for one argument value."""
    if arg.kind == "number":
        if type(value) is bool or not isinstance(value, (int, float)):
            return value, f"{arg.name} must be a number"
        if not math.isfinite(value):
            return value, f"{arg.name} must be a finite number"
        if arg.min is not None and value < arg.min:
            return value, f"{arg.name} must be at least {arg.min:g} (got {value:g})"
        if arg.max is not None and value > arg.max:
            return value, f"{arg.name} must be at most {arg.max:g} (got {value:g})"
        return value, None
    if arg.kind == "bool":
        if type(value) is not bool:
            return value, f"{arg.name} must be true or false"
        return value, None
    if arg.kind == "enum":
        if not isinstance(value, str) or value not in arg.states:
            return value, f"{arg.name} must be one of {', '.join(arg.states)} (got {value!r})"
        return value, None
    return value, f"{arg.name} has an unknown kind {arg.kind!r}"


def validate_args(spec: CommandSpec, args: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Arguments with defaults filled in, and every problem with them (unknown, missing, type, range)."""
    args = dict(args or {})
    errors: list[str] = []
    known = {a.name: a for a in spec.args}
    for name in args:
        if name not in known:
            errors.append(f"unknown argument {name!r}" + (f" (arguments: {', '.join(known)})" if known else " (the command takes none)"))
    out: dict[str, Any] = {}
    for arg in spec.args:
        if arg.name in args:
            value = args[arg.name]
        elif arg.default is not None:
            value = arg.default
        else:
            errors.append(f"missing argument {arg.name!r}")
            continue
        value, err = _arg_error(arg, value)
        if err:
            errors.append(err)
        else:
            out[arg.name] = value
    return out, errors


def parse_arg_value(arg: CommandArg, text: str) -> Any:
    """Convert a command-line 'K=V' value to the argument's type; raises ValueError."""
    t = text.strip()
    if arg.kind == "number":
        if not t.isascii():  # float() reads "４２" and "٤٣"; the documented form is ASCII
            raise ValueError(f"{arg.name} must be a number written with ASCII digits, not {text!r}")
        try:
            v = int(t)
        except ValueError:
            v = float(t)
        return v
    if arg.kind == "bool":
        low = t.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{arg.name} must be true or false, not {text!r}")
    return t


def parse_cli_args(spec: CommandSpec | None, items: Iterable[str]) -> dict[str, Any]:
    """['speed=40', 'mode=auto'] -> typed dict. Raises ValueError only for an item that is
    not NAME=VALUE; a value that does not convert stays text, so the service refuses it by name."""
    known = {a.name: a for a in spec.args} if spec is not None else {}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        name = name.strip()
        arg = known.get(name)
        try:
            out[name] = parse_arg_value(arg, value) if arg else value
        except ValueError:
            out[name] = value
    return out


def wanted_value(spec: CommandSpec, args: dict[str, Any]) -> tuple[Any, str | None]:
    """The success point's wanted value ("$arg" takes the argument's value), or an error."""
    v = spec.success_value
    if isinstance(v, str) and v.startswith("$") and not v.startswith("$$"):
        name = v[1:]
        if name not in args:
            return None, f"success value {v!r} names no argument of {spec.name!r}"
        return args[name], None
    if isinstance(v, str) and v.startswith("$$"):
        return v[1:], None
    return v, None


def matches(wanted: Any, reported: Any, tolerance: float = 0.0) -> bool:
    """Does a reported value satisfy the wanted one? Numbers within tolerance, else equal and same kind."""
    if reported is None:
        return False
    num = lambda v: isinstance(v, (int, float)) and type(v) is not bool  # noqa: E731
    if num(wanted) and num(reported):
        return math.isfinite(reported) and abs(reported - wanted) <= max(0.0, tolerance)
    if type(wanted) is bool or type(reported) is bool:
        return type(wanted) is bool and type(reported) is bool and wanted == reported
    if isinstance(wanted, str) and isinstance(reported, str):
        return wanted == reported
    return False


def check_command(device: Device, spec: CommandSpec) -> list[str]:
    """Problems in a command's definition (for the site checker): interlock, success value, role."""
    from .interlock import check_command_interlock

    errors = [f"interlock: {e}" for e in check_command_interlock(device, spec)]
    if spec.role not in ROLE_RANK:
        errors.append(f"unknown role {spec.role!r}")
    if spec.success_point:
        v = spec.success_value
        if isinstance(v, str) and v.startswith("$") and not v.startswith("$$") and v[1:] not in {a.name for a in spec.args}:
            errors.append(f"success value {v!r} names no argument of the command")
    if spec.expiry < MIN_EXPIRY_S:
        errors.append(f"expiry must be at least {MIN_EXPIRY_S} s")
    return errors


# --- the service --------------------------------------------------------------------


class CommandService:
    """Checks, sends, tracks and audits commands. See the module docstring for threads."""

    def __init__(
        self,
        site: Site,
        state: StateReader,
        transport: Transport,
        audit: AuditLog | str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        threaded: bool = True,
        retry_delay: float = 1.0,
        max_retry_delay: float = 5.0,
        keep: int = 200,
    ):
        self.site = site
        self.state = state
        self.transport = transport
        if not isinstance(audit, AuditLog):
            audit = AuditLog(audit if audit is not None else default_audit_path(site.name))
        self.audit = audit
        self.clock = clock
        self.threaded = threaded
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.on_event: Callable[[], None] | None = None  # called (any thread) when something is queued
        self.link_up: bool | None = None
        self.counters = {"unknown_acks": 0, "wrong_device_acks": 0, "bad_responses": 0, "audit_errors": 0, "publish_failures": 0}
        self._listeners: list[Listener] = []
        self._by_id: dict[str, Command] = {}
        self._inflight: dict[str, Command] = {}
        self._by_device: dict[str, set[str]] = {}
        self._recent: deque[Command] = deque()
        self._keep = keep
        self._watch: dict[str, Command] = {}  # timed out / expired: late acks and matches become notes
        self._changed: set[str] = set()
        self._inbox: deque[tuple] = deque()
        self._interlocks: dict[tuple[str, str], Interlock | str] = {}
        self._sender: _Sender | None = None
        self.unresolved: list[dict[str, Any]] = self._recover_unfinished()
        attach = getattr(transport, "attach", None)
        if callable(attach):
            attach(self)

    # --- public: owner thread ---------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call listener(command, previous_state) after each transition is on disk."""
        self._listeners.append(listener)

    def request(
        self, principal: Principal, device_id: str, command: str, args: dict[str, Any] | None = None, confirmed: bool = False
    ) -> Command:
        """Check and queue a command. Returns at once; a refused command is final and nothing is sent."""
        now = self.clock()
        args = dict(args or {})
        device = self.site.device(device_id)
        spec = next((c for c in device.commands if c.name == command), None) if device else None
        cmd = Command(
            id=uuid.uuid4().hex, device=str(device_id), command=str(command), args=args,
            user=principal.name, role=principal.role, state=REQUESTED, reason="", created=now, updated=now,
            expires_at=now + (spec.expiry if spec else 0.0), timeout=spec.timeout if spec else 0.0, spec=spec,
            topic=command_topic(self.site.topic_prefix, str(device_id), str(command)),
            response_topic=response_topic(self.site.topic_prefix, str(device_id)),
        )  # fmt: skip
        refusal = self._check(principal, device, spec, cmd, confirmed)
        if refusal is not None:
            return self._refuse(cmd, refusal, now)
        cmd.payload = encode_command(cmd)
        try:
            self._audit(cmd, REQUESTED, "", now, extra={"expires_at": cmd.expires_at, "timeout": cmd.timeout, "topic": cmd.topic})
        except OSError as exc:
            return self._refuse(cmd, f"the audit log cannot be written ({exc.strerror or exc}); nothing was sent", now, write=False)
        cmd.times[REQUESTED] = now
        cmd._next_attempt = now
        self._remember(cmd)
        self._inflight[cmd.id] = cmd
        self._by_device.setdefault(cmd.device, set()).add(cmd.id)
        self._changed.add(cmd.device)
        self._baseline(cmd)
        self._notify(cmd, "")
        if self.threaded:
            self._dispatch(cmd, now)
        return cmd

    def poll(self, now: float | None = None) -> set[str]:
        """Apply acks and send results, run deadlines and retries. Call once per frame.
        Returns the ids of devices whose command state changed since the last poll.
        Cost: queued events plus commands in flight."""
        now = self.clock() if now is None else now
        tpoll = getattr(self.transport, "poll", None)
        if callable(tpoll):
            tpoll(now)
        while self._inbox:
            self._apply(self._inbox.popleft(), now)
        for cmd in list(self._inflight.values()):
            self._step(cmd, now)
        if self._watch:
            for cmd in list(self._watch.values()):
                if now > cmd.expires_at + cmd.timeout:
                    del self._watch[cmd.id]
        changed, self._changed = self._changed, set()
        return changed

    def on_values(self, devices: Iterable[str | int]) -> None:
        """The twin changed for these devices (ids, or indices in site.devices order): check confirmations."""
        now = self.clock()
        n = len(self.site.devices)
        for d in devices:
            if isinstance(d, int):
                if not 0 <= d < n:
                    continue
                device_id = self.site.devices[d].id
            else:
                device_id = d
            for cid in list(self._by_device.get(device_id, ())):
                cmd = self._inflight.get(cid)
                if cmd is not None and cmd.state in (SENT, ACKNOWLEDGED):
                    self._check_confirmed(cmd, now)
            if self._watch:
                for cmd in [c for c in self._watch.values() if c.device == device_id]:
                    self._check_late_match(cmd, now)

    # --- public: any thread -----------------------------------------------------------

    def on_ack(self, command_id: str, status: str, reason: str = "", device: str | None = None) -> None:
        """A device answered (status 'accepted' or 'rejected'). Safe from any thread."""
        self._put(("ack", command_id, status, reason, device))

    def on_link(self, up: bool, detail: str = "") -> None:
        """The transport's connection went up or down. Safe from any thread."""
        self._put(("link", up, detail))

    def on_bad_response(self, detail: str = "") -> None:
        """A message on a response topic could not be decoded. Safe from any thread."""
        self._put(("bad", detail))

    # --- reading (owner thread) -------------------------------------------------------

    def get(self, command_id: str) -> Command | None:
        return self._by_id.get(command_id)

    def in_flight(self, device_id: str | None = None) -> list[Command]:
        if device_id is None:
            return list(self._inflight.values())
        return [self._inflight[c] for c in self._by_device.get(device_id, ()) if c in self._inflight]

    def pending_devices(self) -> frozenset[str]:
        """Devices with a command in flight (the scene's PENDING flag)."""
        return frozenset(d for d, ids in self._by_device.items() if ids)

    def recent(self, device_id: str | None = None, n: int = 20) -> list[Command]:
        """The latest commands, newest first (in flight and finished)."""
        out = []
        for cmd in reversed(self._by_id.values()):
            if device_id is None or cmd.device == device_id:
                out.append(cmd)
                if len(out) >= n:
                    break
        return out

    def desired(self, device_id: str) -> list[DesiredValue]:
        """Desired vs reported for the device's in-flight commands (the inspector)."""
        out = []
        for cmd in self.in_flight(device_id):
            for point, wanted in cmd.desired.items():
                got = self._read(device_id, point)
                reported, quality = got if got is not None else (None, "missing")
                out.append(DesiredValue(point, wanted, cmd.tolerance, reported, quality, cmd.id, cmd.command, cmd.state))
        return out

    def _recover_unfinished(self) -> list[dict[str, Any]]:
        """Commands a previous run left in flight: their outcome is unknown, and is said so.

        A viewer that stopped after "sent" cannot know whether the device acted. Such
        commands are not retried (that could actuate twice) nor called failed (they may
        have worked): each gets one audit note "outcome unknown", and the UI lists those
        of the last day.
        """
        last: dict[str, dict[str, Any]] = {}
        reported: set[str] = set()
        try:
            for rec in iter_audit(self.audit.path):
                cid = rec.get("id")
                if not isinstance(cid, str) or rec.get("site") not in (None, self.site.name):
                    continue
                if rec.get("event", "transition") == "transition":
                    last[cid] = rec
                elif str(rec.get("reason", "")).startswith(UNKNOWN_OUTCOME):
                    reported.add(cid)
        except OSError:
            self.counters["audit_errors"] += 1
            return []
        now = self.clock()
        unresolved = [
            rec for rec in last.values()
            if rec.get("state") not in FINAL and now - float(rec.get("ts") or 0.0) < UNRESOLVED_SHOWN_S
        ]  # fmt: skip
        # Still in flight in another live process that shares this log: not ours to call unknown.
        alive: dict[Any, bool] = {}
        for rec in unresolved:
            owner = rec.get("owner")
            if owner not in alive:
                alive[owner] = owner == self.audit.owner or owner_alive(self.audit.path, owner)
        unresolved = [rec for rec in unresolved if not alive[rec.get("owner")]]
        for rec in unresolved:
            if rec["id"] in reported:
                continue
            note = {k: rec.get(k) for k in ("id", "state", "user", "role", "site", "device", "command", "args", "desired")}
            who = f" (pid {rec['pid']})" if isinstance(rec.get("pid"), int) else ""
            note.update(ts=now, event="note", prev=None,
                        reason=f"{UNKNOWN_OUTCOME}: the process that sent it{who} stopped while this command was "
                               f"{rec.get('state')}; check the device before sending it again")  # fmt: skip
            try:
                self.audit.write(note)
            except OSError:
                self.counters["audit_errors"] += 1
        return unresolved

    def close(self) -> None:
        """Stop the sender thread and close the audit log. In-flight commands stay as they are."""
        if self._sender is not None:
            self._sender.stop()
            self._sender = None
        self.audit.close()

    # --- checks -----------------------------------------------------------------------

    def _interlock(self, device: Device, spec: CommandSpec) -> Interlock | str:
        key = (device.id, spec.name)
        lock = self._interlocks.get(key)
        if lock is None:
            try:
                lock = Interlock.parse(spec.interlock)
            except InterlockError as exc:
                lock = f"the interlock of {spec.name!r} is invalid ({exc})"
            self._interlocks[key] = lock
        return lock

    def _check(self, principal: Principal, device: Device | None, spec: CommandSpec | None, cmd: Command, confirmed: bool) -> str | None:
        if device is None:
            return f"unknown device {cmd.device!r}"
        if spec is None:
            names = ", ".join(c.name for c in device.commands) or "none"
            return f"{device.id} has no command {cmd.command!r} (commands: {names})"
        if principal.role not in ROLE_RANK:
            return f"unknown role {principal.role!r}"
        if not role_at_least(principal.role, spec.role):
            return f"role {principal.role} may not send {spec.name!r} (needs {spec.role} or above)"
        if spec.confirm and not confirmed:
            return f"{spec.name!r} must be confirmed by the user before it is sent"
        args, errors = validate_args(spec, cmd.args)
        if errors:
            return "invalid argument: " + "; ".join(errors)
        cmd.args = args
        if spec.success_point:
            wanted, err = wanted_value(spec, args)
            if err:
                return err
            cmd.desired = {spec.success_point: wanted}
            cmd.tolerance = float(spec.success_tolerance or 0.0)
        if spec.interlock:
            lock = self._interlock(device, spec)
            if isinstance(lock, str):
                return lock
            cmd._interlock = lock
            verdict = lock.evaluate(lambda p: self._read(device.id, p))
            if not verdict.ok:
                return self._interlock_reason(spec, verdict.reason)
        return None

    @staticmethod
    def _interlock_reason(spec: CommandSpec, why: str) -> str:
        if spec.interlock_text:
            return f"interlock: {spec.interlock_text} ({why})"
        return f"interlock: {why}"

    def _read(self, device_id: str, point_id: str) -> tuple[Any, str] | None:
        try:
            return self.state.value(device_id, point_id)
        except KeyError:
            return None

    # --- transitions ------------------------------------------------------------------

    def _record(self, cmd: Command, state: str, reason: str, now: float, event: str = "transition") -> dict[str, Any]:
        return {
            "ts": now, "event": event, "id": cmd.id, "state": state, "prev": cmd.state if event == "transition" else None,
            "user": cmd.user, "role": cmd.role, "site": self.site.name, "device": cmd.device, "command": cmd.command,
            "args": cmd.args, "desired": cmd.desired or None, "reason": reason, "attempts": cmd.attempts,
        }  # fmt: skip

    def _audit(self, cmd: Command, state: str, reason: str, now: float, event: str = "transition", extra: dict | None = None) -> None:
        rec = self._record(cmd, state, reason, now, event)
        if extra:
            rec.update(extra)
        self.audit.write(rec)

    def _refuse(self, cmd: Command, reason: str, now: float, write: bool = True) -> Command:
        cmd.state, cmd.reason, cmd.updated = REFUSED, reason, now
        cmd.times[REFUSED] = now
        if write:
            try:
                rec = self._record(cmd, REFUSED, reason, now)
                rec["prev"] = None
                self.audit.write(rec)
            except OSError:
                self.counters["audit_errors"] += 1
        self._remember(cmd)
        self._notify(cmd, "")
        return cmd

    def _to(self, cmd: Command, state: str, reason: str, now: float) -> None:
        """Move to a new state: audit line on disk first, then the state, then listeners."""
        if cmd.state == state:
            return
        try:
            self._audit(cmd, state, reason, now)
        except OSError:
            self.counters["audit_errors"] += 1  # the state is still shown: truth in the view first
        prev = cmd.state
        cmd.state, cmd.reason, cmd.updated = state, reason, now
        cmd.times[state] = now
        self._changed.add(cmd.device)
        if state in FINAL:
            self._inflight.pop(cmd.id, None)
            ids = self._by_device.get(cmd.device)
            if ids is not None:
                ids.discard(cmd.id)
                if not ids:
                    del self._by_device[cmd.device]
            if state in (TIMED_OUT, EXPIRED):
                self._watch[cmd.id] = cmd
        self._notify(cmd, prev)

    def _note(self, cmd: Command, text: str, now: float) -> None:
        cmd.notes.append(text)
        try:
            self._audit(cmd, cmd.state, text, now, event="note")
        except OSError:
            self.counters["audit_errors"] += 1
        self._changed.add(cmd.device)
        self._notify(cmd, cmd.state)

    def _notify(self, cmd: Command, prev: str) -> None:
        for listener in list(self._listeners):
            listener(cmd, prev)

    def _remember(self, cmd: Command) -> None:
        self._by_id[cmd.id] = cmd
        self._recent.append(cmd)
        while len(self._recent) > self._keep:
            old = self._recent[0]
            if old.in_flight:  # never forget a command in flight
                break
            self._recent.popleft()
            self._by_id.pop(old.id, None)
            self._watch.pop(old.id, None)

    # --- events -----------------------------------------------------------------------

    def _put(self, item: tuple) -> None:
        self._inbox.append(item)
        hook = self.on_event
        if hook is not None:
            try:
                hook()
            except Exception:  # a broken hook must not kill an I/O thread
                pass

    def _apply(self, item: tuple, now: float) -> None:
        kind = item[0]
        if kind == "published":
            _, cid, ok, reason, permanent = item
            cmd = self._inflight.get(cid)
            if cmd is not None:
                self._published(cmd, ok, reason, permanent, now)
        elif kind == "ack":
            _, cid, status, reason, device = item
            self._ack(cid, status, reason, device, now)
        elif kind == "link":
            self.link_up = bool(item[1])
            if item[1]:
                for cmd in self._inflight.values():
                    if cmd.state == REQUESTED and not cmd._sending:
                        cmd._next_attempt = now
        elif kind == "bad":
            self.counters["bad_responses"] += 1

    def _published(self, cmd: Command, ok: bool, reason: str, permanent: bool, now: float) -> None:
        cmd._sending = False
        if cmd.state != REQUESTED:
            return  # e.g. the device answered before the broker's PUBACK was seen
        if ok or cmd.acked:  # acked: the device has it, whatever the PUBACK said
            cmd.deadline = now + cmd.timeout
            how = f"accepted by the broker (attempt {cmd.attempts})" if ok else "the device answered, although the broker's acknowledgement was not seen"
            self._to(cmd, SENT, how, now)
            if cmd.acked:
                self._to(cmd, ACKNOWLEDGED, f"accepted by the device{cmd._ack_reason}", now)
                self._check_confirmed(cmd, now)
            return
        self.counters["publish_failures"] += 1
        cmd._last_error = reason or "broker unreachable"
        if permanent:
            self._to(cmd, FAILED, f"not sent: {cmd._last_error}", now)
            return
        delay = min(self.retry_delay * 2 ** max(0, cmd.attempts - 1), self.max_retry_delay)
        cmd._next_attempt = now + delay
        cmd.reason = f"waiting for the broker ({cmd._last_error}); retrying until it expires"
        self._changed.add(cmd.device)
        if cmd.attempts == 1:
            self._note(cmd, f"not sent yet: {cmd._last_error}; retrying with the same id until {_clock(cmd.expires_at)}", now)

    def _ack(self, cid: str, status: str, reason: str, device: str | None, now: float) -> None:
        cmd = self._by_id.get(cid)
        if cmd is None or cmd.state == REFUSED:
            self.counters["unknown_acks"] += 1  # another viewer's command, or forgotten
            return
        if device is not None and device != cmd.device:
            self.counters["wrong_device_acks"] += 1
            return
        if status not in ("accepted", "rejected"):
            self.counters["bad_responses"] += 1
            return
        said = f": {reason}" if reason else ""
        if cmd.final:
            late = f"device {status} the command after it was {cmd.state.replace('_', ' ')}{said}"
            if late not in cmd.notes:
                self._note(cmd, late, now)
            return
        if status == "rejected":
            if cmd.state == REQUESTED:  # an answer proves delivery
                self._to(cmd, SENT, "the device answered before the broker's acknowledgement was seen", now)
            self._to(cmd, REJECTED, f"rejected by the device{said}", now)
            return
        if cmd.acked:
            return  # a duplicate answer (QoS 1 is at least once)
        cmd.acked = True
        cmd._ack_reason = said
        if cmd.state == REQUESTED:
            if cmd._sending:
                return  # SENT then ACKNOWLEDGED when the publish result arrives
            cmd.deadline = now + cmd.timeout
            self._to(cmd, SENT, "the device answered before the broker's acknowledgement was seen", now)
        self._to(cmd, ACKNOWLEDGED, f"accepted by the device{said}", now)
        self._check_confirmed(cmd, now)

    # --- time -------------------------------------------------------------------------

    def _step(self, cmd: Command, now: float) -> None:
        if cmd.state == REQUESTED:
            if cmd._sending:
                return
            if now >= cmd.expires_at or cmd.expires_at - now < MIN_EXPIRY_S:
                why = f": {cmd._last_error}" if cmd._last_error else ""
                self._to(cmd, FAILED, f"could not be sent before it expired ({cmd.spec.expiry if cmd.spec else 0:g} s){why}", now)
                return
            if now >= cmd._next_attempt:
                self._dispatch(cmd, now)
            return
        if cmd.state in (SENT, ACKNOWLEDGED):
            if self._check_confirmed(cmd, now):
                return
            if cmd.state == SENT and now >= cmd.expires_at and (cmd.deadline is None or cmd.expires_at < cmd.deadline):
                self._to(cmd, EXPIRED, f"no answer from the device before the command expired at {_clock(cmd.expires_at)}; the broker will not deliver it any more", now)
                return
            if cmd.deadline is not None and now >= cmd.deadline:
                if self._matches_now(cmd):
                    point, wanted = next(iter(cmd.desired.items()))
                    before = "it already did before the command" if cmd._matched_before else "its value before the command was not known"
                    self._to(cmd, UNVERIFIED, (
                        f"{point} reads {_show(wanted)} as wanted, but {before}, and in {cmd.timeout:g} s the device "
                        "neither answered nor reported a change: nothing shows it received the command"), now)  # fmt: skip
                    return
                self._to(cmd, TIMED_OUT, self._timeout_reason(cmd), now)

    def _timeout_reason(self, cmd: Command) -> str:
        if not cmd.desired:
            return f"no answer from the device within {cmd.timeout:g} s"
        point, wanted = next(iter(cmd.desired.items()))
        got = self._read(cmd.device, point)
        seen = "missing" if got is None else f"{_show(got[0])} ({got[1]})"
        ack = "acknowledged, but " if cmd.acked else "not acknowledged; "
        return f"{ack}{point} did not reach {_show(wanted)} within {cmd.timeout:g} s (reported {seen})"

    def _dispatch(self, cmd: Command, now: float) -> None:
        """Publish (again) with the same id and payload, with the expiry that is left."""
        if cmd.attempts > 0 and cmd._interlock is not None and cmd.spec is not None:
            verdict = cmd._interlock.evaluate(lambda p: self._read(cmd.device, p))
            if not verdict.ok and not verdict.unknown:
                self._to(cmd, FAILED, "not sent: " + self._interlock_reason(cmd.spec, verdict.reason) + " (re-checked before retrying)", now)
                return
            if not verdict.ok:  # e.g. stale after an outage: wait for fresh values, until it expires
                cmd._last_error = f"waiting for the interlock's points: {verdict.reason}"
                cmd.reason = cmd._last_error
                cmd._next_attempt = now + min(self.retry_delay, self.max_retry_delay)
                self._changed.add(cmd.device)
                return
        remaining = int(math.floor(cmd.expires_at - now))
        if remaining < MIN_EXPIRY_S:
            return  # _step fails it
        cmd.attempts += 1
        cmd._sending = True
        self._baseline(cmd)  # a change counts only when it comes after this hand-over
        job = (cmd.id, cmd.topic, cmd.payload, remaining, cmd.response_topic)
        if self.threaded:
            if self._sender is None:
                self._sender = _Sender(self.transport, self._put)
            self._sender.submit(job)
        else:
            self._apply(("published", *_publish(self.transport, job)), now)

    def _check_confirmed(self, cmd: Command, now: float) -> bool:
        if not cmd.desired:
            if cmd.acked and cmd.state == ACKNOWLEDGED:
                self._to(cmd, CONFIRMED, "confirmed by the device's acknowledgement (the command has no success point to check)", now)
                return True
            return False
        point, wanted = next(iter(cmd.desired.items()))
        got = self._read(cmd.device, point)
        if got is None or got[1] != "good":
            return False
        if not matches(wanted, got[0], cmd.tolerance):
            cmd._mismatch_seen = True
            return False
        # Evidence that postdates the command: the device's answer for this id, or a change to the
        # wanted value after the command was handed over. A value that was already there, or a
        # first report of a value unknown until then, may be a coincidence.
        if not (cmd.acked or cmd._mismatch_seen):
            return False
        self._to(cmd, CONFIRMED, f"{point} reported {_show(got[0])} (wanted {_show(wanted)})", now)
        return True

    def _baseline(self, cmd: Command) -> None:
        """What the success point reads now, before the command can have acted (at the request and at
        each hand-over to the transport): matching already, or something else (a change may follow)."""
        if not cmd.desired:
            return
        point, wanted = next(iter(cmd.desired.items()))
        got = self._read(cmd.device, point)
        value = None if got is None else got[0]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return  # unknown: neither
        if matches(wanted, value, cmd.tolerance):
            cmd._matched_before, cmd._mismatch_seen = True, False  # whatever its quality: no news
        else:
            cmd._mismatch_seen = True

    def _matches_now(self, cmd: Command) -> bool:
        """Does the success point read the wanted value now, with good quality?"""
        if not cmd.desired:
            return False
        point, wanted = next(iter(cmd.desired.items()))
        got = self._read(cmd.device, point)
        return got is not None and got[1] == "good" and matches(wanted, got[0], cmd.tolerance)

    def _check_late_match(self, cmd: Command, now: float) -> None:
        point, wanted = next(iter(cmd.desired.items()), (None, None))
        if point is None:
            return
        got = self._read(cmd.device, point)
        if got is None or got[1] != "good":
            return
        if not matches(wanted, got[0], cmd.tolerance):
            cmd._mismatch_seen = True
            return
        if not cmd._mismatch_seen:
            return  # the value it always had (or the first one known): no news about this command
        del self._watch[cmd.id]
        self._note(cmd, f"{point} reported {_show(got[0])} {now - cmd.updated:.1f} s after the command was marked {cmd.state.replace('_', ' ')}", now)


def _show(v: Any) -> str:
    if type(v) is bool:
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v) if isinstance(v, str) else str(v)


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _publish(transport: Transport, job: tuple) -> tuple[str, bool, str, bool]:
    """(command id, ok, reason, permanent) for one publish attempt; never raises."""
    cid, topic, payload, expiry_s, resp = job
    try:
        ok = bool(transport.publish(topic, payload, qos=1, expiry_s=expiry_s, correlation_id=cid, response_topic=resp))
        return cid, ok, "" if ok else "broker unreachable", False
    except PublishError as exc:
        return cid, False, exc.reason, exc.permanent
    except Exception as exc:  # a transport bug must not kill the sender
        return cid, False, f"{type(exc).__name__}: {exc}", False


class _Sender:
    """One thread that runs publish attempts so that a slow broker never blocks a frame."""

    def __init__(self, transport: Transport, put: Callable[[tuple], None]):
        self._transport = transport
        self._put = put
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="twinview-command-sender", daemon=True)
        self._thread.start()

    def submit(self, job: tuple) -> None:
        self._jobs.put(job)

    def stop(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._put(("published", *_publish(self._transport, job)))
