"""MQTT end to end with a real mosquitto and the real mosquitto_pub / mosquitto_sub clients."""

from __future__ import annotations

import json
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import LocalBroker, mosquitto_pub, require_mosquitto, wait_until
from twinview.connectors.base import LinkState, Sample
from twinview.connectors.mqtt.telemetry import MqttConnector, parse_url
from twinview.twin.vocabulary import Quality
from twinview.connectors.wire.topics import TopicMap

pytestmark = pytest.mark.broker


def connect(url, site, sink, **options) -> MqttConnector:
    conn = MqttConnector(url, TopicMap(site), reconnect_min=0.2, reconnect_max=1.0, **options)
    conn.start(sink)
    assert conn.wait_subscribed(10), "no SUBACK from the broker"
    return conn


def test_parse_url():
    a = parse_url("mqtts://op%40site:s3cr%2Ft@broker.example:8884/?protocol=3.1.1&ca_file=/etc/ca.pem")
    assert (a.scheme, a.host, a.port, a.username, a.password, a.tls) == ("mqtts", "broker.example", 8884, "op@site", "s3cr/t", True)
    assert a.options == {"protocol": "3.1.1", "ca_file": "/etc/ca.pem"}
    assert parse_url("mqtt://localhost").port == 1883
    assert parse_url("mqtts://localhost").port == 8883
    assert parse_url("127.0.0.1:1884").port == 1884
    assert parse_url("wss://h/mqtt").transport == "websockets"
    for bad in ("http://x", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(ValueError):
            parse_url(bad)


@pytest.mark.parametrize("exact_limit", [200, 5])
def test_values_published_with_mosquitto_pub_arrive(broker, plant, make_loop, exact_limit):
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put, exact_limit=exact_limit)
    if exact_limit == 5:
        assert ("plant/#", 1) in conn.subscriptions and ("custom/line1/telemetry", 0) in conn.subscriptions
    try:
        now = time.time()
        mosquitto_pub(broker, "plant/P-101/speed", "1450.5")
        mosquitto_pub(broker, "plant/P-101/state", json.dumps({"value": "running", "ts": now}))
        mosquitto_pub(broker, "plant/F-201/running", "on", v5=False)
        mosquitto_pub(broker, "custom/line1/telemetry", json.dumps({"data": {"flow": 12.5, "pressure": 3.25, "t": int(now * 1000)}}))
        mosquitto_pub(broker, "plant/T-101/level", lines=["10", "20.5", "30"])
        twin = loop.state
        assert loop.run_until(lambda: twin.point("T-101", "level").value == 30.0 and twin.samples >= 8)
        assert twin.point("P-101", "speed").value == 1450.5
        assert twin.point("P-101", "speed").quality is Quality.GOOD
        state = twin.point("P-101", "state")
        assert state.value == "running" and state.source_ts == pytest.approx(now, abs=1e-3)
        assert twin.point("F-201", "running").value is True
        assert (twin.point("S-502", "flow").value, twin.point("S-502", "pressure").value) == (12.5, 3.25)
        assert twin.point("S-502", "flow").source_ts == pytest.approx(int(now * 1000) / 1000)
        assert twin.history("T-101", "level")[1][-1] == 30.0
        assert twin.point("T-101", "level").updates == 3
        assert conn.stats.received == 7 and conn.stats.bad == 0
        links = [e for e in loop.events if isinstance(e, LinkState)]
        assert [e.state for e in links] == ["connecting", "up"]
    finally:
        conn.stop()


BAD_PAYLOADS = [
    b"not a number",
    b"NaN",
    b"Infinity",
    b"1e999",
    b'{"value": NaN}',
    b'{"value": 1e999, "ts": 1}',
    b"[" * 60_000,  # deep nesting: RecursionError inside json.loads
    b'{"a":' * 12_000 + b"1" + b"}" * 12_000,
    b"\xff\xfe\xfd garbage",  # not UTF-8
    b"5" * 70_000,  # larger than the payload cap
    b'{"value": true}',  # wrong type
    b"4000",  # out of physical range
    b'{"value": [1, 2]}',
    b'{"value": {"deeper": 3}}',
]


