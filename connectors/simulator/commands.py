"""Commands to the embedded simulator, so the desktop demo is a closed loop without a broker.

SimulatorTransport implements the CommandService Transport protocol. publish()
takes the command (as a device would receive it: the JSON payload of
docs/commands.md) and returns at once; the next poll() hands it to the
simulator and answers like a device: accepted or rejected, de-duplicated by id,
and dropped unanswered when it arrives after expires_at (as the broker would
drop it). The simulator then reports the new values through its usual samples,
which is what confirms the command.

Like a careful device, the simulator (here and as an MQTT fleet) acts only on a
well-formed command: a string "id", a non-empty "user" and a numeric
"expires_at" still in the future (check_command_message). Anything else, e.g. a
bare `{}` that someone published on a command topic by hand, is rejected with
the reason and never acts.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict, deque
from typing import Any, Callable, Protocol


MAX_ID = 64
MAX_USER = 100


def check_command_message(body: Any, now: float) -> str:
    """Why a command message must not be acted on ("" when it may): no valid id, user or expiry."""
    if not isinstance(body, dict):
        return "not a command: a JSON object is expected"
    cid, user, expires = body.get("id"), body.get("user"), body.get("expires_at")
    if not isinstance(cid, str) or not 0 < len(cid) <= MAX_ID or not cid.isascii() or not cid.isprintable():
        return "refused: no valid command id"
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER:
        return "refused: no user (commands come through twinview, which names who sent them)"
    if type(expires) not in (int, float) or not math.isfinite(expires):
        return "refused: no expires_at"
    if expires < now:
        return "expired before it arrived"
    return ""


class CommandTarget(Protocol):
    """What the transport needs of the simulator."""

    def handle_command(self, device_id: str, command: str, args: dict | None = None) -> tuple[bool, str]: ...


class SimulatorTransport:
    """Transport over an in-process simulator; answers on the poll after the publish."""

    def __init__(self, simulator: CommandTarget, remember: int = 4096):
        self.simulator = simulator
        self._queue: deque[tuple[dict, str]] = deque()
        self._answers: OrderedDict[str, tuple[bool, str]] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self.on_ack: Callable[..., None] | None = None
        self.counters = {"published": 0, "handled": 0, "duplicates": 0, "expired": 0, "bad": 0}

    def attach(self, service: Any) -> None:
        self.on_ack = service.on_ack
        service.on_link(True, "embedded simulator")

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, expiry_s: int, correlation_id: str, response_topic: str
    ) -> bool:
        try:
            message = json.loads(payload)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            self.counters["bad"] += 1
            return False
        with self._lock:
            self._queue.append((message, correlation_id))
            self.counters["published"] += 1
        return True

    def poll(self, now: float) -> None:
        """Deliver what was published before this call; answer through the service."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        for message, correlation_id in batch:
            cid = str(message.get("id") or correlation_id)
            device = str(message.get("device", ""))
            expires_at = message.get("expires_at")
            if isinstance(expires_at, (int, float)) and now > expires_at:
                self.counters["expired"] += 1  # a late command must not actuate
                continue
            answer = self._answers.get(cid)
            why = check_command_message(message, now) if answer is None else ""
            if answer is not None:
                self.counters["duplicates"] += 1
            elif why:
                self.counters["bad"] += 1
                answer = (False, why)
            else:
                args = message.get("args") if isinstance(message.get("args"), dict) else {}
                try:
                    answer = self.simulator.handle_command(device, str(message.get("command", "")), args)
                except Exception as exc:  # noqa: BLE001 - a simulator bug is a rejection, not a crash
                    answer = (False, f"simulator error: {type(exc).__name__}: {exc}")
                self.counters["handled"] += 1
                self._answers[cid] = answer
                while len(self._answers) > self._remember:
                    self._answers.popitem(last=False)
            hook = self.on_ack
            if hook is not None:
                ok, reason = answer
                hook(cid, "accepted" if ok else "rejected", reason, device)
