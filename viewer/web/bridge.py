"""WebBridge: one port for the page (HTTP GET of static files) and the live websocket (/ws).

Threads: the server runs an asyncio loop in its own thread. The update loop
(render loop or the headless loop of serve.py) pushes what changed with
publish_changes(); it never waits on a client. Commands that pages send are
queued; the update loop takes them (take_commands) and answers (send_to).

Fan-out without queues: each change batch gets a sequence number and is kept in
a short ring of (seq, device indices); every device's latest entry is kept
encoded once. A client remembers the seq it has seen; when it is ready for more
(at most max_rate messages per second) it gets one delta with the latest entry
of every device changed since, so a slow client skips intermediate values
instead of growing a queue. A client that fell behind the ring gets a fresh
snapshot. Clients at the same seq share one encoded message.

Security: read-only unless the connection signed in (a session cookie from
POST /session, or the token as its first message); sign-ins limited per client
address; Host checked against the served names (guard.py: DNS rebinding) on
HTTP and websocket alike; Origin checked (same origin or a configured list);
security headers on every response; HTTPS/WSS with an ssl context; message size capped (max_size: the
connection is closed with 1009); malformed messages are refused with an error
message and counted, and a client that keeps sending them is disconnected.
See docs/web.md for the protocol.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import http
import itertools
import logging
import re
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from twinview.security.ratelimit import SignInLimiter
from twinview.twin.inbox import Inbox

from .assets import content_type
from .httpcache import EncodedFiles, accepts_gzip, etag_matches
from .protocol import BadMessage, device_entry, devices_message, dumps, parse_client_message
from . import guard

log = logging.getLogger("twinview.web")
# websockets logs every frame at DEBUG, and a first-message sign-in carries a token: whatever
# level the application sets, DEBUG records of this logger are dropped, so no token reaches a log.
_protocol_log = logging.getLogger("twinview.web.protocol")
_protocol_log.addFilter(lambda record: record.levelno > logging.DEBUG)

WS_PATH = "/ws"
PROTOCOL = 1
RING = 64  # change batches kept for deltas; a client further behind gets a snapshot
MAX_MESSAGE_BYTES = 64 * 1024
BAD_MESSAGE_LIMIT = 50  # refused messages before a client is disconnected
RATE_BURST, RATE_PER_S = 40.0, 20.0  # incoming messages per client
SEND_BURST = 2.0  # state messages a client may get back to back (on average max_rate per second)
OUTBOX_LIMIT = 256  # control messages (command states, errors) waiting for one client
RECENT_COMMANDS = 50
HISTORY_MAX_SAMPLES = 2000  # a history answer carries at most this many (the newest)

Authenticator = Callable[[str], Any]  # token -> principal with .role (and .name), or None
HistoryProvider = Callable[..., tuple]  # (device, point, since) -> (times, values[, source, window]), oldest first


@dataclass(frozen=True)
class CommandRequest:
    """A command a page asked for, queued for the update loop."""

    client: int
    principal: Any  # what the authenticator returned; None for a read-only connection
    device: str
    command: str
    args: dict
    confirmed: bool
    ref: str | int | None
    origin: str


@dataclass(frozen=True)
class AlarmRequest:
    """An alarm action (ack, shelve, unshelve) a page asked for, queued for the update loop."""

    client: int
    principal: Any  # None for a read-only connection (refused and audited by the alarm engine)
    action: str
    alarm: str
    seconds: float
    reason: str
    ref: str | int | None


@dataclass
class _Client:
    id: int
    ws: ServerConnection
    origin: str
    sent: int = -1  # seq of the last state this client has
    principal: Any = None
    messages: int = 0
    bad: int = 0
    tokens: float = RATE_BURST
    stamp: float = field(default_factory=time.monotonic)
    last_send: float = 0.0  # when send_tokens was last refilled
    send_tokens: float = 1.0
    outbox: deque = field(default_factory=lambda: deque(maxlen=OUTBOX_LIMIT))
    past: bool = False  # showing a past instant: no live deltas until it asks for live again
    poke: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class BridgeStats:
    connections: int = 0
    clients: int = 0
    messages_in: int = 0
    refused: int = 0
    oversize: int = 0
    disconnected_for_abuse: int = 0
    auth_ok: int = 0
    auth_failed: int = 0
    commands: int = 0
    snapshots: int = 0
    deltas: int = 0
    bytes_sent: int = 0
    http_requests: int = 0
    http_refused: int = 0
    origin_refused: int = 0
    host_refused: int = 0
    auth_limited: int = 0
    last_refusal: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class WebBridge:
    """HTTP + websocket server of the live twin; see the module docstring."""

    def __init__(
        self,
        device_ids: list[str],
        files: Mapping[str, Path | bytes] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticate: Authenticator | None = None,
        allowed_origins: Iterable[str] = (),
        max_rate: float = 10.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        site_name: str = "",
        compression: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        allowed_hosts: Iterable[str] | None = None,
        on_security_event: Callable[[dict], None] | None = None,  # sign-ins and refusals, for the audit log
        limiter: SignInLimiter | None = None,
    ):
        self.device_ids = list(device_ids)
        self._index = {d: i for i, d in enumerate(self.device_ids)}
        self.files: dict[str, Path | bytes] = dict(files or {})
        self.host, self.port = host, port
        self.authenticate = authenticate
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        self.max_rate = float(max_rate)
        self.max_message_bytes = int(max_message_bytes)
        self.site_name = site_name
        self.compression = compression
        self.ssl_context = ssl_context
        # The Host names this server answers to (default: loopback and the bound address); '*' allows any.
        self.allowed_hosts = guard.AllowedHosts(allowed_hosts if allowed_hosts is not None else (*guard.LOOPBACK_HOSTS, host))
        self.on_security_event = on_security_event
        self.limiter = limiter or SignInLimiter()
        self.sessions = guard.Sessions()
        self._hosts_warned: set[str] = set()
        self.stats = BridgeStats()
        self.metrics: Callable[[], str] | None = None  # Prometheus text for /metrics (set by the server)
        self.commands: Inbox[CommandRequest] = Inbox(maxlen=1024)
        self.time_requests: Inbox[tuple[int, Any]] = Inbox(maxlen=1024)  # (client, seek/live message)
        self.alarm_actions: Inbox[AlarmRequest] = Inbox(maxlen=1024)
        self._alarms_snapshot: str | None = None  # the latest "alarms" snapshot, sent to each page that connects

        self._lock = threading.Lock()
        self._fragments: list[str | None] = [None] * len(self.device_ids)
        self._seq = 0
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=RING)
        self._cache: dict[tuple[int, int], bytes] = {}
        self._recent_commands: deque[str] = deque(maxlen=RECENT_COMMANDS)
        self._wake_pending = False

        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._csp = _content_security_policy(self.files.get("index.html"))
        # (device, point) -> (times, values): answers pages' history requests (trend charts)
        self.history_provider: HistoryProvider | None = None
        self._encoded = EncodedFiles()
        # device -> its recent commands from the audit log (the page's command log)
        self.command_log_provider: Callable[[str], list] | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> "WebBridge":
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="twinview-web", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("web bridge did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the port. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is not None and self._stop_event is not None and loop.is_running():
            loop.call_soon_threadsafe(self._stop_event.set)
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "WebBridge":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def secure(self) -> bool:
        return self.ssl_context is not None

    def url_for(self, host: str | None = None) -> str:
        host = host or self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'https' if self.secure else 'http'}://{host}:{self.port}/"

    @property
    def url(self) -> str:
        return self.url_for()

    @property
    def ws_url(self) -> str:
        base = self.url_for()
        return ("wss" if self.secure else "ws") + base[base.index(":") : -1] + WS_PATH

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self._process_response,
            ssl=self.ssl_context,
            logger=_protocol_log,
            max_size=self.max_message_bytes,
            max_queue=4,
            compression=self.compression,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            server_header="twinview",
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop_event.wait()
            for client in list(self._clients.values()):
                client.poke.set()
            server.close(close_connections=True)
            await server.wait_closed()

    # --- feeding (update loop thread) ----------------------------------------------

    def publish_changes(
        self,
        looks: Mapping[int, Any],
        points: Mapping[int, Iterable[tuple[str, Any, str, float | None, bool]]],
    ) -> None:
        """Record new looks of changed devices and wake the senders.

        looks: device index -> DeviceLook (rgba, flags, motions, label);
        points: device index -> (point id, value, quality label, timestamp, alarm) tuples.
        Called from the update loop; encodes each entry once, whatever the number of clients.
        """
        if not looks:
            return
        encoded = []
        for i, look in looks.items():
            encoded.append(
                (i, device_entry(self.device_ids[i], look.rgba, look.flags, look.label, look.motions, points.get(i, ())))
            )
        idx = np.fromiter((i for i, _ in encoded), np.int64, len(encoded))
        with self._lock:
            for i, text in encoded:
                self._fragments[i] = text
            self._seq += 1
            self._ring.append((self._seq, idx))
            self._cache.clear()
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._call_soon(self._wake_all)

    def publish_command(self, state: Mapping[str, Any]) -> None:
        """Tell every page about a command's state (requested, sent, confirmed, ...)."""
        text = dumps({"type": "command_state", **state})
        with self._lock:
            self._recent_commands.append(text)
        self._call_soon(self._queue_all, text)

    def publish_status(self, status: Mapping[str, Any]) -> None:
        """Tell every page how the twin is doing: points by quality, links, counted errors."""
        self._call_soon(self._queue_all, dumps({"type": "status", **status}))
    def publish_alarms(self, snapshot: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> None:
        """Keep the alarm list's snapshot for pages that connect later; send `changes` to every page now.

        Both are {"type": "alarms", "kind": "snapshot" | "changes", "alarms": [...], "floods": [...],
        "areas": {area: active count}}; a page replaces its list with a snapshot and merges changes.
        """
        text = dumps(snapshot)
        with self._lock:
            self._alarms_snapshot = text
        self._call_soon(self._queue_all, dumps(changes) if changes is not None else text)

    def take_alarm_actions(self) -> list[AlarmRequest]:
        """Alarm actions pages asked for since the last call (update loop thread)."""
        return self.alarm_actions.drain()

    def send_to(self, client: int, message: Mapping[str, Any]) -> None:
        """Send one control message to one page (thread-safe; dropped if it has gone)."""
        self._call_soon(self._queue_one, client, dumps(message))

    def show_past(self, client_id: int, message: str) -> None:
        """Send one page the twin at a past instant and hold its live deltas (thread-safe)."""

        def go() -> None:
            client = self._clients.get(client_id)
            if client is not None:
                client.past = True
                client.outbox.append(message)
                client.poke.set()

        self._call_soon(go)

    def show_live(self, client_id: int) -> None:
        """Back to live for one page: a fresh snapshot, then deltas again (thread-safe)."""

        def go() -> None:
            client = self._clients.get(client_id)
            if client is not None:
                client.past = False
                client.sent = -1  # the next message is a whole snapshot of the present
                client.poke.set()

        self._call_soon(go)

    def take_time_requests(self) -> list[tuple[int, Any]]:
        return self.time_requests.drain()

    def take_commands(self) -> list[CommandRequest]:
        """Commands pages asked for since the last call (update loop thread)."""
        return self.commands.drain()

    def client_count(self) -> int:
        return len(self._clients)

    def principals(self) -> dict[int, Any]:
        return {c.id: c.principal for c in list(self._clients.values())}

    def _call_soon(self, fn: Callable, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed between the check and the call
            pass

    # --- asyncio side -------------------------------------------------------------------

    def _wake_all(self) -> None:
        with self._lock:
            self._wake_pending = False
        for client in self._clients.values():
            client.poke.set()

    def _queue_all(self, text: str) -> None:
        for client in self._clients.values():
            client.outbox.append(text)
            client.poke.set()

    def _queue_one(self, client_id: int, text: str) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            client.outbox.append(text)
            client.poke.set()

    def _pull(self, client: _Client) -> bytes | None:
        """The message that brings this client up to date, or None when it is (or shows the past)."""
        if client.past:
            return None
        with self._lock:
            seq = self._seq
            if client.sent >= seq:
                return None
            key = (client.sent, seq)
            cached = self._cache.get(key)
            if cached is None:
                ring = self._ring
                if client.sent >= 0 and ring and ring[0][0] <= client.sent + 1:
                    batches = [idx for s, idx in ring if s > client.sent]
                    idx = batches[0] if len(batches) == 1 else np.unique(np.concatenate(batches))
                    frags = [self._fragments[i] for i in idx.tolist()]
                    kind = "delta"
                else:
                    frags = [f for f in self._fragments if f is not None]
                    kind = "snapshot"
                commands = list(self._recent_commands) if kind == "snapshot" else None
            client.sent = seq
        if cached is not None:
            return cached
        extra = ""
        if commands is not None:
            extra = ',"commands":[' + ",".join(commands) + "]"
        message = devices_message(kind, seq, frags, extra).encode("utf-8")
        with self._lock:
            if self._seq == seq:
                self._cache[key] = message
        return message

    async def _send(self, client: _Client, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        await client.ws.send(data, text=True)
        self.stats.bytes_sent += len(data)
        if data.startswith(b'{"type":"delta"'):
            self.stats.deltas += 1
        elif data.startswith(b'{"type":"snapshot"'):
            self.stats.snapshots += 1

    async def _sender(self, client: _Client) -> None:
        """Control messages first, then state messages: max_rate per second on average.

        A token bucket (SEND_BURST deep) rather than a fixed gap between sends, so a
        delta leaves as soon as its change is published, even when the update loop's
        ticks jitter around the client's rate.
        """
        rate = self.max_rate
        hello = {
            "type": "hello", "protocol": PROTOCOL, "site": self.site_name, "client": client.id,
            "actuation": self.authenticate is not None, "max_message_bytes": self.max_message_bytes,
            "max_rate": self.max_rate,
        }  # fmt: skip
        await self._send(client, dumps(hello))
        client.sent = -1
        message = self._pull(client)
        if message is not None:
            await self._send(client, message)
        else:  # nothing published yet: an empty snapshot still tells the page it is in sync
            await self._send(client, devices_message("snapshot", self._seq, ()))
        with self._lock:
            alarms = self._alarms_snapshot
        if alarms is not None:
            await self._send(client, alarms)
        client.last_send = time.monotonic()
        client.send_tokens = 1.0
        stop = self._stop_event
        while not (stop is not None and stop.is_set()):
            await client.poke.wait()
            client.poke.clear()
            while client.outbox:
                await self._send(client, client.outbox.popleft())
            if client.sent >= self._seq:
                continue
            if rate > 0:
                now = time.monotonic()
                client.send_tokens = min(SEND_BURST, client.send_tokens + (now - client.last_send) * rate)
                client.last_send = now
                if client.send_tokens < 1.0:
                    await asyncio.sleep((1.0 - client.send_tokens) / rate)
                    client.send_tokens, client.last_send = 1.0, time.monotonic()
                client.send_tokens -= 1.0
            message = self._pull(client)
            if message is not None:
                await self._send(client, message)

    async def _handler(self, ws: ServerConnection) -> None:
        origin = (guard.one(ws.request.headers, "Origin") or "") if ws.request else ""
        client = _Client(next(self._ids), ws, origin)
        self._session_principal(client)
        self._clients[client.id] = client
        self.stats.connections += 1
        self.stats.clients = len(self._clients)
        sender = asyncio.create_task(self._sender(client))
        try:
            async for data in ws:
                try:
                    self._receive(client, data)
                except Exception:  # a bug here must cost one message, not the connection
                    log.exception("web bridge: message handling failed")
                    self._refuse(client, "internal_error", "the server could not handle this message")
                if client.bad > BAD_MESSAGE_LIMIT:
                    self.stats.disconnected_for_abuse += 1
                    await ws.close(1008, "too many refused messages")
                    break
        except ConnectionClosed:
            pass
        finally:
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == 1009:
                self.stats.oversize += 1
                self.stats.refused += 1
                self.stats.last_refusal = f"message larger than {self.max_message_bytes} bytes: connection closed"
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, ConnectionClosed):
                pass
            except Exception:  # a send failed as the client went away
                log.debug("sender ended with an error", exc_info=True)
            self._clients.pop(client.id, None)
            self.stats.clients = len(self._clients)

    def _refuse(self, client: _Client, code: str, reason: str, ref: Any = None) -> None:
        client.bad += 1
        self.stats.refused += 1
        self.stats.last_refusal = f"{code}: {reason}"
        message = {"type": "error", "code": code, "message": reason}
        if ref is not None:
            message["ref"] = ref
        client.outbox.append(dumps(message))
        client.poke.set()

    def _receive(self, client: _Client, data: str | bytes) -> None:
        first = client.messages == 0
        client.messages += 1
        self.stats.messages_in += 1
        now = time.monotonic()
        client.tokens = min(RATE_BURST, client.tokens + (now - client.stamp) * RATE_PER_S)
        client.stamp = now
        if client.tokens < 1.0:
            self._refuse(client, "rate_limited", f"more than {RATE_PER_S:g} messages per second")
            return
        client.tokens -= 1.0
        try:
            msg = parse_client_message(data)
        except BadMessage as exc:
            self._refuse(client, exc.code, str(exc))
            return
        if msg.type == "ping":
            client.outbox.append(dumps({"type": "pong", "ref": msg.ref, "seq": self._seq}))
            client.poke.set()
        elif msg.type == "auth":
            self._auth(client, msg.token, first, msg.ref)
        elif msg.type == "history":
            self._history(client, msg)
        elif msg.type == "command_log":
            self._command_log(client, msg)
        elif msg.type in ("seek", "live"):
            self.time_requests.put((client.id, msg))  # answered on the runtime's thread (the history store)
        elif msg.type == "alarm_action":
            self.alarm_actions.put(AlarmRequest(client.id, client.principal, msg.action, msg.alarm, msg.seconds,
                                                msg.reason, msg.ref))  # fmt: skip
        else:
            self._command(client, msg)

    def _auth(self, client: _Client, token: str, first: bool, ref: Any) -> None:
        if not first:
            self._refuse(client, "auth_not_first", "authentication must be the first message of a connection", ref)
            return
        if self.authenticate is None:
            self._refuse(client, "no_actuation", "this server is read-only: it accepts no logins", ref)
            return
        principal, refusal = self._sign_in(token, _address(client.ws), "websocket")
        if principal is None:
            self._refuse(client, refusal[0], refusal[1] + ("; the connection stays read-only" if refusal[0] == "auth_failed" else ""), ref)
            return
        client.principal = principal
        reply = {"type": "auth_ok", "user": _principal_name(principal), "role": getattr(principal, "role", ""), "ref": ref}
        client.outbox.append(dumps(reply))
        client.poke.set()

    def _history(self, client: _Client, msg: Any) -> None:
        """Answer a trend chart's request with the point's recent history (read-only)."""
        if msg.device not in self._index:
            self._refuse(client, "unknown_device", f"no device {msg.device[:60]!r} in this site", msg.ref)
            return
        asyncio.ensure_future(self._answer_history(client, msg.device, msg.point, msg.ref, msg.since))

    async def _answer_history(self, client: _Client, device: str, point: str, ref: Any, since: float | None) -> None:
        times: list = []
        values: list = []
        source, window = "none", 0.0
        provider = self.history_provider
        if provider is not None:
            try:  # the provider may wait for the update loop or read a store: never on the event loop itself
                got = await asyncio.get_running_loop().run_in_executor(None, provider, device, point, since)
                t, v = got[0], got[1]
                source, window = (got[2], got[3]) if len(got) > 3 else ("memory", 0.0)
            except KeyError:
                self._refuse(client, "bad_field", f"no point {point[:60]!r} on {device[:60]!r}", ref)
                return
            except Exception:  # a provider error costs this answer, never the connection
                log.exception("history provider failed")
                t, v = (), ()
            times = [_round_time(x) for x in list(t)[-HISTORY_MAX_SAMPLES:]]
            values = [_finite_or_none(x) for x in list(v)[-HISTORY_MAX_SAMPLES:]]
        reply = {"type": "history", "ref": ref, "device": device, "point": point, "now": time.time(),
                 "since": since, "source": source, "window": _finite_or_none(window), "t": times, "v": values}  # fmt: skip
        client.outbox.append(dumps(reply))
        client.poke.set()

    def _command_log(self, client: _Client, msg: Any) -> None:
        """Answer with a device's recent commands (read from the audit log off the event loop)."""
        if msg.device not in self._index:
            self._refuse(client, "unknown_device", f"no device {msg.device[:60]!r} in this site", msg.ref)
            return
        asyncio.ensure_future(self._answer_command_log(client, msg.device, msg.ref))

    async def _answer_command_log(self, client: _Client, device: str, ref: Any) -> None:
        entries: list = []
        provider = self.command_log_provider
        if provider is not None:
            try:
                entries = await asyncio.get_running_loop().run_in_executor(None, provider, device)
            except Exception:  # an unreadable audit log costs this answer, never the connection
                log.exception("command log provider failed")
        try:
            text = dumps({"type": "command_log", "ref": ref, "device": device, "commands": entries})
        except ValueError:
            text = dumps({"type": "command_log", "ref": ref, "device": device, "commands": []})
        client.outbox.append(text)
        client.poke.set()

    def _command(self, client: _Client, msg: Any) -> None:
        if msg.device not in self._index:
            self._refuse(client, "unknown_device", f"no device {msg.device[:60]!r} in this site", msg.ref)
            return
        self.stats.commands += 1
        request = CommandRequest(
            client.id, client.principal, msg.device, msg.command, dict(msg.args or {}), msg.confirmed, msg.ref, client.origin
        )
        self.commands.put(request)
        reply = {"type": "command_queued", "ref": msg.ref, "device": msg.device, "command": msg.command}
        client.outbox.append(dumps(reply))
        client.poke.set()

    # --- signing in -------------------------------------------------------------------

    def _check_token(self, token: str) -> Any:
        try:
            return self.authenticate(token) if self.authenticate is not None else None
        except Exception:  # an authenticator error is a refusal, never a crash
            log.exception("authenticator failed")
            return None

    def _sign_in(self, token: str, address: str, via: str) -> tuple[Any, tuple[str, str, int]]:
        """(principal, None) or (None, (code, message, HTTP status)); limited per address, audited."""
        wait = self.limiter.check(address)
        if wait > 0:
            self.stats.auth_limited += 1
            return None, ("rate_limited", self.limiter.message(wait), 429)
        principal = self._check_token(token)
        if principal is None:
            self.stats.auth_failed += 1
            locked = self.limiter.failed(address)
            self._security_event("sign_in_failed", address, via, "unknown or expired token")
            if locked:
                self._security_event("sign_in_locked", address, via, self.limiter.message(self.limiter.window))
            return None, ("auth_failed", "unknown or expired token", 401)
        self.limiter.succeeded(address)
        self.stats.auth_ok += 1
        self._security_event("signed_in", address, via, "", principal)
        return principal, None

    def _security_event(self, state: str, address: str, via: str, reason: str, principal: Any = None) -> None:
        """One audit record per sign-in, failure and lock-out (never the token)."""
        if state != "signed_in":
            log.warning("web %s from %s (%s)%s", state.replace("_", " "), address, via, f": {reason}" if reason else "")
        if self.on_security_event is None:
            return
        record = {
            "event": "sign_in", "state": state, "outcome": "succeeded" if state == "signed_in" else "failed",
            "user": _principal_name(principal) if principal is not None else "", "role": getattr(principal, "role", ""),
            "site": self.site_name, "address": address, "via": via,
            "reason": f"from {address} ({via})" + (f": {reason}" if reason else ""),
        }  # fmt: skip
        try:
            self.on_security_event(record)
        except Exception:  # auditing must not break the server; the failure is logged
            log.exception("security event handler failed")

    def _session_principal(self, client: _Client) -> None:
        """A websocket whose handshake carried a session cookie acts as that session's user."""
        request = client.ws.request
        if request is None or self.authenticate is None:
            return
        sid = guard.read_cookie(guard.one(request.headers, "Cookie"), guard.cookie_name(self.port, self.secure))
        if sid is None:
            return
        token = self.sessions.token(sid)
        principal = self._check_token(token) if token is not None else None
        if principal is None:  # expired, revoked, or from a previous run of the server
            self.sessions.drop(sid)
            message = {"type": "error", "code": "session_ended", "message": "signed out: sign in again"}
        else:
            client.principal = principal
            message = {"type": "auth_ok", "user": _principal_name(principal), "role": getattr(principal, "role", ""), "ref": None}
        client.outbox.append(dumps(message))
        client.poke.set()

    def _session_request(self, connection: ServerConnection, request: Request) -> Response:
        """POST /session (Authorization: Bearer TOKEN) signs in; DELETE /session signs out."""
        name = guard.cookie_name(self.port, self.secure)
        if request.method == "DELETE":
            self.sessions.drop(guard.read_cookie(guard.one(request.headers, "Cookie"), name))
            return _json_response(200, {"ok": True}, guard.set_cookie(name, "", self.secure, max_age=0))
        if request.method != "POST":
            return _json_response(405, {"error": "use POST to sign in, DELETE to sign out"}, allow="POST, DELETE")
        if self.authenticate is None:
            return _json_response(403, {"error": "this server is read-only: it accepts no sign-ins"})
        if not self._origin_allowed(request):  # a page elsewhere must not sign this browser in
            self.stats.origin_refused += 1
            return _json_response(403, {"error": "origin not allowed"})
        token = guard.bearer_token(guard.one(request.headers, "Authorization"))
        if token is None:
            return _json_response(400, {"error": "send the token in an Authorization: Bearer header"})
        principal, refusal = self._sign_in(token, _address(connection), "web")
        if principal is None:
            code, message, status = refusal
            extra = {"Retry-After": str(max(1, round(self.limiter.retry_after(_address(connection)))))} if status == 429 else None
            return _json_response(status, {"error": message, "code": code}, extra=extra)
        sid = self.sessions.create(token)
        body = {"ok": True, "user": _principal_name(principal), "role": getattr(principal, "role", "")}
        return _json_response(200, body, guard.set_cookie(name, sid, self.secure))

    # --- HTTP -----------------------------------------------------------------------

    def _host_allowed(self, request: Request) -> bool:
        hosts = request.headers.get_all("Host")
        host = hosts[0] if len(hosts) == 1 else None  # none or several: refused
        if self.allowed_hosts.allows(host):
            return True
        self.stats.host_refused += 1
        shown = ", ".join(hosts)[:80]
        self.stats.last_refusal = f"host {shown!r} not allowed"
        if len(self._hosts_warned) < 100 and shown not in self._hosts_warned:
            self._hosts_warned.add(shown)
            log.warning("refused a request for host %r: not one of the served names (add it with --allow-host)", shown)
        return False

    def _process_response(self, connection: ServerConnection, request: Request, response: Response) -> Response:
        """Security headers on every response; HEAD gets the headers of GET and no body."""
        headers = response.headers
        for key, value in guard.SECURITY_HEADERS:
            if key not in headers:
                headers[key] = value
        if self._csp and headers.get("Content-Type", "").startswith("text/html"):
            del headers["Content-Security-Policy"]
            headers["Content-Security-Policy"] = self._csp
        if request.method == "HEAD":
            return dataclasses.replace(response, body=b"")
        return response

    def _origin_allowed(self, request: Request) -> bool:
        origins = request.headers.get_all("Origin")
        if not origins:
            return True  # not a browser page: browsers always send Origin on websockets
        if len(origins) > 1:
            return False
        origin = origins[0]
        origin = origin.rstrip("/")
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        host = guard.one(request.headers, "Host") or ""
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self._host_allowed(request):
            return connection.respond(http.HTTPStatus.MISDIRECTED_REQUEST,
                                      "this server does not answer to that host name (see --allow-host)\n")  # fmt: skip
        path = urlsplit(request.path).path
        if path == guard.SESSION_PATH:
            self.stats.http_requests += 1
            return self._session_request(connection, request)
        if path == WS_PATH:
            if request.method != "GET":
                return connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "use GET to open the websocket\n")
            if not self._origin_allowed(request):
                self.stats.origin_refused += 1
                self.stats.last_refusal = f"origin {', '.join(request.headers.get_all('Origin'))[:80]!r} not allowed"
                return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
            return None
        self.stats.http_requests += 1
        if request.method not in ("GET", "HEAD"):
            self.stats.http_refused += 1
            response = connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        if path == "/metrics" and self.metrics is not None:
            text = self.metrics().encode()
            headers = Headers([("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                               ("Content-Length", str(len(text))), ("Cache-Control", "no-store"), ("Connection", "close")])
            return Response(200, "OK", headers, text)
        name = path.lstrip("/") or "index.html"
        entry = self.files.get(name)
        if entry is None or "\\" in name or ".." in name.split("/"):
            self.stats.http_refused += 1
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        # gzip and ETag revalidation (httpcache): a second visit gets 304s, not the GLB again
        encoded = self._encoded.get(name, entry)
        gz = encoded.gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding"))
        body = encoded.gzipped if gz else encoded.body
        etag = encoded.etag[:-1] + '-gz"' if gz else encoded.etag
        status = 200
        if etag_matches(request.headers.get("If-None-Match"), etag):
            status, body = 304, b""
        headers = Headers(
            [
                ("Content-Type", content_type(name)),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                ("ETag", etag),
                ("Vary", "Accept-Encoding"),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
                ("Connection", "close"),
            ]
        )
        if gz:
            headers["Content-Encoding"] = "gzip"
        if name.endswith(".html") and self._csp:
            headers["Content-Security-Policy"] = self._csp
        return Response(status, "Not Modified" if status == 304 else "OK", headers, body)


def _round_time(t: Any) -> float | None:
    f = _finite_or_none(t)
    return None if f is None else round(f, 3)


def _finite_or_none(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _address(connection: Any) -> str:
    """The client's IP address (the limiter's key)."""
    try:
        peer = connection.remote_address
    except Exception:
        return "?"
    return str(peer[0]) if peer else "?"


def _json_response(status: int, body: dict, cookie: str | None = None, allow: str | None = None,
                   extra: dict[str, str] | None = None) -> Response:  # fmt: skip
    data = dumps(body).encode("utf-8") + b"\n"
    headers = Headers([
        ("Content-Type", "application/json"), ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"), ("Connection", "close"),
    ])  # fmt: skip
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    if allow is not None:
        headers["Allow"] = allow
    for key, value in (extra or {}).items():
        headers[key] = value
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


def _principal_name(principal: Any) -> str:
    for attr in ("name", "user", "username", "id"):
        value = getattr(principal, attr, None)
        if isinstance(value, str):
            return value
    return ""


def _content_security_policy(index: Path | bytes | None) -> str:
    """Scripts only from this origin plus the page's inline import map (by hash)."""
    if index is None:
        return ""
    html = index if isinstance(index, bytes) else index.read_bytes()
    hashes = []
    for m in re.finditer(rb"<script[^>]*>(.*?)</script>", html, re.S):
        if m.group(1).strip():
            digest = hashlib.sha256(m.group(1)).digest()
            hashes.append("'sha256-" + base64.b64encode(digest).decode() + "'")
    scripts = " ".join(["'self'", *hashes])
    return (
        f"default-src 'self'; script-src {scripts}; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