def test_malformed_payloads_are_counted_and_telemetry_keeps_flowing(broker, plant, make_loop, tmp_path):
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put)
    try:
        for payload in BAD_PAYLOADS:
            mosquitto_pub(broker, "plant/P-101/speed", payload, tmp=tmp_path)
        mosquitto_pub(broker, "plant/P-101/availability", "maybe")
        mosquitto_pub(broker, "plant/nobody/listens", "1")
        mosquitto_pub(broker, "plant/P-101/speed", "1234")
        twin = loop.state
        assert loop.run_until(lambda: twin.point("P-101", "speed").value == 1234.0)
        assert conn.stats.bad == len(BAD_PAYLOADS) + 1  # + the bad availability payload
        assert twin.bad == len(BAD_PAYLOADS)
        assert twin.point("P-101", "speed").bad == len(BAD_PAYLOADS)
        assert twin.point("P-101", "speed").quality is Quality.GOOD
        assert conn.callback_errors == 0 and conn._router.internal_errors == 0
        # the network thread is alive: one more message still gets through
        mosquitto_pub(broker, "plant/P-101/speed", "1235")
        assert loop.run_until(lambda: twin.point("P-101", "speed").value == 1235.0)
        # only topics the site subscribes to reach us; the unknown one was under no subscription
        errors = {e.error for e in loop.events if isinstance(e, Sample) and e.error}
        assert any("nested" in e for e in errors) and any("UTF-8" in e for e in errors)
        assert any("too large" in e for e in errors) and any("out of range" in e for e in errors)
    finally:
        conn.stop()


def test_a_failing_sink_does_not_kill_the_network_thread(broker, plant):
    got: list = []
    calls = {"n": 0}

    def sink(ev):
        calls["n"] += 1
        if isinstance(ev, Sample) and ev.value == 1.0:
            raise RuntimeError("bug in the consumer")
        got.append(ev)

    conn = connect(broker.url, plant, sink)
    try:
        mosquitto_pub(broker, "plant/P-101/speed", "1")
        mosquitto_pub(broker, "plant/P-101/speed", "2")
        assert wait_until(lambda: any(isinstance(e, Sample) and e.value == 2.0 for e in got))
        assert conn.stats.bad >= 1 and "RuntimeError" in conn.stats.last_error
    finally:
        conn.stop()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory):
    require_mosquitto()
    b = LocalBroker(workdir=tmp_path_factory.mktemp("broker")).start()
    yield b
    b.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=300) | st.sampled_from(BAD_PAYLOADS), topic=st.sampled_from(
    ["plant/P-101/speed", "plant/P-101/state", "plant/F-201/running", "custom/line1/telemetry", "plant/P-101/availability", "x/y"]))  # fmt: skip
def test_on_message_never_raises(module_broker, plant, payload, topic):
    """Paho's own message objects through the exact callback paho calls."""
    events: list = []
    conn = _shared_connector(module_broker, plant)
    conn._sink = conn._router.sink = events.append
    before = conn.stats.snapshot()
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    conn._on_message(conn._client, None, msg)  # must not raise
    after = conn.stats.snapshot()
    assert conn.callback_errors == 0 and conn._router.internal_errors == 0
    if topic == "x/y":
        assert after["unknown_topic"] == before["unknown_topic"] + 1
        return
    assert after["received"] == before["received"] + 1
    bad_samples = [e for e in events if isinstance(e, Sample) and e.error]
    if topic.endswith("availability"):
        assert len(events) == 1 or after["bad"] == before["bad"] + 1
    else:
        assert after["bad"] - before["bad"] == len(bad_samples)


_shared: dict = {}


def _shared_connector(broker, site) -> MqttConnector:
    conn = _shared.get(broker.port)
    if conn is None:
        conn = _shared[broker.port] = connect(broker.url, site, lambda e: None)
    return conn


def test_after_the_property_test_real_messages_still_flow(module_broker, plant):
    conn = _shared.pop(module_broker.port, None) or connect(module_broker.url, plant, lambda e: None)
    got: list = []
    conn._sink = conn._router.sink = got.append
    try:
        mosquitto_pub(module_broker, "plant/P-102/speed", "777")
        assert wait_until(lambda: any(isinstance(e, Sample) and e.value == 777.0 for e in got))
    finally:
        conn.stop()


