"""Commands over a real mosquitto (MQTT 5): the documented topic, payload and properties as the
real mosquitto_sub sees them, a scripted paho device, broker outages, ACL refusals, the audit
log across a SIGKILL, and `twinview command` (run_command_cli) with its exit codes."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import LocalBroker, mosquitto_pub, require_mosquitto, wait_until
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from test_commands_site import MANIFEST, write_site

from twinview.connectors.mqtt.telemetry import MqttConnector
from twinview.cli.command import EXIT_AUTH, EXIT_CONFIRMED, EXIT_REFUSED, EXIT_REJECTED, run_command_cli
from twinview.connectors.mqtt.commands import MqttCommandTransport
from twinview.security import auth
from twinview.twin.audit import read_audit
from twinview.security.auth import Principal
from twinview.twin.runtime import Runtime
from twinview.twin.commands import (
    ACKNOWLEDGED, CONFIRMED, FAILED, FINAL, REFUSED, REJECTED, REQUESTED, SENT, TIMED_OUT,
)  # fmt: skip
from twinview.connectors.wire.decode import encode
from twinview.connectors.wire.topics import TopicMap

pytestmark = pytest.mark.broker

OPERATOR = Principal("olga", "operator")
# Slow points (no staleness during a test), and a "stop" with room for a broker restart.
MQTT_MANIFEST = MANIFEST.replace("period = 0.5", "period = 60").replace(
    'name = "stop"\ntimeout = 3\nexpiry = 5', 'name = "stop"\ntimeout = 12\nexpiry = 15'
)


@pytest.fixture
def broker():
    require_mosquitto()
    b = LocalBroker().start()
    yield b
    b.close()


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", MQTT_MANIFEST)


class Sub:
    """The real mosquitto_sub, MQTT 5, printing each message as JSON with its properties."""

    def __init__(self, broker: LocalBroker, topic: str):
        self.lines: list[str] = []
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []  # it block-buffers into a pipe
        self.proc = subprocess.Popen(
            [*line_buffered, "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1", "-t", topic, "-F", "%j", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()
        if not wait_until(lambda: any("SUBACK" in line for line in self.lines), 10):
            self.close()
            raise AssertionError(f"mosquitto_sub did not subscribe: {self.lines}")

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    @property
    def messages(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


class Device:
    """A device as integrators write it: paho MQTT 5, persistent session (clean start false on
    every connect, so that the broker also keeps it on disk), de-duplication by id, answers on
    the response topic with the correlation data, then reports its new state."""

    def __init__(self, broker: LocalBroker, site, behaviour: str = "accept", device: str = "P-101"):
        self.broker, self.site, self.behaviour, self.device = broker, site, behaviour, device
        self.deliveries: list[dict] = []  # every message received, duplicates included
        self.executed: list[str] = []
        self.answers: dict[str, tuple[str, str]] = {}
        self.client: mqtt.Client | None = None
        self.subscribed = threading.Event()
        self.client_id = f"device-{device}-{os.getpid()}-{time.monotonic_ns()}"

    def connect(self, clean_start: bool = False) -> "Device":
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.reconnect_delay_set(0.2, 1.0)  # type: ignore[arg-type]
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"plant/{self.device}/cmd/+", qos=1)
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.subscribed.clear()
        c.connect(self.broker.host, self.broker.port, keepalive=5, clean_start=clean_start, properties=props)
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(10)
        return self

    def go_offline(self) -> None:
        """Disconnect cleanly; the broker keeps the session and queues QoS 1 commands."""
        c, self.client = self.client, None
        c.disconnect()
        c.loop_stop()

    def publish_value(self, point: str, value) -> None:
        spec = self.site.device(self.device).point(point)
        self.client.publish(spec.topic, encode(spec, value, time.time()), qos=1, retain=True)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            body = json.loads(msg.payload)
            props = msg.properties
            self.deliveries.append({"body": body, "topic": msg.topic, "response": getattr(props, "ResponseTopic", None),
                                    "corr": getattr(props, "CorrelationData", None)})  # fmt: skip
            cid = body["id"]
            if cid not in self.answers:  # de-duplicate: act once per id
                if self.behaviour == "silent":
                    return
                if self.behaviour == "reject":
                    self.answers[cid] = ("rejected", "local control selected")
                else:
                    self.answers[cid] = ("accepted", "")
                    self.executed.append(cid)
            status, reason = self.answers[cid]
            out = Properties(PacketTypes.PUBLISH)
            out.CorrelationData = props.CorrelationData
            client.publish(props.ResponseTopic, json.dumps({"id": cid, "status": status, "reason": reason}), qos=1, properties=out)
            if status == "accepted":
                for point, value in self._effect(body).items():
                    spec = self.site.device(self.device).point(point)
                    client.publish(spec.topic, encode(spec, value, time.time()), qos=1, retain=True)
        except Exception as exc:  # noqa: BLE001 - keep the test device alive; show it
            print("device error:", exc, file=sys.stderr)

    @staticmethod
    def _effect(body: dict) -> dict:
        command, args = body["command"], body["args"]
        if command == "set_speed":
            return {"setpoint": float(args["speed"]), "speed": float(args["speed"])}
        if command in ("start", "stop"):
            return {"running": command == "start"}
        return {}

    def close(self) -> None:
        if self.client is not None:
            self.go_offline()


class Viewer:
    """Telemetry, twin and command service wired as the desktop app wires them; frame() is one frame."""

    def __init__(self, site, broker: LocalBroker, audit: Path):
        self.runtime = Runtime(site)
        self.telemetry = MqttConnector(broker.url, TopicMap(site), reconnect_min=0.2, reconnect_max=1.0)
        self.runtime.add_connector(self.telemetry)
        self.transport = MqttCommandTransport(broker.url, site.topic_prefix, reconnect_min=0.1, reconnect_max=0.5, publish_timeout=2.0)
        self.service = self.runtime.enable_commands(self.transport, audit_path=audit)
        self.runtime.start()
        self.transport.start()
        assert self.transport.wait_ready(10) and self.telemetry.wait_subscribed(10)

    @property
    def state(self):
        return self.runtime.state

    def frame(self) -> None:
        self.runtime.step()

    def run_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.frame()
            if predicate():
                return True
            time.sleep(0.01)
        self.frame()
        return predicate()

    def close(self) -> None:
        self.service.close()
        self.transport.stop()
        self.telemetry.stop()


@pytest.fixture
def rig(broker, site, tmp_path):
    devices: list[Device] = []
    viewers: list[Viewer] = []

    def device(behaviour: str = "accept") -> Device:
        d = Device(broker, site, behaviour).connect()
        devices.append(d)
        return d

    def viewer() -> Viewer:
        v = Viewer(site, broker, tmp_path / "audit.jsonl")
        viewers.append(v)
        return v

    yield device, viewer, tmp_path / "audit.jsonl"
    for v in viewers:
        v.close()
    for d in devices:
        d.close()


def transitions(audit: Path, cid: str) -> list[str]:
    return [r["state"] for r in read_audit(audit, command_id=cid) if r.get("event") == "transition"]


# The device's answer and its new value travel on different connections (commands, telemetry),
# which MQTT does not order: a value that arrives first confirms straight from "sent", and the
# answer becomes a note. Both are true.
CONFIRMED_PATHS = ([REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED], [REQUESTED, SENT, CONFIRMED])


def test_operator_command_on_the_wire_and_confirmed(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    dev.publish_value("level", 50.0)
    v = viewer()
    assert v.run_until(lambda: v.state.point("P-101", "level").quality.label == "good", 10)
    sub = Sub(broker, "plant/+/cmd/#")
    try:
        cmd = v.service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
        assert v.run_until(lambda: cmd.final, 10), cmd
        assert cmd.state == CONFIRMED, cmd.reason
        assert wait_until(lambda: len(sub.messages) == 1, 5)
        [msg] = sub.messages
    finally:
        sub.close()
    assert msg["topic"] == "plant/P-101/cmd/set_speed" and msg["qos"] == 1 and msg["retain"] == 0
    props = msg["properties"]
    assert props["correlation-data"] == cmd.id
    assert props["response-topic"] == "plant/P-101/cmd_response"
    assert 4 <= props["message-expiry-interval"] <= 5
    assert props["content-type"] == "application/json" and props["payload-format-indicator"] == 1
    body = json.loads(msg["payload"])
    assert body == {"id": cmd.id, "device": "P-101", "command": "set_speed", "args": {"speed": 40}, "user": "olga",
                    "issued_at": round(cmd.created, 3), "expires_at": round(cmd.expires_at, 3)}  # fmt: skip
    assert [d["body"]["id"] for d in dev.deliveries] == [cmd.id]
    assert dev.deliveries[0]["corr"] == cmd.id.encode()
    assert transitions(audit, cmd.id) in CONFIRMED_PATHS
    assert v.state.point("P-101", "setpoint").value == 40.0


def test_no_answer_times_out_and_rejection_is_rejected(rig, broker):
    device, viewer, audit = rig
    silent = device("silent")
    v = viewer()
    cmd = v.service.request(OPERATOR, "P-101", "start", {}, True)  # timeout 3 s
    assert v.run_until(lambda: cmd.final, 10)
    assert cmd.state == TIMED_OUT and "not acknowledged" in cmd.reason
    assert transitions(audit, cmd.id) == [REQUESTED, SENT, TIMED_OUT]
    assert [d["body"]["id"] for d in silent.deliveries] == [cmd.id]
    silent.behaviour = "reject"
    cmd2 = v.service.request(OPERATOR, "P-101", "start", {}, True)
    assert v.run_until(lambda: cmd2.final, 10)
    assert cmd2.state == REJECTED and cmd2.reason == "rejected by the device: local control selected"
    assert transitions(audit, cmd2.id) == [REQUESTED, SENT, REJECTED]


def test_refused_commands_publish_nothing(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    dev.publish_value("level", 5.0)  # below the interlock
    v = viewer()
    assert v.run_until(lambda: v.state.point("P-101", "level").value == 5.0, 10)
    sub = Sub(broker, "plant/#")
    try:
        refused = [
            v.service.request(Principal("vic", "viewer"), "P-101", "stop", {}, False),
            v.service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False),  # interlock: level 5
            v.service.request(OPERATOR, "P-101", "stop", {"force": True}, False),
            v.service.request(OPERATOR, "P-101", "start", {}, False),  # not confirmed by the user
        ]
        for _ in range(20):
            v.frame()
            time.sleep(0.01)
        mosquitto_pub(broker, "plant/X-0/cmd/sentinel", "{}")  # proves the subscriber was listening
        assert wait_until(lambda: any(m["topic"].endswith("sentinel") for m in sub.messages), 5)
        time.sleep(0.3)
        cmd_topics = [m["topic"] for m in sub.messages if "/cmd/" in m["topic"] or m["topic"].endswith("cmd_response")]
    finally:
        sub.close()
    assert cmd_topics == ["plant/X-0/cmd/sentinel"]
    assert [c.state for c in refused] == [REFUSED] * 4
    assert "level > 10 is false (level = 5)" in refused[1].reason and "feed tank is too low" in refused[1].reason
    rows = read_audit(audit, state=REFUSED)
    assert [r["id"] for r in rows] == [c.id for c in refused]
    assert rows[0]["user"] == "vic" and rows[0]["role"] == "viewer"
    assert dev.deliveries == []


def test_broker_down_at_request_then_back_delivers_once(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    v = viewer()
    broker.kill()
    assert v.run_until(lambda: not v.transport.connected and v.service.link_up is False, 10)
    cmd = v.service.request(OPERATOR, "P-101", "stop", {}, False)
    assert v.run_until(lambda: cmd.attempts >= 2, 5)
    assert cmd.state == REQUESTED and cmd.display_state == "sent pending"
    broker.start()
    assert v.run_until(lambda: cmd.final, 15), cmd
    assert cmd.state == CONFIRMED, cmd.reason
    assert wait_until(lambda: len(dev.deliveries) >= 1, 2)
    time.sleep(0.5)
    assert [d["body"]["id"] for d in dev.deliveries] == [cmd.id] and dev.executed == [cmd.id]
    assert transitions(audit, cmd.id) in CONFIRMED_PATHS
    notes = [r["reason"] for r in read_audit(audit, command_id=cmd.id) if r["event"] == "note"]
    retries = [n for n in notes if "retrying with the same id" in n]
    # on a loaded machine the device's answer can arrive after its report confirmed the command: a late note
    assert len(retries) == 1 and all(n in retries or "after it was confirmed" in n for n in notes), notes


def test_no_subscribed_device_means_not_sent_yet(rig, broker):
    device, viewer, audit = rig
    v = viewer()
    cmd = v.service.request(OPERATOR, "P-101", "stop", {}, False)  # no device session exists at all
    assert v.run_until(lambda: cmd.attempts >= 2, 10)
    assert cmd.state == REQUESTED and "no device is subscribed to plant/P-101/cmd/stop" in cmd.reason
    dev = device("accept")  # the device comes up within the expiry
    assert v.run_until(lambda: cmd.final, 12), cmd
    assert cmd.state == CONFIRMED and [d["body"]["id"] for d in dev.deliveries] == [cmd.id]
    assert transitions(audit, cmd.id) in CONFIRMED_PATHS


def test_command_queued_for_an_offline_device_survives_a_broker_crash(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    dev.go_offline()  # persistent session: the broker queues its commands
    v = viewer()
    cmd = v.service.request(OPERATOR, "P-101", "stop", {}, False)  # expiry 15 s
    assert v.run_until(lambda: cmd.state == SENT, 10)
    db = broker.dir / "mosquitto.db"
    sent_at = time.time()
    # autosave (interval 1 s, compared in whole seconds) has written the queued command
    assert wait_until(lambda: db.exists() and db.stat().st_mtime > sent_at + 0.01, 10)
    broker.restart(hard=True)  # SIGKILL
    dev.connect()
    assert v.run_until(lambda: cmd.final, 15), cmd
    time.sleep(0.5)
    assert [d["body"]["id"] for d in dev.deliveries] == [cmd.id] and dev.executed == [cmd.id]
    assert cmd.state == CONFIRMED
    assert transitions(audit, cmd.id) in CONFIRMED_PATHS


def test_broker_crash_before_it_saved_the_command_is_told_truthfully(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    dev.go_offline()
    v = viewer()
    cmd = v.service.request(OPERATOR, "P-101", "start", {}, True)  # timeout 3 s, expiry 5 s
    assert v.run_until(lambda: cmd.state == SENT, 10)
    broker.restart(hard=True)  # SIGKILL, most likely before the next autosave
    dev.connect()
    assert v.run_until(lambda: cmd.final, 10), cmd
    time.sleep(0.3)
    ids = [d["body"]["id"] for d in dev.deliveries]
    assert ids in ([], [cmd.id]) and len(dev.executed) == len(ids)  # never twice
    if ids:  # the autosave caught it: delivered once, and confirmed
        assert cmd.state == CONFIRMED
        assert transitions(audit, cmd.id) in CONFIRMED_PATHS
    else:  # lost with the broker: never shown as done
        assert cmd.state == TIMED_OUT and "not acknowledged" in cmd.reason
        assert transitions(audit, cmd.id) == [REQUESTED, SENT, TIMED_OUT]


def test_broker_down_past_expiry_fails_and_never_actuates_later(rig, broker):
    device, viewer, audit = rig
    dev = device("accept")
    v = viewer()
    broker.kill()
    assert v.run_until(lambda: not v.transport.connected, 10)
    cmd = v.service.request(OPERATOR, "P-101", "mode", {"mode": "manual"}, False)  # expiry 2 s
    assert v.run_until(lambda: cmd.final, 10)
    assert cmd.state == FAILED and "could not be sent before it expired" in cmd.reason
    broker.start()
    assert v.run_until(lambda: v.transport.connected, 10)
    assert wait_until(lambda: dev.client.is_connected(), 10)
    time.sleep(1.0)
    v.frame()
    assert dev.deliveries == [] and cmd.state == FAILED
    assert transitions(audit, cmd.id) == [REQUESTED, FAILED]


def test_broker_acl_refusal_fails_at_once(tmp_path, site):
    require_mosquitto()
    acl = tmp_path / "acl"
    acl.write_text("topic read #\n")  # anonymous clients may subscribe, not publish
    with LocalBroker(extra_config=f"acl_file {acl}") as b:
        v = Viewer(site, b, tmp_path / "audit.jsonl")
        try:
            cmd = v.service.request(Principal("ada", "admin"), "P-101", "reset", {}, False)
            assert v.run_until(lambda: cmd.final, 10)
            assert cmd.state == FAILED and "Not authorized" in cmd.reason and cmd.attempts == 1
        finally:
            v.close()


KILL_SCRIPT = """
import os, signal, sys, time
from twinview.connectors.mqtt.commands import MqttCommandTransport
from twinview.site.manifest import load_manifest
from twinview.security.auth import Principal
from twinview.twin.runtime import Runtime
from twinview.twin.commands import CommandService, TwinStateReader
from twinview.twin.state import TwinState

