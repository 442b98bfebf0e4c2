"""Websocket ingest with a real websockets client: good values arrive, bad ones are answered."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from broker import wait_until
from twinview.connectors.base import LinkState
from twinview.connectors.websocket.ingest import WebSocketIngest
from twinview.twin.vocabulary import Quality
from twinview.connectors.wire.topics import TopicMap


@pytest.fixture
def ingest(plant, make_loop):
    loop = make_loop(plant)
    server = WebSocketIngest("127.0.0.1", 0, TopicMap(plant), max_message_bytes=64 * 1024)
    server.start(loop.inbox.put)
    yield server, loop
    server.stop()


def test_good_messages_in_every_form_arrive(ingest):
    server, loop = ingest
    twin = loop.state
    now = time.time()
    with connect(server.url) as ws:
        ws.send(json.dumps({"topic": "plant/P-101/speed", "payload": "1200"}))
        ws.send(json.dumps({"topic": "plant/P-101/state", "payload": {"value": "running", "ts": now}}))
        ws.send(json.dumps({"device": "T-101", "point": "level", "value": 55.5, "ts": now - 1}))
        ws.send(json.dumps([
            {"device": "F-201", "point": "running", "value": True},
            {"topic": "custom/line1/telemetry", "payload": {"data": {"flow": 7.5, "pressure": 1.5, "t": now}}},
        ]))  # fmt: skip
        ws.send(json.dumps({"topic": "plant/P-101/availability", "payload": "online"}).encode())  # binary frame
        assert loop.run_until(lambda: twin.samples == 6)
    assert twin.point("P-101", "speed").value == 1200.0
    assert twin.point("P-101", "state").source_ts == pytest.approx(now, abs=1e-3)
    assert twin.point("T-101", "level").value == 55.5 and twin.point("T-101", "level").source_ts == pytest.approx(now - 1)
    assert twin.point("F-201", "running").value is True
    assert twin.point("S-502", "pressure").value == 1.5
    assert all(twin.point(d, p).quality is Quality.GOOD for d, p in [("P-101", "speed"), ("S-502", "flow")])
    assert server.stats.bad == 0 and server.stats.received == 6
    assert any(isinstance(e, LinkState) and e.state == "up" for e in loop.events)


def test_bad_messages_are_counted_answered_and_the_connection_survives(ingest):
    server, loop = ingest
    twin = loop.state
    bad = [
        "not json",
        "[1, 2",
        json.dumps({"value": 1}),
        json.dumps(42),
        json.dumps({"topic": 5, "payload": "1"}),
        json.dumps({"topic": "plant/P-101/speed"}),
        json.dumps({"topic": "plant/P-101/speed", "payload": "NaN"}),
        '{"device": "P-101", "point": "speed", "value": NaN}',
        '{"device": "P-101", "point": "speed", "value": 1e999}',
        json.dumps({"device": "P-101", "point": "speed", "value": "fast"}),
        json.dumps({"device": "P-101", "point": "speed", "value": 99999}),
        json.dumps({"device": "P-101", "point": "state", "value": "exploded"}),
        "[" * 20_000 + "]" * 20_000,
    ]
    unknown = [
        json.dumps({"topic": "plant/nobody/speed", "payload": "1"}),
        json.dumps({"device": "P-101", "point": "nope", "value": 1}),
    ]
    with connect(server.url) as ws:
        replies = []
        for message in bad + unknown:
            ws.send(message)
            replies.append(json.loads(ws.recv(timeout=5)))
        ws.send(b"\xff\xfe not utf-8")
        replies.append(json.loads(ws.recv(timeout=5)))
        # a batch with one bad item: the good ones still count
        ws.send(json.dumps([{"device": "P-101", "point": "speed", "value": 100},
                            {"device": "P-101", "point": "speed", "value": "x"},
                            {"device": "P-102", "point": "speed", "value": 200}]))  # fmt: skip
        batch_reply = json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"device": "P-101", "point": "speed", "value": 321}))
        assert loop.run_until(lambda: twin.point("P-101", "speed").value == 321.0)
    assert all("error" in r and r["errors"] for r in replies)
    assert batch_reply["errors"] == [[1, "expected a number, got 'x'"]]
    assert server.stats.bad == len(bad) + 1 + 1  # + invalid UTF-8 + the bad batch item
    assert server.stats.unknown_topic == len(unknown)
    assert twin.point("P-102", "speed").value == 200.0
    assert twin.point("P-101", "speed").quality is Quality.GOOD
    assert twin.point("P-101", "speed").bad >= 4  # decoded-but-bad values reached the point as BAD first
    reasons = " ".join(r["errors"][0][1] for r in replies)
    for expected in ("not valid JSON", "not finite", "out of range", "unknown topic", "unknown point", "nested", "not UTF-8"):
        assert expected in reasons


def test_oversized_message_closes_with_1009_and_is_counted(ingest):
    server, loop = ingest
    with connect(server.url) as ws:
        ws.send(json.dumps({"topic": "plant/P-101/speed", "payload": "1" * 70_000}))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert wait_until(lambda: server.oversized == 1)
    assert server.stats.bad == 1
    with connect(server.url) as ws:  # the server itself is fine
        ws.send(json.dumps({"device": "V-101", "point": "position", "value": 12}))
        assert loop.run_until(lambda: loop.state.point("V-101", "position").value == 12.0)


def test_batch_size_limit(plant):
    server = WebSocketIngest("127.0.0.1", 0, TopicMap(plant), max_batch=3)
    events: list = []
    server.start(events.append)
    try:
        with connect(server.url) as ws:
            ws.send(json.dumps([{"device": "V-101", "point": "position", "value": 1}] * 4))
            assert "larger than 3" in json.loads(ws.recv(timeout=5))["errors"][0][1]
    finally:
        server.stop()
    assert [e.state for e in events if isinstance(e, LinkState)] == ["up", "down"]