def test_broker_restart_goes_stale_then_recovers(broker, plant, make_loop):
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put, keepalive=5)
    twin = loop.state
    try:
        mosquitto_pub(broker, "plant/P-101/speed", "1000")
        assert loop.run_until(lambda: twin.point("P-101", "speed").quality is Quality.GOOD)
        broker.kill()  # SIGKILL: no goodbye
        assert loop.run_until(lambda: twin.point("P-101", "speed").quality is Quality.STALE, timeout=10)
        assert "link down" in twin.point("P-101", "speed").note
        assert twin.links[conn.name].state == "down"
        broker.start()
        assert wait_until(lambda: conn.connected, timeout=15)
        assert conn.wait_subscribed(10)  # subscribed again on the new connection
        mosquitto_pub(broker, "plant/P-101/speed", "1100")
        assert loop.run_until(lambda: twin.point("P-101", "speed").value == 1100.0)
        assert twin.point("P-101", "speed").quality is Quality.GOOD
        assert conn.connects == 2
        states = [e.state for e in loop.events if isinstance(e, LinkState)]
        assert states[:2] == ["connecting", "up"] and "down" in states and states[-1] == "up"
    finally:
        conn.stop()


def test_last_will_marks_the_device_offline(broker, plant, make_loop):
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put)
    twin = loop.state
    client_id = f"device-P-101-{time.monotonic_ns()}"
    device = subprocess.Popen(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", "plant/P-101/cmd", "-i", client_id, "-V", "mqttv5",
         "--will-topic", "plant/P-101/availability", "--will-payload", "offline", "--will-retain", "--will-qos", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert broker.wait_for_log(f"as {client_id}"), "the device never connected"
        mosquitto_pub(broker, "plant/P-101/availability", "online", retain=True)
        mosquitto_pub(broker, "plant/P-101/speed", "900")
        assert loop.run_until(lambda: twin.point("P-101", "speed").quality is Quality.GOOD)
        device.kill()  # the device dies without DISCONNECT: the broker publishes its will
        device.wait(5)
        assert loop.run_until(lambda: twin.device_offline("P-101"), timeout=10)
        assert twin.device_quality("P-101") is Quality.OFFLINE
        assert twin.point("P-101", "speed").value == 900.0  # last value kept for display
    finally:
        if device.poll() is None:
            device.kill()
        device.wait(5)
        conn.stop()
    # the retained "offline" is what a viewer that starts later sees first
    late = make_loop(plant)
    conn2 = connect(broker.url, plant, late.inbox.put)
    try:
        assert late.run_until(lambda: late.state.device_offline("P-101"))
        mosquitto_pub(broker, "plant/P-101/availability", "online", retain=True)
        assert late.run_until(lambda: not late.state.device_offline("P-101"))
        mosquitto_pub(broker, "plant/P-101/speed", "950")
        assert late.run_until(lambda: late.state.point("P-101", "speed").quality is Quality.GOOD)
    finally:
        conn2.stop()


def test_silence_turns_points_stale_via_tick(broker, plant, make_loop):
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put)
    twin = loop.state
    try:
        mosquitto_pub(broker, "plant/P-101/speed", "500")  # period 1 s, stale_factor 3
        assert loop.run_until(lambda: twin.point("P-101", "speed").quality is Quality.GOOD)
        received = twin.point("P-101", "speed").recv_ts
        assert twin.tick(received + 2.9).size == 0
        assert set(twin.table.device[twin.tick(received + 3.1)].tolist()) == {twin.index("P-101")}
        assert twin.point("P-101", "speed").quality is Quality.STALE
    finally:
        conn.stop()


def test_mqtt_311_option(broker, plant, make_loop):
    loop = make_loop(plant)
    conn = connect(broker.url + "?protocol=3.1.1", plant, loop.inbox.put)
    try:
        assert not conn.protocol5
        mosquitto_pub(broker, "plant/V-101/position", "55", v5=False)
        assert loop.run_until(lambda: loop.state.point("V-101", "position").value == 55.0)
    finally:
        conn.stop()


def _make_certs(d) -> dict:
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=30)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=twinview test CA",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext.cnf", "-out", "server.crt")  # fmt: skip
    return {k: str(d / f) for k, f in (("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key"))}


