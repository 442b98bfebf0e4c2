"""MQTT telemetry in, commands out, with paho-mqtt 2.x.

- mqtt://, mqtts:// (TLS: CA file, client certificate and key), ws:// and wss:// URLs;
  user and password in the URL or as options; options also as URL query
  (?protocol=3.1.1&ca_file=/path/ca.pem&client_id=viewer-1).
- MQTT 5 by default, 3.1.1 on request. Reconnects by itself with exponential
  backoff (reconnect_min .. reconnect_max seconds) and subscribes again in
  on_connect, so a broker restart costs nothing but the outage.
- Subscribes each site topic with its point's QoS; a large site is covered by
  "{prefix}/#" instead (TopicMap.subscriptions).
- Emits LinkState "connecting" / "up" / "down" on every change, so the twin can
  mark what this connection feeds as stale while it is down.
- Every exception inside on_message is caught and counted: one escaping there
  would end paho's network thread and telemetry would stop without a word.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from twinview.connectors.base import Connector, LinkState, Sink
from twinview.connectors.wire.routing import Router, Tap

SUBSCRIBE_CHUNK = 256  # topic filters per SUBSCRIBE packet
_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class BrokerAddress:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    path: str
    options: dict[str, str]

    @property
    def tls(self) -> bool:
        return self.scheme in ("mqtts", "ssl", "wss")

    @property
    def transport(self) -> str:
        return "websockets" if self.scheme in ("ws", "wss") else "tcp"


def parse_url(url: str) -> BrokerAddress:
    """Split an MQTT URL; ValueError with a clear reason when it is not one."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported MQTT URL scheme {scheme!r} (use mqtt://, mqtts://, ws:// or wss://)")
    if not parts.hostname:
        raise ValueError(f"no host in MQTT URL {url!r}")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"bad port in MQTT URL {url!r}") from None
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return BrokerAddress(
        scheme,
        parts.hostname,
        port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        parts.path or "/mqtt",
        options,
    )


def make_client(
    addr: BrokerAddress,
    client_id: str,
    *,
    v5: bool = True,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    tls_insecure: bool = False,
) -> mqtt.Client:
    """A paho client for a broker address: protocol, websocket path, credentials and TLS in one place."""
    if v5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                             transport=addr.transport)  # fmt: skip
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                             clean_session=True, transport=addr.transport)  # fmt: skip
    if addr.transport == "websockets":
        client.ws_set_options(path=addr.path)
    if username is not None:
        client.username_pw_set(username, password)
    if addr.tls:
        client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
        if tls_insecure:
            client.tls_insecure_set(True)
    return client


REBIRTH_TOPIC = "_twin/rebirth"  # under the site's prefix: devices answer by reporting every point at once


def rebirth_topic(prefix: str) -> str:
    """Where a twin asks every device of a site to report all its points now (after a (re)connect)."""
    return f"{prefix}/{REBIRTH_TOPIC}" if prefix else REBIRTH_TOPIC


REBIRTH_REFUSED_S = 1.0  # a disconnect this soon after the request: the broker refused it
DEGRADED_HOLD_S = 30.0  # a link stays "degraded" this long after the last lost message


