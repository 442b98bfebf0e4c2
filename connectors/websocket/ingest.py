"""Telemetry pushed by clients over a websocket, for sources that cannot speak MQTT.

Each text (or UTF-8 binary) message is one JSON item or an array of items:
    {"topic": "plant/P-101/speed", "payload": "1450"}          payload: string or any JSON
    {"device": "P-101", "point": "speed", "value": 1450, "ts": 1718000000.5}
Bad items are counted and answered with {"error": ..., "errors": [[index, reason], ...]};
the connection stays open. A message larger than max_message_bytes closes the
connection with code 1009 (message too big), as the websocket protocol says.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from twinview.connectors.wire.decode import DecodeError, encode, parse_json
from twinview.connectors.base import Connector, LinkState, Sink
from twinview.connectors.wire.routing import Router, Tap

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_BATCH = 10000


class WebSocketIngest(Connector):
    """A websocket server (own thread, own asyncio loop) that turns pushed messages into events."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        topic_map=None,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_batch: int = MAX_BATCH,
        name: str | None = None,
        tap: Tap | None = None,
    ):
        super().__init__()
        if topic_map is None:
            raise ValueError("WebSocketIngest needs a topic map")
        self.host = host
        self.port = port
        self.topic_map = topic_map
        self.max_message_bytes = max_message_bytes
        self.max_batch = max_batch
        self.name = name or f"websocket {host}:{port}"
        self.tap = tap
        self.clients = 0
        self.oversized = 0
        self._router: Router | None = None
        self._sink: Sink | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            return
        self._sink = sink
        self._router = Router(self.topic_map, self.stats, sink, self.tap)
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="twinview-ws-ingest", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise TimeoutError("websocket ingest did not start listening")
        if self._error is not None:
            thread, self._thread = self._thread, None
            thread.join(2.0)
            raise self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.get_running_loop().create_future()
        async with serve(self._handle, self.host, self.port, max_size=self.max_message_bytes) as server:
            sock = next(iter(server.sockets))
            self.port = sock.getsockname()[1]
            self.name = self.name if not self.name.endswith(":0") else f"websocket {self.host}:{self.port}"
            self.stats.state = "up"
            self._emit(LinkState(self.name, "up", self.url, time.time()))
            self._ready.set()
            await self._stopping
        self.stats.state = "down"
        self._emit(LinkState(self.name, "down", "stopped", time.time()))

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: stopping.done() or stopping.set_result(None))
            except RuntimeError:
                pass
        thread.join(5.0)

    def _emit(self, ev: Any) -> None:
        try:
            if self._sink is not None:
                self._sink(ev)
        except Exception as exc:  # noqa: BLE001
            self.stats.last_error = f"sink failed: {exc}"[:200]

    async def _handle(self, ws: ServerConnection) -> None:
        self.clients += 1
        try:
            async for message in ws:
                try:
                    errors = self.ingest(message)
                except Exception as exc:  # noqa: BLE001 - a bad message must never end the connection
                    errors = [(0, f"internal error: {type(exc).__name__}")]
                    self.stats.count_bad("<message>", errors[0][1])
                if errors:
                    reply = {"error": f"{len(errors)} bad item(s)", "errors": [[i, e] for i, e in errors[:50]]}
                    await ws.send(json.dumps(reply))
        except ConnectionClosed as exc:
            if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1009:
                self.oversized += 1
                self.stats.count_bad("<message too big>", f"message larger than {self.max_message_bytes} bytes")
        finally:
            self.clients -= 1

    def ingest(self, message: str | bytes, recv_ts: float | None = None) -> list[tuple[int, str]]:
        """Process one websocket message; returns (item index, reason) for every bad item."""
        now = time.time() if recv_ts is None else recv_ts
        if isinstance(message, (bytes, bytearray, memoryview)):
            try:
                message = bytes(message).decode("utf-8")
            except UnicodeDecodeError:
                self.stats.count_bad("<binary>", "not UTF-8 text")
                return [(0, "not UTF-8 text")]
        try:
            data = parse_json(message)
        except DecodeError as exc:
            self.stats.count_bad(message[:60], exc.reason)
            return [(0, exc.reason)]
        items = data if isinstance(data, list) else [data]
        if len(items) > self.max_batch:
            reason = f"batch of {len(items)} items is larger than {self.max_batch}"
            self.stats.count_bad(message[:60], reason)
            return [(0, reason)]
        errors = []
        for i, item in enumerate(items):
            reason = self._item(item, now)
            if reason:
                errors.append((i, reason))
        return errors

    def _item(self, item: Any, now: float) -> str | None:
        router = self._router
        stats = self.stats
        if not isinstance(item, dict):
            stats.count_bad(str(item)[:60], "expected an object")
            return "expected an object"
        if "topic" in item:
            topic, payload = item.get("topic"), item.get("payload")
            if not isinstance(topic, str) or payload is None:
                stats.count_bad(str(item)[:60], "expected topic (string) and payload")
                return "expected topic (string) and payload"
            if not isinstance(payload, str):
                payload = json.dumps(payload, allow_nan=False)
            if not self.topic_map.knows(topic):
                with stats._lock:
                    stats.unknown_topic += 1
                return f"unknown topic {topic[:80]!r}"
            bad_before = stats.bad
            router.handle(topic, payload.encode("utf-8"), now)  # type: ignore[union-attr]
            return stats.last_error if stats.bad > bad_before else None
        if "device" in item and "point" in item and "value" in item:
            device, point = item["device"], item["point"]
            if not isinstance(device, str) or not isinstance(point, str):
                stats.count_bad(str(item)[:60], "device and point must be strings")
                return "device and point must be strings"
            spec = self.topic_map.by_point.get((device, point))
            if self.tap is not None and spec is not None:
                try:
                    self.tap(spec.topic, encode(spec, item["value"], item.get("ts")), now)
                except (TypeError, ValueError):
                    pass
            sample = self.topic_map.sample_from_value(device, point, item["value"], item.get("ts"), now)
            if sample is None:
                with stats._lock:
                    stats.unknown_topic += 1
                return f"unknown point {device[:40]}.{point[:40]}"
            stats.count()
            if sample.error is not None:
                stats.count_bad(str(item)[:60], sample.error)
            self._emit(sample)
            return sample.error
        stats.count_bad(str(item)[:60], "expected {topic, payload} or {device, point, value}")
        return "expected {topic, payload} or {device, point, value}"