def test_mqtts_with_a_ca_file(tmp_path, plant, make_loop):
    require_mosquitto()
    import shutil

    from twinview.connectors.mqtt.localbroker import free_port

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    extra = f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}"
    with LocalBroker(workdir=tmp_path / "b", extra_config=extra) as b:
        loop = make_loop(plant)
        conn = connect(f"mqtts://127.0.0.1:{tls_port}", plant, loop.inbox.put, ca_file=certs["ca"])
        try:
            mosquitto_pub(b, "plant/P-102/speed", "2222")
            assert loop.run_until(lambda: loop.state.point("P-102", "speed").value == 2222.0)
        finally:
            conn.stop()
        # a client that does not trust the CA never gets "up"
        events: list = []
        bad = MqttConnector(f"mqtts://127.0.0.1:{tls_port}", TopicMap(plant), reconnect_min=0.2, reconnect_max=0.5)
        bad.start(events.append)
        try:
            assert not bad.wait_connected(1.5)
            assert wait_until(lambda: any(isinstance(e, LinkState) and e.state == "down" for e in events))
        finally:
            bad.stop()


def test_many_messages_none_lost_at_qos1(broker, plant, make_loop):
    """A burst through the real broker: delivered count equals sent count, in order."""
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put)
    try:
        values = [str(v) for v in range(2000)]
        mosquitto_pub(broker, "plant/P-102/speed", lines=values, qos=1)
        assert loop.run_until(lambda: loop.state.point("P-102", "speed").value == 1999.0, timeout=15)
        assert loop.state.point("P-102", "speed").updates == 2000
        assert conn.stats.received == 2000
    finally:
        conn.stop()


def test_stop_is_idempotent_and_emits_down(broker, plant):
    events: list = []
    conn = connect(broker.url, plant, events.append)
    conn.stop()
    conn.stop()
    assert [e.state for e in events if isinstance(e, LinkState)][-1] == "down"

def test_sequence_gaps_count_what_never_arrived(broker, plant, make_loop):
    """Devices that number their messages ("seq") let the twin see what a broker or a network dropped."""
    loop = make_loop(plant)
    conn = connect(broker.url, plant, loop.inbox.put)
    try:
        seqs = [1, 2, 3, 7, 8, 8, 5, 9]  # 4-6 lost; 8 repeated and 5 late are not losses
        mosquitto_pub(broker, "plant/P-101/speed", lines=[json.dumps({"value": 100 + s, "seq": s}) for s in seqs])
        assert loop.run_until(lambda: conn.stats.snapshot()["received"] == len(seqs))
        assert conn.stats.snapshot()["lost"] == 3
        assert loop.run_until(lambda: loop.state.links[conn.name].state == "degraded")
        assert "3 messages lost in transit" in loop.state.links[conn.name].detail
        assert loop.state.point("P-101", "speed").value == 109.0  # values keep flowing; the link says some went missing
    finally:
        conn.stop()


def test_a_broker_that_refuses_the_rebirth_request_is_not_asked_again(tmp_path, plant, make_loop):
    """A broker's ACL may refuse our rebirth request (mosquitto then drops an MQTT 5 client):
    the connector stops asking after it happens twice running, and telemetry flows."""
    from twinview.connectors.mqtt.localbroker import LocalBroker

    from test_command_findings import _passwd

    require_mosquitto()
    acl = tmp_path / "acl"
    acl.write_text("user viewer\ntopic read #\n\nuser device\ntopic write plant/#\n")  # no plant/_twin/rebirth for us
    passwd = tmp_path / "passwd"
    _passwd(passwd, "viewer", "v-pw")
    _passwd(passwd, "device", "d-pw")
    broker = LocalBroker(workdir=tmp_path / "b",
                         extra_config=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}").start()  # fmt: skip
    loop = make_loop(plant)
    url = broker.url.replace("mqtt://", "mqtt://viewer:v-pw@")
    conn = MqttConnector(url, TopicMap(plant), reconnect_min=0.1, reconnect_max=0.3)
    conn.start(loop.inbox.put)
    try:
        assert wait_until(lambda: not conn.rebirth, timeout=20), conn.stats.snapshot()
        assert "rebirth" in conn.stats.snapshot()["last_error"]
        assert conn.wait_subscribed(10)
        time.sleep(1.5)  # stays connected now that it no longer asks
        assert conn.connected
        subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-u", "device", "-P", "d-pw",
                        "-t", "plant/P-101/speed", "-m", "1234", "-q", "1"], check=True, timeout=10)  # fmt: skip
        assert loop.run_until(lambda: loop.state.point("P-101", "speed").value == 1234.0, timeout=10)
    finally:
        conn.stop()
        broker.close()
