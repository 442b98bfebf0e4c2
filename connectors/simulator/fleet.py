"""The simulator as an external fleet of MQTT devices (`twinview sim SITE --mqtt URL`).

Publishes every simulated value to its point's topic with the point's QoS, in
the default payload convention ({"value": ..., "ts": ...}, or the point's
json_value / json_time paths). Each device's availability topic gets a retained
"online" at connect and a retained "offline" at a clean stop. (One MQTT
connection can carry only one last will, so a crash of the whole fleet process
is seen by the viewer as silence: points go stale.)

Commands follow the device contract of the command service (docs/commands.md):
a JSON {"id", "device", "command", "args", "expires_at", ...} on
"{prefix}/{device}/cmd/{command}"; the answer {"id", "status": "accepted" |
"rejected", "reason"} goes to the message's MQTT 5 ResponseTopic (with its
CorrelationData), else to "{prefix}/{device}/cmd_response". Like a real device,
the fleet acts once per command id (a redelivery gets the first answer again)
and keeps a persistent session (clean_start false) so commands queued while it
was away are delivered when it comes back. It acts only on a command with a
valid "id", "user" and "expires_at" (check_command_message): a hand-made
publish on a command topic is answered "rejected" and does nothing.
"""

from __future__ import annotations

import json
import re
import threading
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from twinview.site.manifest import Site
from twinview.connectors.wire.decode import encode, encode_many
from twinview.connectors.base import Availability, Sample
from twinview.connectors.mqtt.telemetry import make_client, parse_url, rebirth_topic
from twinview.connectors.simulator.commands import check_command_message
from twinview.connectors.simulator.plant import Simulator


def command_pattern(template: str, prefix: str) -> tuple[str, re.Pattern]:
    """The subscription filter and the regex that extracts the device (and command) from a command topic."""
    t = template.replace("{prefix}", prefix).lstrip("/")
    filt = t.replace("{device}", "+").replace("{command}", "+")
    regex = re.escape(t).replace(re.escape("{device}"), "(?P<device>[^/]+)")
    regex = regex.replace(re.escape("{command}"), "(?P<command>[^/]+)")
    return filt, re.compile("^" + regex + "$")


REMEMBERED_COMMANDS = 4096


