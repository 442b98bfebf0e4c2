"""The web bridge with real websocket clients: snapshots, deltas, fan-out, hostile input, origins, logins."""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).parent / "web"))

from rig import command_site, wait_for  # noqa: E402

from twinview.twin.runtime import Runtime  # noqa: E402
from twinview.connectors.base import Sample  # noqa: E402
from twinview.site import open_site  # noqa: E402
from twinview.twin.looks import DeviceLook  # noqa: E402
from twinview.web.bridge import WebBridge  # noqa: E402
from twinview.web.serve import start_server  # noqa: E402


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return open_site(command_site(tmp_path_factory.mktemp("site")))


@pytest.fixture
def server(loaded):
    from twinview.web.assets import MissingThree

    live = Runtime(loaded.site)
    try:
        srv = start_server(loaded, live, port=0)
    except MissingThree as exc:
        pytest.skip(str(exc))
    yield srv, live
    srv.stop()


class Client:
    """A websocket client that keeps the state it was sent (snapshot + deltas)."""

    def __init__(self, url: str, **options):
        self.ws = connect(url, max_size=None, open_timeout=5, **options).__enter__()
        self.devices: dict[str, dict] = {}
        self.messages: list[dict] = []

    def recv(self, timeout: float = 5.0) -> dict:
        msg = json.loads(self.ws.recv(timeout=timeout))
        self.messages.append(msg)
        if msg["type"] == "snapshot":
            self.devices = dict(msg["devices"])
        elif msg["type"] == "delta":
            self.devices.update(msg["devices"])
        return msg

    def until(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(msg):
                return msg

    def value(self, device: str, point: str = "temp"):
        return self.devices.get(device, {}).get("points", {}).get(point, {}).get("v")

    def send(self, data) -> None:
        self.ws.send(data if isinstance(data, (str, bytes)) else json.dumps(data))

    def close(self) -> None:
        self.ws.close()


def push(live, device: str, value: float) -> None:
    live.submit(Sample(device, "temp", value, time.time()))


def test_a_client_joining_mid_stream_gets_the_latest_state(server):
    srv, live = server
    early = Client(srv.bridge.ws_url)
    try:
        assert early.recv()["type"] == "hello"
        first = early.recv()
        assert first["type"] == "snapshot" and len(first["devices"]) == 9
        assert first["devices"]["B-0-0"]["points"]["temp"]["q"] == "no data"
        for step in range(1, 6):
            push(live, "B-0-0", 10.0 * step)
            push(live, f"B-1-{step % 3}", 20.0 + step)
        early.until(lambda m: early.value("B-0-0") == 50.0 and early.value("B-1-2") == 25.0)

        late = Client(srv.bridge.ws_url)
        try:
            late.recv()
            snapshot = late.recv()
            assert snapshot["type"] == "snapshot"
            assert late.devices == early.devices  # the same state, however it was reached
            entry = snapshot["devices"]["B-0-0"]
            assert entry["points"]["temp"]["v"] == 50.0 and entry["points"]["temp"]["q"] == "good"
            assert entry["label"] == "50 degC" and entry["rgba"] is not None and entry["flags"] == 0
            assert entry["motion"] == [pytest.approx(0.5)]
            assert late.value("B-2-2") is None  # never reported: no value, not a zero
        finally:
            late.close()
    finally:
        early.close()


def test_hostile_messages_are_refused_and_other_clients_keep_receiving(server):
    srv, live = server
    good = Client(srv.bridge.ws_url)
    bad = Client(srv.bridge.ws_url)
    try:
        for c in (good, bad):
            c.recv(), c.recv()
        hostile = [
            ("not json {", "bad_json"),
            ("[1, 2, 3]", "bad_message"),
            ('{"type": "reboot"}', "unknown_type"),
            ('{"type": "command", "device": 5, "command": "start"}', "bad_field"),
            ('{"type": "command", "device": "B-0-0", "command": "start", "args": {"x": NaN}}', "bad_json"),
            ('{"type": "command", "device": "B-0-0", "command": "start", "confirmed": "yes"}', "bad_field"),
            ('{"type": "command", "device": "nope", "command": "start"}', "unknown_device"),
            ("[" * 20_000 + "]" * 20_000, "bad_json"),
            (b"\x00\x01binary", "binary"),
            ('{"type": "auth", "token": "late"}', "auth_not_first"),
        ]
        for data, code in hostile:
            bad.send(data)
            reply = bad.until(lambda m: m["type"] == "error")
            assert reply["code"] == code, (data[:40], reply)
        assert srv.bridge.stats.refused >= len(hostile)

        push(live, "B-1-1", 42.0)
        good.until(lambda m: good.value("B-1-1") == 42.0)
        bad.until(lambda m: bad.value("B-1-1") == 42.0)  # refused messages cost the sender nothing else

        bad.send("x" * (srv.bridge.max_message_bytes + 1))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                bad.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert wait_for(lambda: srv.bridge.stats.oversize == 1)

        push(live, "B-1-1", 43.0)
        good.until(lambda m: good.value("B-1-1") == 43.0)
        assert srv.bridge.client_count() == 1
    finally:
        good.close()
        bad.close()


def test_a_slow_client_gets_the_latest_values_not_a_queue(loaded):
    ids = [d.id for d in loaded.site.devices]
    with WebBridge(ids, max_rate=10.0) as bridge:
        client = Client(bridge.ws_url)
        try:
            client.recv(), client.recv()
            for value in range(1, 301):  # far faster than 10 messages per second
                look = DeviceLook((1.0, 0.0, 0.0, 1.0), 0, (), f"{value}")
                bridge.publish_changes({0: look, 1 + value % 3: look}, {0: [("temp", float(value), "good", None, False)]})
            client.until(lambda m: client.value(ids[0]) == 300.0)
            state_messages = [m for m in client.messages if m["type"] in ("delta", "snapshot")]
            assert len(state_messages) < 30, "changes are coalesced per client, not queued"
            assert client.devices[ids[0]]["label"] == "300"
            assert set(client.devices) >= {ids[0], ids[1], ids[2], ids[3]}
        finally:
            client.close()


def test_values_are_strict_json(loaded):
    ids = [d.id for d in loaded.site.devices]
    with WebBridge(ids) as bridge:
        look = DeviceLook((math.nan, 0.5, math.inf, 1.0), 4, (math.nan,), "odd")
        bridge.publish_changes({0: look}, {0: [("temp", math.inf, "bad", math.nan, False)]})
        client = Client(bridge.ws_url)
        try:
            client.recv()
            raw = client.ws.recv(timeout=5)
            assert "NaN" not in raw and "Infinity" not in raw
            entry = json.loads(raw)["devices"][ids[0]]
            assert entry["rgba"] == [None, 0.5, None, 1.0]
            assert entry["points"]["temp"] == {"v": None, "q": "bad", "t": None, "a": False}
        finally:
            client.close()


def test_origins_are_checked(loaded):
    ids = [d.id for d in loaded.site.devices]
    with WebBridge(ids, allowed_origins=["https://xr.example.org"]) as bridge:
        same = f"http://127.0.0.1:{bridge.port}"
        for origin in (same, "https://xr.example.org"):
            Client(bridge.ws_url, origin=origin).close()
        for origin in ("http://evil.example", f"http://localhost.evil:{bridge.port}", "null"):
            with pytest.raises(InvalidStatus) as refused:
                Client(bridge.ws_url, origin=origin)
            assert refused.value.response.status_code == 403
        assert bridge.stats.origin_refused == 3


def test_logins_use_the_users_file(loaded, tmp_path):
    from twinview.security.auth import add_user, issue_token
    from twinview.web.actuation import token_authenticator

    users = tmp_path / "users.toml"
    add_user("olga", "operator", path=users)
    token = issue_token("olga", path=users)
    ids = [d.id for d in loaded.site.devices]
    with WebBridge(ids, authenticate=token_authenticator(users)) as bridge:
        ok = Client(bridge.ws_url)
        wrong = Client(bridge.ws_url)
        try:
            ok.send({"type": "auth", "token": token})
            reply = ok.until(lambda m: m["type"] in ("auth_ok", "error"))
            assert reply == {"type": "auth_ok", "user": "olga", "role": "operator", "ref": None}
            wrong.send({"type": "auth", "token": token + "x"})
            assert wrong.until(lambda m: m["type"] in ("auth_ok", "error"))["code"] == "auth_failed"
            principals = bridge.principals()
            assert sorted(getattr(p, "name", None) for p in principals.values() if p) == ["olga"]
        finally:
            ok.close()
            wrong.close()


def test_http_serves_the_page_and_nothing_else(server):
    srv, _ = server
    with urllib.request.urlopen(srv.url) as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self' 'sha256-" in csp and "unsafe-eval" not in csp
        assert b'<script type="importmap">' in r.read()
    with urllib.request.urlopen(srv.url + "three/build/three.module.js") as r:
        assert r.headers["Content-Type"].startswith("text/javascript")
    for path in ("../pyproject.toml", "%2e%2e/pyproject.toml", "three/package.json", "node_modules/three/package.json"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + path)
        assert err.value.code == 404


def test_metrics_count_what_the_twin_received_and_applied(server):
    """/metrics is Prometheus text: samples received and applied, points by quality, link states, errors."""
    import urllib.request

    srv, live = server
    push(live, "B-0-0", 33.0)
    push(live, "B-0-1", 34.0)
    live.submit(Sample("B-0-2", "temp", None, time.time(), None, "not a number: 'x'"))

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(srv.url + "metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = scrape()
        if m.get("twinview_samples_applied_total", 0) >= 2 and m.get("twinview_samples_bad_total", 0) >= 1:
            break
        time.sleep(0.1)
    assert m["twinview_samples_applied_total"] >= 2 and m["twinview_samples_bad_total"] == 1
    assert m['twinview_points{quality="good"}'] == 2 and m['twinview_points{quality="bad"}'] == 1
    assert m['twinview_points{quality="no data"}'] == 6
    assert m["twinview_steps_total"] > 0 and 'twinview_errors_total{kind="runtime_errors"}' in m
