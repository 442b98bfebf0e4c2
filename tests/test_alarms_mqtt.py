"""Alarms to other systems: retained JSON under {prefix}/_alarms/{device}/{alarm} on a real mosquitto,
cleared when back to normal and acknowledged; a webhook per severity to a local HTTP server."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from broker import _client_binary, wait_until
from test_alarms import OPERATOR, SITE, T0, feed

from twinview.connectors.mqtt.alarms import MqttAlarmPublisher
from twinview.connectors.webhook.alarms import AlarmWebhook, parse_webhooks
from twinview.site.manifest import load_manifest
from twinview.twin.clock import ManualClock
from twinview.twin.runtime import Runtime


@pytest.fixture
def runtime(tmp_path):
    (tmp_path / "site.toml").write_text(SITE)
    rt = Runtime(load_manifest(tmp_path)[0], ManualClock(T0))
    rt.enable_alarms(tmp_path / "alarms.jsonl", tmp_path / "audit.jsonl")
    yield rt
    rt.stop()


def retained(broker, topic: str) -> dict[str, str]:
    """Every retained message under a filter now (mosquitto_sub --retained-only, ends after a quiet moment)."""
    cmd = [_client_binary("mosquitto_sub"), "-h", broker.host, "-p", str(broker.port), "-t", topic, "-v",
           "--retained-only", "-W", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    result = {}
    for line in out.splitlines():
        t, _, payload = line.partition(" ")
        result[t] = payload
    return result


@pytest.mark.broker
def test_active_alarms_are_retained_on_mqtt_and_cleared_when_normal_and_acknowledged(runtime, broker):
    publisher = MqttAlarmPublisher(runtime, broker.url, "plant").start()
    runtime.on_stop(publisher.stop)
    feed(runtime, runtime.clock, "P-1", "temp", 90.0)
    topic = "plant/_alarms/P-1/temp.high"
    assert wait_until(lambda: topic in retained(broker, "plant/_alarms/#"), 10)
    body = json.loads(retained(broker, "plant/_alarms/#")[topic])
    assert body["state"] == "unacknowledged" and body["severity"] == "high" and body["value"] == 90.0
    assert body["activated_at"] == pytest.approx(T0 + 1) and body["acked_by"] == ""
    assert runtime.alarms.acknowledge("P-1/temp.high", OPERATOR)[0]
    runtime.step()
    assert wait_until(lambda: json.loads(retained(broker, "plant/_alarms/#").get(topic, "{}")).get("acked_by") == "olga", 10)
    feed(runtime, runtime.clock, "P-1", "temp", 50.0)  # returned to normal, acknowledged already: cleared
    assert wait_until(lambda: topic not in retained(broker, "plant/_alarms/#"), 10)
    feed(runtime, runtime.clock, "P-2", "temp", 95.0)
    assert wait_until(lambda: "plant/_alarms/P-2/temp.high" in retained(broker, "plant/_alarms/#"), 10)
    feed(runtime, runtime.clock, "P-2", "temp", 50.0)  # returned but not acknowledged: still there
    time.sleep(0.3)
    assert json.loads(retained(broker, "plant/_alarms/#")["plant/_alarms/P-2/temp.high"])["state"] == "returned_unacknowledged"


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_per_severity_gets_the_alarm(runtime):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        urls = parse_webhooks([f"critical={base}/critical", f"high={base}/high"])
        hook = AlarmWebhook(runtime, {**urls, "low": "http://127.0.0.1:9/nothing-listens"}, timeout=2).start()
        feed(runtime, runtime.clock, "P-1", "temp", 90.0)  # high
        feed(runtime, runtime.clock, "P-1", "temp", 101.0)  # high_high (critical) after its 5 s on-delay
        runtime.clock.advance(6)
        runtime.step()
        feed(runtime, runtime.clock, "P-1", "flow_sp", 10.0)
        feed(runtime, runtime.clock, "P-1", "flow", 100.0)  # deviation: low, to an endpoint that fails
        assert hook.flush(10)
        assert wait_until(lambda: len(_Hook.received) == 2 and hook.counters["failed"] == 1, 10), (_Hook.received, hook.counters)
        paths = sorted(p for p, _ in _Hook.received)
        assert paths == ["/critical", "/high"]
        body = dict(_Hook.received)["/critical"]
        assert body["alarm"]["id"] == "P-1/temp.high_high" and body["alarm"]["state"] == "unacknowledged"
        assert body["site"] == "Alarm plant"
        hook.stop()
    finally:
        server.shutdown()
    with pytest.raises(ValueError):
        parse_webhooks(["urgent=http://x"])
    with pytest.raises(ValueError):
        parse_webhooks(["high=ftp://x"])
