"""Active alarms on MQTT: retained JSON under {prefix}/_alarms/{device}/{alarm}, for other systems.

A subscriber of the runtime's AlarmsChanged events (the runtime knows nothing of
paho). An alarm that is not normal is published retained as JSON (state,
severity, value, message, times, who acknowledged); an alarm that returned to
normal and was acknowledged is cleared with an empty retained payload, so a
subscriber that connects later sees exactly the alarms that need attention.
Publishing only queues in paho's network thread: the runtime never waits.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from twinview.twin.events import AlarmsChanged

from .telemetry import make_client, parse_url

log = logging.getLogger("twinview.mqtt.alarms")
FIELDS = ("id", "device", "name", "point", "kind", "severity", "area", "state", "active", "acked", "value", "limit",
          "message", "activated_at", "cleared_at", "acked_at", "acked_by", "changed_at", "shelved_until",
          "shelve_reason", "suppressed", "out_of_service", "chattering", "first_out", "activations")  # fmt: skip


def alarm_topic(prefix: str, alarm: dict[str, Any]) -> str:
    return "/".join(p for p in (prefix.strip("/"), "_alarms", alarm["device"], alarm["name"]) if p)


def alarm_payload(alarm: dict[str, Any]) -> bytes:
    """The retained message of an alarm: JSON, or empty (cleared) once it is normal."""
    if alarm["state"] == "normal":
        return b""
    return json.dumps({k: alarm.get(k) for k in FIELDS}, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")


class MqttAlarmPublisher:
    """Publishes a runtime's alarms to a broker; start() subscribes, stop() ends the connection."""

    def __init__(self, runtime: Any, url: str, topic_prefix: str, *, qos: int = 1, **tls: Any):
        self.runtime = runtime
        self.prefix = topic_prefix
        self.qos = qos
        self.address = parse_url(url)
        self.client = make_client(self.address, f"twinview-alarms-{uuid.uuid4().hex[:10]}", username=self.address.username,
                                  password=self.address.password, **{k: v for k, v in tls.items() if v is not None})  # fmt: skip
        self.client.on_connect = self._on_connect
        self.counters = {"published": 0, "cleared": 0, "connects": 0}
        self._lock = threading.Lock()
        self._latest: dict[str, bytes] = {}  # topic -> payload last published (republished on reconnect)

    def start(self) -> "MqttAlarmPublisher":
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        self.runtime.events.subscribe(AlarmsChanged, self._on_alarms, owner=self)
        engine = self.runtime.alarms
        if engine is not None:  # what is not normal now, and clear what was retained for alarms that are
            now = engine.runtime.clock.now()
            for k in range(len(engine.rules)):
                a = engine.describe(k, now)
                if a["state"] != "normal" or a["activations"]:
                    self._publish(a)
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.counters["connects"] += 1
        if self.counters["connects"] > 1:  # reconnected (the broker may have restarted without persistence)
            with self._lock:
                latest = [(t, p) for t, p in self._latest.items() if p]
            for topic, payload in latest:
                client.publish(topic, payload, qos=self.qos, retain=True)

    def _on_alarms(self, event: AlarmsChanged) -> None:
        for alarm in event.alarms:
            self._publish(alarm)

    def _publish(self, alarm: dict[str, Any]) -> None:
        topic = alarm_topic(self.prefix, alarm)
        payload = alarm_payload(alarm)
        with self._lock:
            if self._latest.get(topic) == payload:
                return
            self._latest[topic] = payload
        self.client.publish(topic, payload, qos=self.qos, retain=True)
        self.counters["cleared" if not payload else "published"] += 1

    def stop(self) -> None:
        self.runtime.events.release(self)
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
