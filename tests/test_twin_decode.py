"""Payload decoding: every accepted form, every rejection, and no exception but DecodeError."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinview.connectors.base import Availability, ConnectorStats, Sample
from twinview.connectors.wire.routing import Router
from twinview.site.manifest import PointSpec
from twinview.connectors.wire.decode import MAX_PAYLOAD_BYTES, DecodeError, decode, encode, parse_timestamp
from twinview.connectors.wire.topics import TopicMap

NUM = PointSpec(id="speed", topic="t/speed", range=(0.0, 3000.0))
FREE = PointSpec(id="x", topic="t/x")  # no range
FLAG = PointSpec(id="running", topic="t/running", kind="bool")
STATE = PointSpec(id="state", topic="t/state", kind="enum", states=("stopped", "running", "fault"))
NESTED = PointSpec(id="flow", topic="t/tele", range=(0.0, 200.0), json_value="data.flow", json_time="data.t")
LISTED = PointSpec(id="p", topic="t/tele", json_value="readings.1.v")
NOW = 1_718_000_000.0


@pytest.mark.parametrize(
    "point, payload, expected",
    [
        (NUM, b"42.5", 42.5),
        (NUM, b"  42 \n", 42.0),
        (NUM, b"-0", 0.0),
        (NUM, b"1e3", 1000.0),
        (NUM, b".5", 0.5),
        (NUM, b'"17.25"', 17.25),
        (NUM, b'{"value": 12, "ts": 1718000000}', 12.0),
        (NUM, b'{"value": "12.5"}', 12.5),
        (FREE, b"-1234567.5", -1234567.5),
        (FLAG, b"true", True),
        (FLAG, b"FALSE", False),
        (FLAG, b"1", True),
        (FLAG, b"0", False),
        (FLAG, b"on", True),
        (FLAG, b"Off", False),
        (FLAG, b'{"value": true}', True),
        (FLAG, b'{"value": 0}', False),
        (STATE, b"running", "running"),
        (STATE, b'"fault"', "fault"),
        (STATE, b"Stopped", "stopped"),  # case folded to the manifest's spelling
        (STATE, b'{"value": "running", "ts": "2024-06-10T06:13:20Z"}', "running"),
        (NESTED, b'{"data": {"flow": 12.5, "t": 1718000000123}}', 12.5),
        (LISTED, b'{"readings": [{"v": 1}, {"v": 2.5}]}', 2.5),
    ],
)
def test_accepted_payloads(point, payload, expected):
    value, _, note = decode(point, payload, NOW + 1)  # received a second after it was measured
    assert value == expected and type(value) is type(expected)
    assert note == ""


@pytest.mark.parametrize(
    "point, payload, reason",
    [
        (NUM, b"", "empty"),
        (NUM, b"   ", "empty"),
        (NUM, b"abc", "expected a number"),
        (NUM, b"NaN", "not finite"),
        (NUM, b"nan", "not finite"),
        (NUM, b"Infinity", "not finite"),
        (NUM, b"-inf", "not finite"),
        (NUM, b"1e999", "not finite"),
        (NUM, b'{"value": NaN}', "not finite"),
        (NUM, b'{"value": Infinity}', "not finite"),
        (NUM, b'{"value": -Infinity}', "not finite"),
        (NUM, b'{"value": 1e999}', "not finite"),
        (NUM, b'{"value": ' + b"9" * 400 + b"}", "not finite"),
        (NUM, b'{"value": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (NUM, b"1_000", "expected a number"),
        (NUM, b"0x10", "expected a number"),
        (NUM, b"true", "expected a number"),
        (NUM, b'{"value": true}', "got a boolean"),
        (NUM, b'{"value": [1]}', "got an array"),
        (NUM, b'{"value": null}', "got null"),
        (NUM, b'{"value": {"a": 1}}', "got an object"),
        (NUM, b'{"val": 3}', 'without "value"'),
        (NUM, b"[1, 2]", "array"),
        (NUM, b'{"value": 3', "not valid JSON"),
        (NUM, b"\xff\xfe\x00", "not UTF-8"),
        (NUM, b"4\xc3", "not UTF-8"),
        (NUM, b"[" * 100_000 + b"]" * 100_000, "too large"),
        (NUM, b"[" * 30_000, "nested"),
        (NUM, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested"),
        (NUM, b"1" * (MAX_PAYLOAD_BYTES + 1), "too large"),
        (FLAG, b"maybe", "expected a boolean"),
        (FLAG, b"2", "expected a boolean"),
        (FLAG, b'{"value": 0.5}', "expected a boolean"),
        (FLAG, b'{"value": "yes please"}', "expected a boolean"),
        (STATE, b"exploded", "is not one of"),
        (STATE, b'{"value": 2}', "is not one of"),
        (STATE, b'{"value": true}', "expected one of the states"),
        (NESTED, b'{"data": {"pressure": 1}}', "no value at 'data.flow'"),
        (NESTED, b"12.5", "expected a JSON object"),
        (NESTED, b"not json", "not valid JSON"),
        (LISTED, b'{"readings": [{"v": 1}]}', "no value at"),
    ],
)
def test_rejected_payloads(point, payload, reason):
    with pytest.raises(DecodeError) as info:
        decode(point, payload, NOW)
    assert reason in info.value.reason
    assert len(info.value.reason) < 120  # short enough for a status panel


def test_out_of_range_is_bad_but_keeps_the_value():
    with pytest.raises(DecodeError) as info:
        decode(NUM, b"3500", NOW)
    assert "out of range" in info.value.reason
    assert info.value.value == 3500.0
    assert decode(NUM, b"3000", NOW).value == 3000.0  # the bounds themselves are in range
    assert decode(NUM, b"0", NOW).value == 0.0


@pytest.mark.parametrize(
    "raw, expected",
    [
        (1718000000, 1718000000.0),
        (1718000000.25, 1718000000.25),
        (1718000000123, 1718000000.123),  # milliseconds
        (1718000000123456, 1718000000.123456),  # microseconds
        (1718000000123456789, 1718000000.1234567),  # nanoseconds
        ("1718000000", 1718000000.0),
        ("2024-06-10T06:13:20Z", 1718000000.0),
        ("2024-06-10T08:13:20+02:00", 1718000000.0),
        ("2024-06-10T06:13:20.5", 1718000000.5),  # naive ISO read as UTC
    ],
)
def test_timestamps(raw, expected):
    ts, note = parse_timestamp(raw, NOW + 1)
    assert note == ""
    assert ts == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    "raw, why",
    [
        (NOW + 60, "future"),
        ((NOW + 60) * 1000, "future"),
        (datetime.fromtimestamp(NOW + 3600, timezone.utc).isoformat(), "future"),
        (12345, "before 2000"),
        ("yesterday", "unreadable"),
        (True, "boolean"),
        ({"s": 1}, "object"),
        (-5, "unreadable"),
        ("2024-13-45T99:00:00", "unreadable"),
    ],
)
def test_untrusted_timestamps_fall_back_to_receive_time(raw, why):
    ts, note = parse_timestamp(raw, NOW)
    assert ts is None
    assert why in note


def test_timestamps_a_little_ahead_are_clock_skew_and_clamped_to_the_receive_time():
    """Issue 13: a time 2 s ahead, kept as it was, made every reading of the next 2 s 'out of order'."""
    ts, note = parse_timestamp(NOW + 2.0, NOW)
    assert ts == NOW and "clock skew" in note and "future" in note  # counted by TopicMap (future_ts)
    assert parse_timestamp(NOW - 0.5, NOW) == (NOW - 0.5, "")
    assert parse_timestamp(NOW, NOW) == (NOW, "")


@pytest.mark.parametrize("text", ["４２", "٤٣", "4２", "１e3", "-٣", "4.２"])
def test_unicode_digits_are_not_numbers(text):
    """Issue 13: float() reads fullwidth and Arabic-Indic digits; the documented form is ASCII."""
    with pytest.raises(DecodeError, match="expected a number"):
        decode(NUM, text.encode(), NOW)
    with pytest.raises(DecodeError):
        decode(NUM, json.dumps({"value": text}).encode(), NOW)
    assert parse_timestamp(text, NOW)[0] is None
    assert decode(NUM, b'{"value": 1, "ts": "\xd9\xa1\xd9\xa7\xd9\xa1\xd9\xa8"}', NOW).source_ts is None


def test_payload_timestamp_paths():
    assert decode(NESTED, b'{"data": {"flow": 1, "t": "2024-06-10T06:13:20Z"}}', NOW).source_ts == NOW
    assert decode(NUM, b'{"value": 1, "timestamp": 1718000000000}', NOW).source_ts == NOW
    assert decode(NUM, b"5", NOW).source_ts is None
    future = decode(NUM, json.dumps({"value": 1, "ts": NOW + 600}).encode(), NOW)
    assert future.source_ts is None and "future" in future.note


@pytest.mark.parametrize("point, value", [(NUM, 1234.5), (FLAG, True), (FLAG, False), (STATE, "fault"), (NESTED, 99.0)])
@pytest.mark.parametrize("ts", [None, NOW - 1.5])
def test_encode_round_trips(point, value, ts):
    decoded = decode(point, encode(point, value, ts), NOW)
    assert decoded.value == value
    assert decoded.source_ts == (None if ts is None else pytest.approx(ts))


# --- property tests: nothing but DecodeError ever comes out -------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _json_text(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


malformed = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(_json_text),
    json_values.map(lambda v: _json_text({"value": v, "ts": v})),
    json_values.map(lambda v: _json_text({"data": {"flow": v, "t": v}})),
    st.integers(1, 60_000).map(lambda n: b"[" * n),
    st.integers(1, 30_000).map(lambda n: b'{"value":' * n),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b'{"value": 1e400}', b"\xc3\x28", b"\xed\xa0\x80"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=malformed, point=st.sampled_from([NUM, FREE, FLAG, STATE, NESTED, LISTED]))
def test_decode_raises_only_decode_error(payload, point):
    try:
        value, ts, _ = decode(point, payload, NOW)
    except DecodeError as exc:
        assert exc.reason
        return
    if point.kind == "number":
        assert isinstance(value, float) and math.isfinite(value)
        if point.range:
            assert point.range[0] <= value <= point.range[1]
    elif point.kind == "bool":
        assert isinstance(value, bool)
    else:
        assert value in point.states
    assert ts is None or ts <= NOW + 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=malformed)
def test_router_counts_every_bad_message_and_never_raises(plant, payload):
    """The connector-side path (TopicMap + Router): bad input is counted and becomes a bad Sample."""
    stats = ConnectorStats()
    events: list = []
    router = Router(TopicMap(plant), stats, events.append)
    topic = "plant/P-101/speed"
    router.handle(topic, payload, NOW)
    router.handle("plant/P-101/availability", payload, NOW)
    router.handle(topic, b"1500", NOW)
    assert stats.received == 3
    samples = [e for e in events if isinstance(e, Sample)]
    assert samples[-1] == Sample("P-101", "speed", 1500.0, NOW)  # a later good value still comes through
    first = samples[0]
    assert stats.bad == (first.error is not None) + (not any(isinstance(e, Availability) for e in events))
    if first.error is None:
        assert 0 <= first.value <= 3000
    assert router.internal_errors == 0


def test_points_sharing_a_topic(plant):
    tm = TopicMap(plant)
    both = tm.events("custom/line1/telemetry", b'{"data": {"flow": 5, "pressure": 2, "t": 1718000000}}', NOW)
    assert [(e.point, e.value, e.source_ts) for e in both] == [("flow", 5.0, NOW), ("pressure", 2.0, NOW)]
    one = tm.events("custom/line1/telemetry", b'{"data": {"pressure": 3}}', NOW)
    assert [(e.point, e.value, e.error) for e in one] == [("pressure", 3.0, None)]  # flow: not in this message
    bad_one = tm.events("custom/line1/telemetry", b'{"data": {"flow": "x", "pressure": 3}}', NOW)
    assert [(e.point, e.error is None) for e in bad_one] == [("flow", False), ("pressure", True)]
    neither = tm.events("custom/line1/telemetry", b'{"data": {}}', NOW)
    assert [e.point for e in neither] == ["flow", "pressure"] and all("no value for any point" in e.error for e in neither)
    assert tm.events("plant/nobody/x", b"1", NOW) is None


def test_subscriptions_group_large_sites():
    from twinview.connectors.simulator.plant import synthetic_site

    site = synthetic_site(300)
    subs = TopicMap(site).subscriptions()
    assert subs == [("synth/#", 1)]
    exact = TopicMap(site).subscriptions(exact_limit=10_000)
    assert len(exact) == sum(len(d.points) for d in site.devices) + len(site.devices)
    assert dict(exact)["synth/D00000/availability"] == 1
