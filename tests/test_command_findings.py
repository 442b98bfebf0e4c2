"""Issue 13 "The twin never lies": each finding reproduced with real parts (mosquitto, mosquitto_pub,
mosquitto_sub, mosquitto_passwd, paho devices, the `twinview` command line), then held fixed.

- a value that already matched is no confirmation (unverified);
- the audit log: a torn last line, commands in flight in other live processes, `twinview command`
  exiting before the device's answer reached the log;
- raw MQTT on command topics: `twinview broker-acl` and the broker that enforces it;
- future timestamps and Unicode digits over MQTT;
- the command line and docs/commands.md agree.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import LocalBroker, mosquitto_pub, require_mosquitto, start_mosquitto_sub, wait_until
from test_commands_mqtt import MQTT_MANIFEST, Device, Viewer
from test_commands_site import write_site

from twinview.cli.broker_acl import acl_text, dynsec_config
from twinview.cli.command import EXIT_CONFIRMED, EXIT_UNVERIFIED, run_command_cli
from twinview.connectors.mqtt.commands import MqttCommandTransport
from twinview.connectors.wire.decode import encode
from twinview.security import auth
from twinview.security.auth import Principal
from twinview.twin.audit import AuditLog, iter_audit, read_audit
from twinview.twin.commands import REQUESTED, SENT, UNVERIFIED, CommandService, TwinStateReader
from twinview.twin.state import TwinState

OPERATOR = Principal("olga", "operator")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker():
    require_mosquitto()
    b = LocalBroker().start()
    yield b
    b.close()


@pytest.fixture
def site(tmp_path):
    return write_site(tmp_path / "site", MQTT_MANIFEST)


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.toml"
    auth.add_user("olga", "operator", "olga-pw", path)
    return path


def report(broker: LocalBroker, site, point: str, value, ts: float | None = None, *, retain: bool = True) -> None:
    """The device's telemetry, published by the real mosquitto_pub."""
    spec = site.device("P-101").point(point)
    mosquitto_pub(broker, spec.topic, encode(spec, value, time.time() if ts is None else ts).decode(), retain=retain)


def offline_device_session(broker: LocalBroker, client_id: str) -> None:
    """A device's command client with a persistent session that is not connected now: the broker
    accepts commands for it (PUBACK success) and queues them; nothing reaches the device."""
    sub = start_mosquitto_sub(broker, "plant/P-101/cmd/#", "-V", "mqttv5", "-q", "1", "-c", "-i", client_id, "-x", "600")
    try:
        assert broker.wait_for_log(client_id, 10)
        time.sleep(0.3)  # its SUBSCRIBE is processed
    finally:
        sub.terminate()
        sub.wait(5)


# --- a value that already matched ---------------------------------------------------------


@pytest.mark.broker
def test_a_value_already_as_wanted_is_not_confirmed_by_coincidence(broker, site, tmp_path):
    """setpoint already 40, set_speed 40 requested, the device's command client is away (nothing
    reaches it) while its telemetry keeps reporting 40 after the send: never 'confirmed'."""
    report(broker, site, "level", 50.0)
    report(broker, site, "setpoint", 40.0)
    offline_device_session(broker, "P-101-commands")
    v = Viewer(site, broker, tmp_path / "audit.jsonl")
    stop = threading.Event()
    periodic = threading.Thread(target=lambda: [report(broker, site, "setpoint", 40.0) for _ in iter(lambda: stop.wait(0.3), True)])
    try:
        assert v.run_until(lambda: v.state.point("P-101", "setpoint").quality.label == "good", 10)
        periodic.start()
        cmd = v.service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)  # timeout 3 s
        assert v.run_until(lambda: cmd.state == SENT, 5)
        sent_at = time.time()
        assert v.run_until(lambda: cmd.final, 10), cmd
        received = v.runtime.state.point("P-101", "setpoint").good_recv_ts
    finally:
        stop.set()
        v.close()
    assert received > sent_at + 1  # reports did arrive after the send, and matched
    assert cmd.state == UNVERIFIED and cmd.outcome == "unverified", cmd.reason
    assert "already did before the command" in cmd.reason
    rows = [r for r in read_audit(tmp_path / "audit.jsonl", command_id=cmd.id) if r["event"] == "transition"]
    assert [r["state"] for r in rows] == [REQUESTED, SENT, UNVERIFIED] and rows[-1]["outcome"] == "unverified"