class MqttConnector(Connector):
    """Subscribes to a site's telemetry topics on one broker (commands go out through MqttCommandTransport)."""

    def __init__(
        self,
        url: str,
        topic_map,
        *,
        name: str | None = None,
        client_id: str | None = None,
        protocol: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        tls_insecure: bool = False,
        keepalive: int = 30,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        exact_limit: int = 200,
        session_expiry: int | None = None,
        tap: Tap | None = None,
        subscribe: bool = True,
        rebirth: bool = True,
    ):
        super().__init__()
        self._degraded_until = 0.0
        self.rebirth = rebirth  # ask for every point at once after each (re)connect
        self.rebirths = 0
        self._rebirth_at = -1e9
        self._quick_drops = 0
        self.address = addr = parse_url(url)
        opt = addr.options
        self.topic_map = topic_map
        self.name = name or f"mqtt {addr.host}:{addr.port}"
        self.client_id = client_id or opt.get("client_id") or f"twinview-{uuid.uuid4().hex[:10]}"
        proto = str(protocol or opt.get("protocol") or "5")
        if proto not in ("5", "5.0", "3.1.1", "311", "4"):
            raise ValueError(f"unsupported MQTT protocol {proto!r} (use 5 or 3.1.1)")
        self.protocol5 = proto in ("5", "5.0")
        self.username = username if username is not None else (addr.username or opt.get("username"))
        self.password = password if password is not None else (addr.password or opt.get("password"))
        self.ca_file = ca_file or opt.get("ca_file")
        self.cert_file = cert_file or opt.get("cert_file")
        self.key_file = key_file or opt.get("key_file")
        self.tls_insecure = tls_insecure or opt.get("insecure", "") in ("1", "true", "yes")
        self.keepalive = int(opt.get("keepalive", keepalive))
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.session_expiry = session_expiry
        self.exact_limit = exact_limit
        self.tap = tap
        self.want_subscriptions = subscribe
        self.subscriptions: list[tuple[str, int]] = topic_map.subscriptions(exact_limit) if subscribe else []
        self.callback_errors = 0
        self.connects = 0
        self.subscribe_failures: list[str] = []
        self._client: mqtt.Client | None = None
        self._router: Router | None = None
        self._sink: Sink | None = None
        self._link = "idle"
        self._link_lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._pending_subs: set[int] = set()

    # --- lifecycle ------------------------------------------------------------------

    def start(self, sink: Sink) -> None:
        if self._client is not None:
            return
        self._sink = sink
        self._router = Router(self.topic_map, self.stats, sink, self.tap)
        self._router.on_loss = self._on_loss
        addr = self.address
        client = make_client(
            addr, self.client_id, v5=self.protocol5, username=self.username, password=self.password,
            ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file, tls_insecure=self.tls_insecure,
        )  # fmt: skip
        client.reconnect_delay_set(self.reconnect_min, self.reconnect_max)  # type: ignore[arg-type]
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._set_link("connecting", f"{addr.host}:{addr.port}")
        kwargs: dict[str, Any] = {}
        if self.protocol5:
            kwargs["clean_start"] = True if self.session_expiry is None else mqtt.MQTT_CLEAN_START_FIRST_ONLY
            if self.session_expiry:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = int(self.session_expiry)
                kwargs["properties"] = props
        client.connect_async(addr.host, addr.port, keepalive=self.keepalive, **kwargs)
        client.loop_start()

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        client.loop_stop()
        self._connected.clear()
        self._set_link("down", "stopped")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Until the broker acknowledged every subscription of the current connection."""
        return self._subscribed.wait(timeout)

    # --- paho callbacks (paho's network thread) --------------------------------------

    def _set_link(self, state: str, detail: str = "") -> None:
        with self._link_lock:
            if state == self._link:
                return
            self._link = state
        self.stats.state = state
        sink = self._sink
        if sink is not None:
            try:
                sink(LinkState(self.name, state, detail, time.time()))
            except Exception as exc:  # noqa: BLE001
                self.stats.last_error = f"sink failed: {exc}"[:200]

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        try:
            if reason_code.is_failure:
                self.stats.last_error = f"connect refused: {reason_code}"
                self._set_link("down", f"refused: {reason_code}")
                return
            self.connects += 1
            self._connected.set()
            self._subscribe(client)
            self._set_link("up", f"{self.address.host}:{self.address.port}")
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            self.stats.last_error = f"on_connect: {exc}"[:200]

    def _subscribe(self, client: mqtt.Client) -> None:
        self._subscribed.clear()
        self._pending_subs.clear()
        subs = list(self.subscriptions)
        if not subs:
            self._subscribed.set()
            return
        for k in range(0, len(subs), SUBSCRIBE_CHUNK):
            chunk = subs[k : k + SUBSCRIBE_CHUNK]
            if self.protocol5:
                # noLocal: do not hear our own command publishes back
                request = [(t, SubscribeOptions(qos=q, noLocal=True)) for t, q in chunk]
            else:
                request = list(chunk)
            rc, mid = client.subscribe(request)
            if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                self._pending_subs.add(mid)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        try:
            failed = [str(rc) for rc in reason_codes if rc.is_failure]
            if failed:
                self.subscribe_failures.extend(failed)
                self.stats.last_error = f"subscribe refused: {', '.join(sorted(set(failed)))}"[:200]
            self._pending_subs.discard(mid)
            if not self._pending_subs and not self._subscribed.is_set():
                self._ask_rebirth(client)
                self._subscribed.set()
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            self.stats.last_error = f"on_subscribe: {exc}"[:200]

    def _on_loss(self, missing: int, topic: str) -> None:
        """Sequence numbers skipped: messages were lost between device and twin (a broker's queue overflowed)."""
        self._degraded_until = time.monotonic() + DEGRADED_HOLD_S
        self._set_link("degraded", f"{self.stats.lost} messages lost in transit since connecting "
                                   f"(sequence gaps, last on {topic}): values may be missing")

    def _check_degraded(self) -> None:
        if self._link == "degraded" and time.monotonic() >= self._degraded_until:
            self._set_link("up", f"{self.address.host}:{self.address.port}")

    def _ask_rebirth(self, client: mqtt.Client) -> None:
        """Subscribed (again): ask devices for every point now instead of waiting for each one's next period."""
        if not self.rebirth:
            return
        prefix = getattr(getattr(self.topic_map, "site", None), "topic_prefix", "")
        body = json.dumps({"by": self.client_id, "ts": time.time()})
        client.publish(rebirth_topic(prefix), body, qos=0)
        self.rebirths += 1
        self._rebirth_at = time.monotonic()

    def _on_connect_fail(self, client, userdata) -> None:
        self._connected.clear()
        self._set_link("down", "cannot connect")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        quick = self.rebirth and time.monotonic() - self._rebirth_at < REBIRTH_REFUSED_S
        self._quick_drops = self._quick_drops + 1 if quick else 0
        if self._quick_drops >= 2:
            # Dropped right after asking, twice running: a broker whose ACL refuses the request (mosquitto
            # disconnects MQTT 5 clients for that). Stop asking rather than reconnect in a loop; say why.
            self.rebirth = False
            self.stats.last_error = "the broker refused the rebirth request (ACL?): not asking again; see twinview broker-acl"
        self._connected.clear()
        self._subscribed.clear()
        self._set_link("down", str(reason_code))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = bytes(message._topic).decode("utf-8", "replace")
            self._router.handle(topic, message.payload, time.time())  # type: ignore[union-attr]
            if self._degraded_until:
                self._check_degraded()
        except Exception as exc:  # noqa: BLE001 - never let anything reach paho's thread
            self.callback_errors += 1
            try:
                self.stats.count_bad("<message>", f"{type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001
                pass