def run_publisher(
    site: Site,
    url: str,
    rate: float = 1.0,
    stop_event: threading.Event | None = None,
    *,
    seed: int = 0,
    command_topic: str | None = "{prefix}/{device}/cmd/{command}",
    tick: float = 0.1,
    client_options: dict | None = None,
    simulator: Simulator | None = None,
    duration: float | None = None,
) -> dict:
    """Publish simulated telemetry until stop_event is set (or `duration` seconds pass)."""
    stop_event = stop_event or threading.Event()
    opts = dict(client_options or {})
    addr = parse_url(url)
    sim = simulator or Simulator(site, rate=rate, seed=seed)
    specs = {(d.id, p.id): p for d in site.devices for p in d.points}
    sharing: dict[str, int] = {}
    for p in specs.values():
        sharing[p.topic] = sharing.get(p.topic, 0) + 1
    availability = {d.id: d.availability_topic for d in site.devices if d.availability_topic}
    stats = {"published": 0, "commands": 0, "commands_rejected": 0, "errors": 0, "connects": 0}
    connected = threading.Event()

    # A stable client id and a persistent session: commands sent while the fleet is away wait at the broker.
    client_id = opts.get("client_id") or f"twinview-sim-{site.topic_prefix or 'site'}"
    client = make_client(
        addr, client_id, username=opts.get("username", addr.username), password=opts.get("password", addr.password),
        ca_file=opts.get("ca_file") or addr.options.get("ca_file"), cert_file=opts.get("cert_file"),
        key_file=opts.get("key_file"),
    )  # fmt: skip
    client.reconnect_delay_set(1, 10)
    client.max_queued_messages_set(0)

    filt, pattern = (None, None)
    if command_topic:
        filt, pattern = command_pattern(command_topic, site.topic_prefix)

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        stats["connects"] += 1
        for topic in availability.values():
            c.publish(topic, b"online", qos=1, retain=True)
        if filt:
            c.subscribe(filt, qos=1)
        c.subscribe(rebirth_topic(site.topic_prefix), qos=0)
        sim.report_all()  # a birth: every point at once after each (re)connect, as Sparkplug devices do
        connected.set()

    def on_disconnect(c, userdata, flags, reason_code, properties):
        connected.clear()

    answered: dict[str, dict] = {}  # command id -> first answer (insertion ordered)

    def on_message(c, userdata, msg):
        try:
            if msg.topic == rebirth_topic(site.topic_prefix):
                sim.report_all()  # a twin (re)connected: every point at the next step, not at its next period
                stats["rebirths"] = stats.get("rebirths", 0) + 1
                return
            m = pattern.match(msg.topic) if pattern else None
            if m is None:
                return
            device = m["device"]
            command_id = _command_id(msg.payload)
            if command_id and command_id in answered:  # a redelivery: answer again, act once
                answer = answered[command_id]
                stats["duplicates"] = stats.get("duplicates", 0) + 1
            else:
                why = check_command_message(_body(msg.payload), time.time())
                answer = {"id": command_id, "status": "rejected", "reason": why} if why else sim.execute(device, msg.payload)
                stats["commands"] += 1
                stats["commands_rejected"] += answer["status"] != "accepted"
                if command_id:
                    answered[command_id] = answer
                    while len(answered) > REMEMBERED_COMMANDS:
                        answered.pop(next(iter(answered)))
            props = getattr(msg, "properties", None)
            response = getattr(props, "ResponseTopic", None) if props is not None else None
            out = Properties(PacketTypes.PUBLISH)
            corr = getattr(props, "CorrelationData", None) if props is not None else None
            if corr:
                out.CorrelationData = corr
            fallback = f"{site.topic_prefix}/{device}/cmd_response".lstrip("/")
            c.publish(response or fallback, json.dumps(answer), qos=1, properties=out)
        except Exception:  # noqa: BLE001 - never let a command kill the network thread
            stats["errors"] += 1

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    session = Properties(PacketTypes.CONNECT)
    session.SessionExpiryInterval = 3600
    client.connect_async(addr.host, addr.port, keepalive=int(opts.get("keepalive", 30)), clean_start=False,
                         properties=session)  # fmt: skip
    client.loop_start()
    t_end = None if duration is None else time.monotonic() + duration
    try:
        while not stop_event.is_set() and (t_end is None or time.monotonic() < t_end):
            t0 = time.monotonic()
            events = sim.step(time.time())
            if connected.is_set():
                shared: dict[str, list] = {}
                for ev in events:
                    if type(ev) is Sample:
                        spec = specs[(ev.device, ev.point)]
                        if sharing[spec.topic] > 1:  # one JSON object for every point on that topic
                            shared.setdefault(spec.topic, []).append((spec, ev.value, ev.source_ts))
                            continue
                        # retained, with its time: a twin that joins late gets the value and can judge its age
                        client.publish(spec.topic, encode(spec, ev.value, ev.source_ts), qos=spec.qos, retain=True)
                        stats["published"] += 1
                    elif type(ev) is Availability and ev.device in availability:
                        client.publish(availability[ev.device], b"online" if ev.online else b"offline", qos=1, retain=True)
                for topic, items in shared.items():
                    payload = encode_many([(spec, value) for spec, value, _ in items], items[0][2])
                    client.publish(topic, payload, qos=max(spec.qos for spec, _, _ in items), retain=True)
                    stats["published"] += 1
            stop_event.wait(max(0.0, tick - (time.monotonic() - t0)))
    finally:
        if connected.is_set():
            infos = [client.publish(t, b"offline", qos=1, retain=True) for t in availability.values()]
            for info in infos[-1:]:
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
        client.disconnect()
        client.loop_stop()
    return stats


def _body(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


def _command_id(payload: bytes) -> str:
    body = _body(payload)
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""
