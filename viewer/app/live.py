"""LiveSite: the live pipeline of one site, driven by whatever loop shows it.

connectors --(I/O threads)--> Inbox --(update(), on the loop's thread)--> TwinState
--> changed devices --> DeviceLook --> SiteView buffer writes (and web bridge).

update() is the only place twin state changes, and its cost follows the number
of events and changed devices, never the size of the site.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from twinview.connectors.base import Connector, Event, LinkState
from twinview.site import LoadedSite
from twinview.twin.inbox import Inbox
from twinview.twin.overlays import ALARM, PENDING, DeviceLook, evaluate_many
from twinview.twin.state import TwinState

Listener = Callable[[set[int], dict[int, DeviceLook]], None]


class LiveSite:
    """Twin state plus its sources, applied in batches by update()."""

    def __init__(self, loaded: LoadedSite, connectors: list[Connector] | None = None, history_seconds: float = 600.0):
        self.loaded = loaded
        self.site = loaded.site
        self.twin = TwinState(loaded.site, history_seconds=history_seconds)
        self.inbox: Inbox[Event] = Inbox(on_put=self._wake)
        self.connectors: list[Connector] = list(connectors or [])
        self.commands: Any = None  # CommandService, when commands are wired
        self.command_transport: Any = None
        self.principal: Any = None  # who acts from this view (None: look only until signed in)
        self.view: Any = None
        self.listeners: list[Listener] = []
        self.on_data: Callable[[], None] | None = None
        self.looks: dict[int, DeviceLook] = {}
        self._alarmed: set[int] = set()
        self._started = False
        self._woken = False

    # --- construction -------------------------------------------------------------

    @classmethod
    def from_args(cls, loaded: LoadedSite, args: Any) -> "LiveSite":
        """Sources named on the command line; the embedded simulator when none is."""
        from twinview.app.sources import connectors_from_args

        from twinview.app.sources import command_transport_from_args

        live = cls(loaded)
        live.connectors = connectors_from_args(loaded, live.twin, args)
        transport, principal = command_transport_from_args(loaded, live.connectors, args)
        if transport is not None:
            live.enable_commands(transport, principal, getattr(args, "audit", None))
        return live

    def enable_commands(self, transport: Any, principal: Any = None, audit_path: Any = None) -> None:
        """Route commands through a CommandService (roles, interlocks, audit) over `transport`."""
        from twinview.twin.commands import CommandService, TwinStateReader

        self.command_transport = transport
        self.commands = CommandService(self.site, TwinStateReader(self.twin), transport, audit_path)
        self.commands.on_event = self._wake
        self.principal = principal

    def attach(self, view: Any) -> None:
        """Show this twin in a SiteView: paint every device once, then only changes."""
        self.view = view
        self._apply_looks(set(range(len(self.site.devices))))

    # --- running ------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for connector in self.connectors:
            connector.start(self.inbox.put)

    def stop(self) -> None:
        if self.commands is not None:
            self.commands.close()
        stop_transport = getattr(self.command_transport, "stop", None)
        if callable(stop_transport):
            stop_transport()
        for connector in self.connectors:
            try:
                connector.stop()
            except Exception:
                pass
        self._started = False

    def _wake(self) -> None:
        """Called from I/O threads when data arrives: ask for a frame (rendercanvas only sets a flag)."""
        if not self._woken and self.on_data is not None:
            self._woken = True
            self.on_data()

    def update(self, now: float | None = None) -> set[int]:
        """Drain the inbox, apply it, repaint what changed. Returns the changed device indices."""
        if not self._started:
            self.start()
        self._woken = False
        now = time.time() if now is None else now
        events = self.inbox.drain()
        changed = self.twin.apply(events) if events else set()
        changed |= self.twin.tick(now)
        if self.commands is not None:
            transport_poll = getattr(self.command_transport, "poll", None)
            if callable(transport_poll):
                transport_poll(now)
            if changed:
                self.commands.on_values(changed)
            for device_id in self.commands.poll(now):  # devices whose command state changed
                index = self.site_index(device_id)
                if index is not None:
                    changed.add(index)
        if changed:
            self._apply_looks(changed)
        return changed

    def run_for(self, seconds: float, step: float = 0.05) -> None:
        """Run the pipeline headless for a while (render --wait, screenshots)."""
        self.start()
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.update()
            if time.monotonic() >= end:
                break
            time.sleep(step)

    def _apply_looks(self, indices: set[int]) -> None:
        looks = evaluate_many(self.twin, indices)
        pending = self.commands.pending_devices() if self.commands is not None else ()
        for i, look in looks.items():
            if look.flags & ALARM:
                self._alarmed.add(i)
            else:
                self._alarmed.discard(i)
        self.looks.update(looks)
        view = self.view
        if view is not None and looks:
            idx = np.fromiter(looks.keys(), dtype=np.int64, count=len(looks))
            rgba = np.zeros((len(idx), 4), np.float32)
            flags = np.zeros(len(idx), np.int64)
            for k, look in enumerate(looks.values()):
                if look.rgba is not None:
                    rgba[k] = look.rgba
                flags[k] = look.flags | (PENDING if self.site.devices[idx[k]].id in pending else 0)
            view.set_looks(idx, rgba, flags)
            now = view.now()
            for i, look in looks.items():
                if look.motions:
                    view.set_motion(i, look.motions, now)
                if look.label:
                    view.set_label(i, look.label)
        for listener in self.listeners:
            listener(indices, looks)

    # --- reading (UI) -------------------------------------------------------------

    @property
    def needs_frames(self) -> bool:
        """True while something blinks (alarms) or a command is in flight."""
        if self._alarmed:
            return True
        return bool(self.commands is not None and self.commands.pending_devices())

    def site_index(self, device_id: str) -> int | None:
        try:
            return self.twin.index(device_id)
        except KeyError:
            return None

    def request_command(self, device_id: str, command: str, args: dict, confirmed: bool):
        """Ask the command service on behalf of the signed-in principal (refused if none)."""
        from twinview.twin.auth import Principal

        principal = self.principal or Principal("anonymous", "viewer")
        return self.commands.request(principal, device_id, command, args, confirmed)

    def point_state(self, device_id: str, point_id: str):
        try:
            return self.twin.point(device_id, point_id)
        except KeyError:
            return None

    def device_summary(self, index: int) -> str:
        quality = self.twin.device_quality(index)
        look = self.looks.get(index)
        parts = [quality.name.lower()]
        if self.twin.device_alarm(index):
            parts.append("ALARM")
        if look is not None and look.label:
            parts.append(look.label)
        return "  ·  ".join(parts)

    def link_states(self) -> dict[str, LinkState]:
        return dict(self.twin.links)