@pytest.mark.broker
def test_cli_exits_unverified_and_confirmed_when_the_device_answers(broker, site, users, tmp_path):
    report(broker, site, "level", 50.0)
    report(broker, site, "setpoint", 40.0)
    offline_device_session(broker, "P-101-commands")
    audit = tmp_path / "cli.jsonl"
    out = io.StringIO()
    code = run_command_cli(site.root, "P-101", "set_speed", ["speed=40"], broker.url, user="olga", password="olga-pw",
                           users_path=users, audit_path=audit, out=out, answer_grace=0.2)  # fmt: skip
    assert code == EXIT_UNVERIFIED, out.getvalue()
    assert "unverified: setpoint reads 40" in out.getvalue()
    dev = Device(broker, site, "accept").connect(clean_start=True)  # a device that answers: its answer is the evidence
    try:
        code = run_command_cli(site.root, "P-101", "set_speed", ["speed=40"], broker.url, user="olga", password="olga-pw",
                               users_path=users, audit_path=audit, out=io.StringIO())  # fmt: skip
    finally:
        dev.close()
    assert code == EXIT_CONFIRMED


# --- the audit log ---------------------------------------------------------------------------


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    """A crash mid-write leaves a line without its newline; the next writer ends it first."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write({"id": "a" * 32, "state": "sent", "event": "transition"})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b'{"ts":1718000000.1,"event":"transition","id":"bbbb","sta')  # the crash
    os.close(fd)
    with AuditLog(path) as log:
        log.write({"id": "c" * 32, "state": "confirmed", "event": "transition"})
        assert log.torn_lines_ended == 1
    errors: list[str] = []
    assert [r["id"] for r in iter_audit(path, errors)] == ["a" * 32, "c" * 32]
    assert len(errors) == 1 and ":2: unreadable line" in errors[0]
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 3


def run_twinview(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinview.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, **kw)  # fmt: skip


@pytest.mark.broker
def test_commands_in_flight_in_a_live_process_are_not_called_unknown(broker, site, users, tmp_path):
    """`twinview command` in one process, in flight; another start (a second `twinview command`, a
    viewer) must not write 'outcome unknown' for it. Once that process is killed, the next start does, once."""
    audit = tmp_path / "shared.jsonl"
    offline_device_session(broker, "P-101-commands")
    env = {"TWINVIEW_PASSWORD": "olga-pw"}
    common = ["--mqtt", broker.url, "--user", "olga", "--users", str(users), "--audit", str(audit)]
    first = subprocess.Popen([sys.executable, "-m", "twinview.cli", "command", str(site.root), "P-101", "stop", *common],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})  # fmt: skip
    try:
        assert wait_until(lambda: any(r.get("state") == SENT for r in iter_audit(audit)), 20)
        [cid] = {r["id"] for r in iter_audit(audit)}
        assert {r["pid"] for r in iter_audit(audit)} == {first.pid}
        # another `twinview command` starts and ends while the first one's command is in flight
        second = run_twinview("command", str(site.root), "P-101", "reset", *common, env=env)
        assert second.returncode == 10, second.stdout + second.stderr  # refused: olga is no admin
        # and a viewer starts on the same log
        viewer = CommandService(site, TwinStateReader(TwinState(site)), MqttCommandTransport(broker.url, "plant"), audit)
        assert viewer.unresolved == []
        viewer.close()
        assert [r for r in read_audit(audit, command_id=cid) if r["event"] == "note"] == []
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    after = CommandService(site, TwinStateReader(TwinState(site)), MqttCommandTransport(broker.url, "plant"), audit)
    assert [r["id"] for r in after.unresolved] == [cid]
    after.close()
    again = run_twinview("command", str(site.root), "P-101", "reset", *common, env=env)
    assert again.returncode == 10
    notes = [r for r in read_audit(audit, command_id=cid) if r["event"] == "note"]
    assert len(notes) == 1 and notes[0]["reason"].startswith("outcome unknown") and f"pid {first.pid}" in notes[0]["reason"]


class ValueFirstDevice(Device):
    """Reports its new state at once and answers 0.6 s later (answers and telemetry are not ordered)."""

    def _on_message(self, client, userdata, msg) -> None:
        body = json.loads(msg.payload)
        self.deliveries.append({"body": body})
        self.executed.append(body["id"])
        for point, value in self._effect(body).items():
            spec = self.site.device(self.device).point(point)
            client.publish(spec.topic, encode(spec, value, time.time()), qos=1, retain=True)
        props = msg.properties

        def answer() -> None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            out = Properties(PacketTypes.PUBLISH)
            out.CorrelationData = props.CorrelationData
            client.publish(props.ResponseTopic, json.dumps({"id": body["id"], "status": "accepted", "reason": "done"}),
                           qos=1, properties=out)  # fmt: skip

        threading.Timer(0.6, answer).start()


@pytest.mark.broker
def test_cli_waits_for_the_answer_already_on_the_wire(broker, site, users, tmp_path):
    report(broker, site, "level", 50.0)
    report(broker, site, "setpoint", 20.0)  # known before: the change to 55 confirms before the answer arrives
    dev = ValueFirstDevice(broker, site).connect()
    audit = tmp_path / "cli.jsonl"
    out = io.StringIO()
    try:
        code = run_command_cli(site.root, "P-101", "set_speed", ["speed=55"], broker.url, user="olga", password="olga-pw",
                               users_path=users, audit_path=audit, out=out)  # fmt: skip
    finally:
        dev.close()
    assert code == EXIT_CONFIRMED, out.getvalue()
    [cid] = dev.executed
    notes = [r["reason"] for r in read_audit(audit, command_id=cid) if r["event"] == "note"]
    assert notes == ["device accepted the command after it was confirmed: done"], out.getvalue()


def test_failed_login_row_shows_the_arguments(site, users, tmp_path):
    audit = tmp_path / "a.jsonl"
    code = run_command_cli(site.root, "P-101", "set_speed", ["speed=40"], "mqtt://127.0.0.1:1", user="olga",
                           password="wrong", users_path=users, audit_path=audit, out=io.StringIO())  # fmt: skip
    assert code == 14
    [row] = read_audit(audit)
    assert row["args"] == {"speed": 40} and row["state"] == "refused" and "not authenticated" in row["reason"]
    shown = run_twinview("audit", "--file", str(audit)).stdout
    assert "speed=40" in shown


# --- raw MQTT on command topics: the broker's ACL ---------------------------------------------


def _passwd(path: Path, user: str, password: str) -> None:
    flags = ["-b"] if path.exists() else ["-c", "-b"]
    subprocess.run(["mosquitto_passwd", *flags, str(path), user, password], check=True, capture_output=True, timeout=10)


def _pub(broker: LocalBroker, user: str | None, password: str | None, topic: str, payload: str) -> subprocess.CompletedProcess:
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1", "-t", topic, "-m", payload]
    if user:
        cmd += ["-u", user, "-P", password]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10)


PASSWORDS = {"twinview": "tv-pw", "P-101": "dev-pw", "mallory": "m-pw"}


def _only_twinview_reaches_the_device(b: LocalBroker, site, tmp_path: Path, users: Path | None = None) -> None:
    """A stranger's publish on plant/P-101/cmd/stop (anonymous, another broker user, the device itself)
    never reaches the subscribed device; twinview's command, through CommandService, does."""
    device = subprocess.Popen(
        ["stdbuf", "-oL", "mosquitto_sub", "-h", b.host, "-p", str(b.port), "-V", "mqttv5", "-q", "1",
         "-u", "P-101", "-P", PASSWORDS["P-101"], "-i", "P-101", "-t", "plant/P-101/cmd/#", "-v", "-d"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    got: list[str] = []
    threading.Thread(target=lambda: got.extend(line.rstrip("\n") for line in device.stdout), daemon=True).start()
    try:
        assert wait_until(lambda: any("SUBACK" in line for line in got), 10), got
        assert not any("failure" in line.lower() for line in got), got  # its own commands: allowed
        stranger = {"id": "x" * 32, "device": "P-101", "command": "stop", "args": {}, "user": "olga", "expires_at": 4e9}
        anon = _pub(b, None, None, "plant/P-101/cmd/stop", json.dumps(stranger))
        assert anon.returncode != 0 and "not authori" in (anon.stdout + anon.stderr).lower()
        for user in ("mallory", "P-101"):
            other = _pub(b, user, PASSWORDS[user], "plant/P-101/cmd/stop", json.dumps(stranger))
            assert "not authori" in (other.stdout + other.stderr).lower(), (user, other)
        spoof = _pub(b, "P-101", PASSWORDS["P-101"], "plant/P-102/speed", "1")  # another device's telemetry
        assert "not authori" in (spoof.stdout + spoof.stderr).lower()
        # twinview's own command identity, through the real command service
        transport = MqttCommandTransport(f"mqtt://twinview:{PASSWORDS['twinview']}@{b.host}:{b.port}", "plant",
                                         publish_timeout=2.0).start()  # fmt: skip
        assert transport.wait_ready(10), transport.last_error
        service = CommandService(site, TwinStateReader(TwinState(site)), transport, tmp_path / "audit.jsonl")
        cmd = service.request(OPERATOR, "P-101", "stop", {}, False)
        ok = wait_until(lambda: (service.poll() is not None) and cmd.state != REQUESTED, 10)
        service.close()
        transport.stop()
        assert ok and cmd.state == SENT, cmd.reason
        assert wait_until(lambda: any(cmd.id in line for line in got), 5)
        expected = ["plant/P-101/cmd/stop"]
        if users is not None:  # and `twinview command`, its broker password from the environment only
            r = run_twinview("command", str(site.root), "P-101", "mode", "mode=manual", "--mqtt", f"mqtt://twinview@{b.host}:{b.port}",
                             "--user", "olga", "--users", str(users), "--audit", str(tmp_path / "cli.jsonl"),
                             env={"TWINVIEW_PASSWORD": "olga-pw", "TWINVIEW_MQTT_PASSWORD": PASSWORDS["twinview"]})  # fmt: skip
            assert r.returncode == 13 and "expired" in r.stdout, r.stdout + r.stderr  # sent; this device never answers
            assert PASSWORDS["twinview"] not in r.stdout + r.stderr
            expected.append("plant/P-101/cmd/mode")
        time.sleep(0.3)
    finally:
        device.terminate()
        device.wait(5)
    delivered = [line.split(" ", 1)[0] for line in got if line.startswith("plant/")]
    assert delivered == expected and "x" * 32 not in "".join(got)


@pytest.mark.broker
def test_broker_acl_lets_only_twinview_publish_commands(site, users, tmp_path):
    """`twinview broker-acl` + a real mosquitto with that acl_file and a mosquitto_passwd file."""
    require_mosquitto()
    acl = tmp_path / "twinview.acl"
    made = run_twinview("broker-acl", str(site.root), "--out", str(acl))
    assert made.returncode == 0, made.stderr
    text = acl.read_text()
    assert "user twinview\ntopic write plant/+/cmd/mode\n" in text and "user P-101\ntopic read plant/P-101/cmd/#\n" in text
    passwd = tmp_path / "passwd"
    for user, pw in PASSWORDS.items():
        _passwd(passwd, user, pw)
    with LocalBroker(extra_config=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}") as b:
        _only_twinview_reaches_the_device(b, site, tmp_path, users)


@pytest.mark.broker
def test_broker_dynsec_config_lets_only_twinview_publish_commands(site, tmp_path):
    """The --dynsec JSON merged into a file from `mosquitto_ctrl dynsec init`, loaded by mosquitto's
    dynamic-security plugin, passwords set over the network with mosquitto_ctrl as the admin."""
    require_mosquitto()
    plugins = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")) + sorted(Path("/usr/lib").glob("mosquitto_dynamic_security.so"))
    if not plugins:
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    dynsec = tmp_path / "dynsec.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(dynsec), "admin", "admin-pw"], check=True, capture_output=True,
                   timeout=10, stdin=subprocess.DEVNULL)  # fmt: skip
    made = run_twinview("broker-acl", str(site.root), "--out", str(tmp_path / "acl"), "--dynsec", str(dynsec))
    assert made.returncode == 0, made.stderr
    config = json.loads(dynsec.read_text())
    assert {c["username"] for c in config["clients"]} == {"admin", "twinview", "P-101"}
    admin = next(c for c in config["clients"] if c["username"] == "admin")
    assert admin["password"] and admin["roles"] == [{"rolename": "admin"}]  # kept
    with LocalBroker(extra_config=f"allow_anonymous false\nplugin {plugins[0]}\nplugin_opt_config_file {dynsec}") as b:
        ctrl = ["mosquitto_ctrl", "-h", b.host, "-p", str(b.port), "-u", "admin", "-P", "admin-pw", "dynsec"]
        for user in ("twinview", "P-101"):
            subprocess.run([*ctrl, "setClientPassword", user, PASSWORDS[user]], check=True, capture_output=True, timeout=10)
        subprocess.run([*ctrl, "createClient", "mallory", "-p", PASSWORDS["mallory"]], check=True, capture_output=True, timeout=10)
        _only_twinview_reaches_the_device(b, site, tmp_path)
    again = run_twinview("broker-acl", str(site.root), "--out", str(tmp_path / "acl"), "--dynsec", str(dynsec))
    assert again.returncode == 0  # regenerating keeps the passwords set meanwhile
    clients = {c["username"]: c for c in json.loads(dynsec.read_text())["clients"]}
    assert clients["twinview"].get("password") and clients["mallory"]["roles"] == []


def test_broker_acl_refuses_names_that_would_be_wildcards(tmp_path):
    from dataclasses import replace

    good = write_site(tmp_path / "good", MQTT_MANIFEST)
    dev = good.devices[0]
    with pytest.raises(ValueError, match="P\\+101"):  # the manifest refuses such ids; the ACL writer checks again
        acl_text(replace(good, devices=(replace(dev, id="P+101"),)))
    point = replace(dev.points[0], topic="plant/#")
    with pytest.raises(ValueError, match="plant/#"):
        acl_text(replace(good, devices=(replace(dev, points=(point,)),)))
    for topic in ("plant/P-102/cmd/stop", "plant/P-102/cmd_response"):  # a device may not write into the command space
        point = replace(dev.points[0], topic=topic)
        with pytest.raises(ValueError, match="command space"):
            acl_text(replace(good, devices=(replace(dev, points=(point,)),)))
    with pytest.raises(ValueError, match="also a device id"):
        acl_text(good, user="P-101")
    with pytest.raises(ValueError, match="must differ"):
        acl_text(good, fleet_user="twinview")
    made = run_twinview("broker-acl", str(good.root), "--user", "P-101")
    assert made.returncode == 2 and made.stderr.startswith("error: ") and "Traceback" not in made.stderr
    assert run_twinview("broker-acl", str(good.root)).stdout == acl_text(good)
    config = dynsec_config(good)
    roles = {r["rolename"]: r for r in config["roles"]}
    sends = [a["topic"] for a in roles["twinview-commands"]["acls"] if a["acltype"] == "publishClientSend"]
    assert sends == [f"plant/+/cmd/{name}" for name in ("mode", "reset", "set_speed", "start", "stop")] + ["plant/_twin/rebirth"]
    assert config["defaultACLAccess"]["publishClientSend"] is False


# --- timestamps and digits over MQTT -------------------------------------------------------


@pytest.mark.broker
def test_a_future_timestamp_never_blocks_later_readings(broker, site, tmp_path):
    """Issue 13: a reading stamped 4 s ahead was trusted; every honest reading of the next 4 s was
    then 'out of order'. Now it is clamped to its receive time and counted."""
    v = Viewer(site, broker, tmp_path / "audit.jsonl")
    try:
        report(broker, site, "speed", 10.0, time.time() + 4.0, retain=False)
        assert v.run_until(lambda: v.state.point("P-101", "speed").value == 10.0, 5)
        assert v.state.point("P-101", "speed").source_ts <= time.time()
        report(broker, site, "speed", 20.0, time.time(), retain=False)  # an honest clock, a moment later
        assert v.run_until(lambda: v.state.point("P-101", "speed").value == 20.0, 3)
        assert v.state.counters["out_of_order"] == 0
        assert v.telemetry.topic_map.counters["future_ts"] == 1  # counted, shown with the connector's counters
    finally:
        v.close()


@pytest.mark.broker
def test_unicode_digits_over_mqtt_are_bad_values(broker, site, tmp_path):
    v = Viewer(site, broker, tmp_path / "audit.jsonl")
    try:
        spec = site.device("P-101").point("speed")
        mosquitto_pub(broker, spec.topic, "42")
        assert v.run_until(lambda: v.state.point("P-101", "speed").value == 42.0, 5)
        mosquitto_pub(broker, spec.topic, "４２")
        assert v.run_until(lambda: v.state.point("P-101", "speed").quality.label == "bad", 5)
        assert "expected a number" in v.state.point("P-101", "speed").error
        mosquitto_pub(broker, spec.topic, '{"value": "٤٣"}')
        assert v.run_until(lambda: v.state.counters["bad"] == 2, 5)
    finally:
        v.close()
    out = io.StringIO()
    code = run_command_cli(site.root, "P-101", "set_speed", ["speed=４２"], broker.url, user="olga", password="x",
                           users_path=tmp_path / "none.toml", audit_path=tmp_path / "a.jsonl", out=out)  # fmt: skip
    assert code == 14  # the login fails first; the argument stays text and would be refused by name
    assert read_audit(tmp_path / "a.jsonl")[0]["args"] == {"speed": "４２"}


# --- the command line agrees with docs/commands.md ---------------------------------------------


def test_cli_and_docs_agree(site, users, tmp_path):
    docs = (ROOT / "docs" / "commands.md").read_text()
    assert "--password" not in docs.replace("--password-stdin", "")
    helptext = run_twinview("command", "--help").stdout
    for flag in ("--yes", "--confirm", "--user", "--token", "--users", "--audit", "--mqtt"):
        assert flag in helptext
    # every flag the docs show for `twinview command` is accepted (the broker is unreachable: not a usage error)
    for shown in ("--yes", "--confirm"):
        r = run_twinview("command", str(site.root), "P-101", "reset", "--mqtt", "mqtt://127.0.0.1:1", "--user", "olga",
                         shown, "--users", str(users), "--audit", str(tmp_path / "a.jsonl"), env={"TWINVIEW_PASSWORD": "bad"})  # fmt: skip
        assert r.returncode == 14 and "unrecognized arguments" not in r.stderr, r.stderr
    # users add reads $TWINVIEW_PASSWORD like `twinview command`
    r = run_twinview("users", "add", "ann", "--role", "operator", "--file", str(users), env={"TWINVIEW_PASSWORD": "ann-pw"},
                     stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert auth.authenticate("ann", "ann-pw", path=users).role == "operator"
    # audit --json: JSON lines, no blank line at the end
    with AuditLog(tmp_path / "j.jsonl") as log:
        log.write({"id": "a" * 32, "state": "refused", "event": "transition"})
    out = run_twinview("audit", "--file", str(tmp_path / "j.jsonl"), "--json").stdout
    assert out.endswith("}\n") and not out.endswith("\n\n") and json.loads(out)["state"] == "refused"


def test_the_twin_clamps_future_times_from_any_source_and_counts_them(site):
    """Sources that do not go through the decoder (sample batches, replays) get the same rule."""
    from twinview.connectors.base import Sample

    state = TwinState(site)
    t = 1_800_000_000.0
    state.apply([Sample("P-101", "speed", 10.0, t, t + 3.0)])  # 3 s ahead of its arrival
    assert state.point("P-101", "speed").source_ts == t and state.counters["clock_skew"] == 1
    state.apply([Sample("P-101", "speed", 20.0, t + 0.5, t + 0.4)])  # honest, half a second later
    assert state.point("P-101", "speed").value == 20.0 and state.counters["out_of_order"] == 0
    state.apply([Sample("P-101", "speed", 30.0, t + 0.6, t + 0.1)])  # really older than what is shown
    assert state.point("P-101", "speed").value == 20.0 and state.counters["out_of_order"] == 1


@pytest.mark.broker
def test_the_demo_pump_stops_only_through_twinview_behind_the_acl(users, tmp_path):
    """The finding end to end: the simulated plant as an MQTT fleet behind `twinview broker-acl
    --fleet-user sim`; a stranger's well-formed stop on plant/P-103/cmd/stop is refused by the broker
    and the pump keeps running; `twinview command ... stop --yes` stops it, confirmed and audited."""
    require_mosquitto()
    from twinview.cli import demo_site_path
    from twinview.connectors.simulator.fleet import run_publisher
    from twinview.site.manifest import load_manifest

    demo, _ = load_manifest(demo_site_path())
    acl = tmp_path / "acl"
    assert run_twinview("broker-acl", str(demo_site_path()), "--fleet-user", "sim", "--out", str(acl)).returncode == 0
    passwd = tmp_path / "passwd"
    for user, pw in (("twinview", "tv-pw"), ("sim", "sim-pw"), ("mallory", "m-pw")):
        _passwd(passwd, user, pw)
    with LocalBroker(extra_config=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}") as b:
        stop = threading.Event()
        stats: dict = {}
        fleet = threading.Thread(target=lambda: stats.update(run_publisher(
            demo, b.url, 1.0, stop, client_options={"username": "sim", "password": "sim-pw"})))  # fmt: skip
        fleet.start()
        state = ["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-u", "twinview", "-P", "tv-pw", "-t", "plant/P-103/state", "-C", "1", "-W", "10"]
        try:
            assert json.loads(subprocess.run(state, capture_output=True, text=True, timeout=15).stdout)["value"] == "running"
            body = {"id": "f" * 32, "device": "P-103", "command": "stop", "args": {}, "user": "olga", "expires_at": time.time() + 30}
            stranger = _pub(b, "mallory", "m-pw", "plant/P-103/cmd/stop", json.dumps(body))
            assert "not authori" in (stranger.stdout + stranger.stderr).lower()
            time.sleep(1.5)
            assert json.loads(subprocess.run(state, capture_output=True, text=True, timeout=15).stdout)["value"] == "running"
            assert stats == {} and fleet.is_alive()
            audit = tmp_path / "demo.jsonl"
            r = run_twinview("command", str(demo_site_path()), "P-103", "stop", "--yes", "--mqtt", f"mqtt://twinview@{b.host}:{b.port}",
                             "--user", "olga", "--users", str(users), "--audit", str(audit),
                             env={"TWINVIEW_PASSWORD": "olga-pw", "TWINVIEW_MQTT_PASSWORD": "tv-pw"})  # fmt: skip
            assert r.returncode == 0 and "confirmed: state reported 'stopped'" in r.stdout, r.stdout + r.stderr
        finally:
            stop.set()
            fleet.join(10)
    assert stats["commands"] == 1 and stats["commands_rejected"] == 0  # the stranger's never reached it
    assert [row["state"] for row in read_audit(audit) if row["event"] == "transition"][-1] == "confirmed"
