"""Commands over MQTT 5: the Transport behind CommandService, and `twinview command`.

One paho client per connection, on purpose. paho keeps unacknowledged QoS 1
publishes in memory and sends them again after a reconnect, with the message
expiry interval they had when first published: after a long outage a command
could reach a device long after its owner saw it fail. Here a lost connection
throws its client away; only the service retries, with the same id and the
expiry that is left, so every delivery is within expires_at.

The response subscription ({prefix}/+/cmd_response, QoS 1, no-local) lives in a
persistent session (clean start false on every connection, session expiry
`session_expiry` seconds; the client id is new for each transport), so device
answers sent while the viewer was briefly disconnected arrive after the
reconnect, even across a broker restart: mosquitto 2.0 writes a session to its
persistence file only when the client's last CONNECT had clean start false.
A clean stop ends the session (session expiry 0 on DISCONNECT).

Contract: docs/commands.md.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from twinview.twin.commands import PublishError, device_of_response_topic, parse_response, response_filter
from twinview.connectors.mqtt.telemetry import make_client, parse_url

# PUBACK reason codes that retrying cannot fix.
_PERMANENT = {
    0x87: "not authorized",
    0x90: "topic name invalid",
    0x95: "packet too large",
    0x99: "payload format invalid",
}


class _Connection:
    """One paho client and what it has seen; thrown away when the connection ends."""

    def __init__(self, client: mqtt.Client):
        self.client = client
        self.cond = threading.Condition()
        self.results: dict[int, Any] = {}
        self.connack: Any = None
        self.subscribed = False
        self.suback_failure = ""
        self.alive = True
        self.ready = False
        self.session_present = False


class MqttCommandTransport:
    """Transport for CommandService over MQTT 5 (QoS 1, message expiry, response topic, correlation data)."""

    def __init__(
        self,
        url: str,
        topic_prefix: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        tls_insecure: bool = False,
        keepalive: int = 15,
        publish_timeout: float = 5.0,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
        session_expiry: int = 300,
    ):
        self.address = addr = parse_url(url)
        opt = addr.options
        self.prefix = topic_prefix
        self.client_id = client_id or opt.get("client_id") or f"twinview-cmd-{uuid.uuid4().hex[:12]}"
        self.username = username if username is not None else (addr.username or opt.get("username"))
        self.password = password if password is not None else (addr.password or opt.get("password"))
        self.ca_file = ca_file or opt.get("ca_file")
        self.cert_file = cert_file or opt.get("cert_file")
        self.key_file = key_file or opt.get("key_file")
        self.tls_insecure = tls_insecure or opt.get("insecure", "") in ("1", "true", "yes")
        self.keepalive = keepalive
        self.publish_timeout = publish_timeout
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.session_expiry = session_expiry
        self.filter = response_filter(topic_prefix)
        self.on_ack: Callable[[str, str, str, str | None], None] | None = None
        self.on_link: Callable[[bool, str], None] | None = None
        self.on_bad_response: Callable[[str], None] | None = None
        self.last_error = ""
        self.counters = {"connects": 0, "published": 0, "refused": 0, "not_connected": 0, "no_puback": 0,
                         "no_subscribers": 0, "responses": 0, "bad_responses": 0, "callback_errors": 0}  # fmt: skip
        self._conn: _Connection | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- wiring ---------------------------------------------------------------------

    def attach(self, service: Any) -> None:
        """Deliver answers and link changes to a CommandService (called by the service)."""
        self.on_ack = service.on_ack
        self.on_link = service.on_link
        self.on_bad_response = service.on_bad_response
        if self._ready.is_set():
            service.on_link(True, "connected")

    def start(self) -> "MqttCommandTransport":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="twinview-mqtt-commands", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with conn.cond:
                conn.cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Until connected and subscribed to the response topic."""
        return self._ready.wait(timeout)

    # --- the Transport protocol ------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, expiry_s: int, correlation_id: str, response_topic: str
    ) -> bool:
        """Publish and wait for the PUBACK. True on a success reason code; False when not
        connected or no PUBACK came in time; PublishError(permanent) when the broker refuses."""
        conn = self._conn
        if conn is None or not conn.ready:
            self.counters["not_connected"] += 1
            return False
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = max(1, int(expiry_s))
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation_id.encode("utf-8")
        props.PayloadFormatIndicator = 1
        props.ContentType = "application/json"
        try:
            info = conn.client.publish(topic, payload, qos=qos, properties=props)
        except (ValueError, TypeError) as exc:
            raise PublishError(str(exc), permanent=True) from None
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.counters["not_connected"] += 1
            return False  # this client (and anything it queued) is discarded at the reconnect
        deadline = time.monotonic() + self.publish_timeout
        with conn.cond:
            while info.mid not in conn.results and conn.alive and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                conn.cond.wait(left)
            code = conn.results.pop(info.mid, None)
        if code is None:
            self.counters["no_puback"] += 1
            return False
        value = int(getattr(code, "value", code) or 0)
        if value == 0x10:
            # No matching subscribers: nobody got it, not even a device's offline session.
            # Retrying (same id) is safe and delivers once a device subscribes again.
            self.counters["no_subscribers"] += 1
            raise PublishError(f"no device is subscribed to {topic}")
        if value >= 0x80:
            self.counters["refused"] += 1
            self.last_error = f"broker refused the command: {code}"
            if value in _PERMANENT:
                raise PublishError(f"the broker refused it: {code}", permanent=True)
            raise PublishError(f"the broker refused it for now: {code}")
        self.counters["published"] += 1
        return True

    # --- connection supervisor --------------------------------------------------------

    def _new_client(self) -> _Connection:
        client = make_client(
            self.address, self.client_id, username=self.username, password=self.password,
            ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file, tls_insecure=self.tls_insecure,
        )  # fmt: skip
        client.connect_timeout = 5.0
        conn = _Connection(client)
        client.on_connect = lambda c, u, flags, rc, props: self._on_connect(conn, flags, rc)
        client.on_disconnect = lambda c, u, flags, rc, props: self._on_disconnect(conn, rc)
        client.on_subscribe = lambda c, u, mid, rcs, props: self._on_subscribe(conn, rcs)
        client.on_publish = lambda c, u, mid, rc, props: self._on_publish(conn, mid, rc)
        client.on_message = lambda c, u, msg: self._on_message(msg)
        return conn

    def _run(self) -> None:
        delay = self.reconnect_min
        while not self._stop.is_set():
            conn = self._new_client()
            try:
                if self._connect(conn):
                    delay = self.reconnect_min
                    self._conn = conn
                    conn.ready = True
                    self._ready.set()
                    self._link(True, f"{self.address.host}:{self.address.port}")
                    while conn.alive and not self._stop.is_set():
                        conn.client.loop(0.1)
            except Exception as exc:  # noqa: BLE001 - e.g. a TLS error: report, reconnect, never die
                self.counters["callback_errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            if conn.ready:
                self._ready.clear()
                conn.ready = False
                self._link(False, self.last_error or "connection lost")
            self._close(conn)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.reconnect_max)

    def _connect(self, conn: _Connection) -> bool:
        addr = self.address
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.session_expiry)
        try:
            conn.client.connect(addr.host, addr.port, keepalive=self.keepalive, clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            self.last_error = f"cannot connect to {addr.host}:{addr.port}: {exc}"
            return False
        deadline = time.monotonic() + 10.0
        while conn.alive and conn.connack is None and time.monotonic() < deadline and not self._stop.is_set():
            conn.client.loop(0.1)
        if conn.connack is None or getattr(conn.connack, "is_failure", True):
            self.last_error = f"connection refused: {conn.connack}" if conn.connack is not None else "no CONNACK"
            return False
        self.counters["connects"] += 1
        rc, _ = conn.client.subscribe([(self.filter, SubscribeOptions(qos=1, noLocal=True))])
        while conn.alive and not conn.subscribed and not conn.suback_failure and time.monotonic() < deadline and not self._stop.is_set():
            conn.client.loop(0.1)
        if conn.suback_failure:
            self.last_error = f"cannot subscribe to {self.filter}: {conn.suback_failure}"
        return conn.alive and conn.subscribed

    def _close(self, conn: _Connection) -> None:
        with conn.cond:
            conn.alive = False
            conn.cond.notify_all()
        if self._conn is conn:
            self._conn = None
        try:
            if self._stop.is_set() and conn.client.is_connected():
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0  # a stopped viewer leaves no session behind
                conn.client.disconnect(properties=props)
                conn.client.loop(0.1)
            else:
                conn.client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        try:
            sock = conn.client.socket()
            if sock is not None:
                sock.close()
        except Exception:  # noqa: BLE001
            pass

    def _link(self, up: bool, detail: str) -> None:
        hook = self.on_link
        if hook is not None:
            try:
                hook(up, detail)
            except Exception:  # noqa: BLE001
                self.counters["callback_errors"] += 1

    # --- paho callbacks (this transport's thread) -------------------------------------

    def _on_connect(self, conn: _Connection, flags: Any, rc: Any) -> None:
        conn.connack = rc
        conn.session_present = bool(getattr(flags, "session_present", False))

    def _on_disconnect(self, conn: _Connection, rc: Any) -> None:
        self.last_error = f"disconnected: {rc}"
        with conn.cond:
            conn.alive = False
            conn.cond.notify_all()

    def _on_subscribe(self, conn: _Connection, rcs: Any) -> None:
        failed = [str(rc) for rc in rcs if getattr(rc, "is_failure", False)]
        if failed:
            conn.suback_failure = ", ".join(failed)
        else:
            conn.subscribed = True

    def _on_publish(self, conn: _Connection, mid: int, rc: Any) -> None:
        with conn.cond:
            conn.results[mid] = rc
            conn.cond.notify_all()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            device = device_of_response_topic(self.prefix, msg.topic)
            corr = getattr(getattr(msg, "properties", None), "CorrelationData", None)
            corr_id = bytes(corr).decode("utf-8", "replace") if corr else None
            response = parse_response(msg.payload, corr_id)
            self.counters["responses"] += 1
            hook = self.on_ack
            if hook is not None:
                hook(response.id, response.status, response.reason, device)
        except Exception as exc:  # noqa: BLE001 - nothing may escape into paho's loop
            self.counters["bad_responses"] += 1
            hook = self.on_bad_response
            if hook is not None:
                try:
                    hook(f"{type(exc).__name__}: {exc}"[:200])
                except Exception:  # noqa: BLE001
                    self.counters["callback_errors"] += 1