site, _ = load_manifest(sys.argv[1])
transport = MqttCommandTransport(sys.argv[2], site.topic_prefix).start()
assert transport.wait_ready(10)
service = CommandService(site, TwinStateReader(TwinState(site)), transport, sys.argv[3])

def on_transition(cmd, prev):
    if cmd.state == "sent":
        print(cmd.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

service.subscribe(on_transition)
service.request(Principal("olga", "operator"), "P-101", "stop", {}, False)
deadline = time.time() + 20
while time.time() < deadline:
    service.poll()
    time.sleep(0.01)
sys.exit(3)
"""


def test_audit_has_the_sent_line_after_a_sigkill(broker, site, tmp_path):
    audit = tmp_path / "audit.jsonl"
    sub = Sub(broker, "plant/+/cmd/#")
    try:
        proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(site.root), broker.url, str(audit)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        cid = proc.stdout.strip()
        assert wait_until(lambda: len(sub.messages) == 1, 5)
    finally:
        sub.close()
    rows = read_audit(audit)
    assert [(r["id"], r["state"]) for r in rows] == [(cid, REQUESTED), (cid, SENT)]
    assert json.loads(sub.messages[0]["payload"])["id"] == cid


# --- twinview command -------------------------------------------------------------------


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.toml"
    auth.add_user("olga", "operator", "olga-pw", path)
    auth.add_user("vic", "viewer", "vic-pw", path)
    return path


def cli(site, broker, users, audit, *, user="olga", password="olga-pw", token=None, command="stop", args=(), confirm=False):
    out = io.StringIO()
    code = run_command_cli(site.root, "P-101", command, list(args), broker.url, user=user, password=password, token=token,
                           confirm=confirm, users_path=users, audit_path=audit, out=out, connect_timeout=10)  # fmt: skip
    return code, out.getvalue()


def test_cli_confirmed_refused_rejected_and_bad_login(rig, broker, site, users, tmp_path):
    device, _, _ = rig
    audit = tmp_path / "cli-audit.jsonl"
    dev = device("accept")
    dev.publish_value("level", 50.0)

    code, text = cli(site, broker, users, audit, command="set_speed", args=["speed=55"])
    assert code == EXIT_CONFIRMED, text
    printed = [line.split()[4].rstrip(":") for line in text.splitlines()]
    assert [p for p in printed if p != "note"] in CONFIRMED_PATHS, text
    assert dev.executed and json.loads(json.dumps(dev.deliveries[-1]["body"]))["args"] == {"speed": 55}

    code, text = cli(site, broker, users, audit, user="vic", password="vic-pw")
    assert code == EXIT_REFUSED and "role viewer" in text

    code, text = cli(site, broker, users, audit, password="wrong")
    assert code == EXIT_AUTH and "authentication failed" in text

    code, text = cli(site, broker, users, audit, command="set_speed", args=["speed=fast"])
    assert code == EXIT_REFUSED and "speed must be a number" in text

    token = auth.issue_token("olga", users)
    dev.behaviour = "reject"
    code, text = cli(site, broker, users, audit, user=None, password=None, token=token)
    assert code == EXIT_REJECTED and "local control selected" in text

    rows = read_audit(audit)
    ends = [r["state"] for r in rows if r["state"] in FINAL and r.get("event") == "transition"]  # notes are not ends
    assert ends == [CONFIRMED, REFUSED, REFUSED, REFUSED, REJECTED]
    assert "not authenticated" in [r for r in rows if r["state"] == REFUSED][1]["reason"]
