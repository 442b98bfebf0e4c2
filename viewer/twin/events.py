"""The runtime's events, and the one bus every view, tool and test subscribes to.

Events are frozen dataclasses that carry indices, not objects: a view copies the
changed rows of the runtime's columns into its own buffers. Handlers run on the
runtime's thread, in subscription order; one that raises is logged and counted
and does not stop the others. `subscribe` returns a handle that unsubscribes;
`release(owner)` drops every subscription an owner made (a view closing).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import numpy as np

log = logging.getLogger("twinview.events")
_EMPTY = np.empty(0, np.int64)


@dataclass(frozen=True, slots=True)
class SamplesApplied:
    """Good samples applied in one step, every one of them (for stores and recorders)."""

    now: float
    rows: np.ndarray  # point rows, int64, in arrival order (a row may repeat)
    values: np.ndarray  # float64 in the twin's terms (0/1 bools, enum state index)
    times: np.ndarray  # the device's timestamp, else the receive time


@dataclass(frozen=True, slots=True)
class DevicesChanged:
    """What views redraw: devices whose look changed, points whose shown state changed."""

    now: float
    devices: np.ndarray  # unique device indices, int64
    points: np.ndarray = field(default_factory=lambda: _EMPTY)  # point rows whose value/quality/alarm changed
    motions: np.ndarray = field(default_factory=lambda: _EMPTY)  # motion entries whose target changed


@dataclass(frozen=True, slots=True)
class QualityChanged:
    """Points whose quality changed without a new value: silence, a link down, a device offline."""

    now: float
    rows: np.ndarray
    reason: str  # "silence" | "link" | "availability"


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """A connector's connection went up, down or is reconnecting."""

    now: float
    connector: str
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CommandChanged:
    """A command moved in its lifecycle (requested, sent, acknowledged, confirmed or an end)."""

    now: float
    device: str
    command: dict[str, Any]  # the command's public state (CommandService.describe)


@dataclass(frozen=True, slots=True)
class AlarmsChanged:
    """Alarms moved in their lifecycle (activated, cleared, acknowledged, shelved, ...) or a flood began or ended."""

    now: float
    alarms: tuple[dict[str, Any], ...]  # each changed alarm's public state (AlarmEngine.describe)
    floods: tuple[dict[str, Any], ...] = ()  # every area in flood now: area, since, count, first_out


@dataclass(frozen=True, slots=True)
class StateReset:
    """Every device's look changed at once (the twin was rebuilt, or jumped in time)."""

    now: float


E = TypeVar("E")
Handler = Callable[[Any], None]


class Subscription:
    """A handle to one subscription; close() removes it (twice is harmless)."""

    __slots__ = ("_bus", "kind", "handler", "owner")

    def __init__(self, bus: "EventBus", kind: type, handler: Handler, owner: object | None):
        self._bus, self.kind, self.handler, self.owner = bus, kind, handler, owner

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """Typed publish/subscribe on the runtime's thread; nothing is done for events nobody listens to."""

    def __init__(self) -> None:
        self._subs: dict[type, list[Subscription]] = defaultdict(list)
        self.errors = 0
        self.last_error = ""

    def subscribe(self, kind: type[E], handler: Callable[[E], None], owner: object | None = None) -> Subscription:
        sub = Subscription(self, kind, handler, owner)
        self._subs[kind].append(sub)
        return sub

    def release(self, owner: object) -> None:
        """Drop every subscription made on behalf of `owner`."""
        for kind in list(self._subs):
            self._subs[kind] = [s for s in self._subs[kind] if s.owner is not owner]
            if not self._subs[kind]:
                del self._subs[kind]

    def wants(self, kind: type) -> bool:
        """True when somebody listens for this kind (so the publisher may skip building it)."""
        return bool(self._subs.get(kind))

    def publish(self, event: object) -> None:
        for sub in tuple(self._subs.get(type(event), ())):
            try:
                sub.handler(event)
            except Exception as exc:  # one failing view must not stop the twin or the other views
                self.errors += 1
                self.last_error = f"{type(event).__name__} handler {getattr(sub.handler, '__qualname__', sub.handler)}: {type(exc).__name__}: {exc}"
                log.exception("event handler failed: %s", self.last_error)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.kind)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.kind]
