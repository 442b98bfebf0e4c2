"""CommandService lifecycle with a controlled clock: roles, arguments, interlocks,
confirmation against a real TwinState, timeouts, expiry, retries and the audit trail.

The transport here is a scripted stand-in at the Transport protocol boundary (it
records what would go on the wire); the same service over a real broker is in
test_commands_mqtt.py.
"""

from __future__ import annotations

import json

import pytest
from test_commands_site import Plant, write_site

from twinview.twin.audit import read_audit
from twinview.security.auth import Principal
from twinview.twin.commands import (
    ACKNOWLEDGED, CONFIRMED, EXPIRED, FAILED, REFUSED, REJECTED, REQUESTED, SENT, TIMED_OUT, UNVERIFIED,
    CommandService, PublishError, matches, parse_cli_args, parse_response, validate_args,
)  # fmt: skip

OPERATOR = Principal("olga", "operator")
VIEWER = Principal("vic", "viewer")
ADMIN = Principal("ada", "admin")
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Wire:
    """Records publishes; `up` decides whether the broker accepts them."""

    def __init__(self):
        self.up = True
        self.sent: list[dict] = []
        self.attempts: list[dict] = []
        self.refuse: str | None = None

    def publish(self, topic, payload, *, qos=1, expiry_s, correlation_id, response_topic):
        entry = {"topic": topic, "payload": payload, "qos": qos, "expiry_s": expiry_s,
                 "correlation_id": correlation_id, "response_topic": response_topic}  # fmt: skip
        self.attempts.append(entry)
        if self.refuse:
            raise PublishError(self.refuse, permanent=True)
        if not self.up:
            return False
        self.sent.append(entry)
        return True


@pytest.fixture
def rig(tmp_path):
    site = write_site(tmp_path / "site")
    plant = Plant(site)
    clock = Clock()
    wire = Wire()
    audit = tmp_path / "audit.jsonl"
    service = CommandService(site, plant.reader, wire, audit, clock=clock, threaded=False)
    seen: list[tuple[str, str]] = []
    service.subscribe(lambda cmd, prev: seen.append((prev, cmd.state)))
    plant.report(clock.t, level=50.0, setpoint=20.0, speed=20.0, running=True)
    yield site, plant, clock, wire, service, audit, seen
    service.close()


def states(audit, cid):
    return [r["state"] for r in read_audit(audit, command_id=cid) if r.get("event") == "transition"]


def test_operator_command_goes_through_the_whole_loop(rig):
    site, plant, clock, wire, service, audit, seen = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    assert cmd.state == REQUESTED and wire.attempts == []
    assert service.pending_devices() == {"P-101"}
    assert service.poll() == {"P-101"}
    assert cmd.state == SENT
    [msg] = wire.sent
    assert msg["topic"] == "plant/P-101/cmd/set_speed"
    assert msg["response_topic"] == "plant/P-101/cmd_response"
    assert msg["correlation_id"] == cmd.id and msg["qos"] == 1 and msg["expiry_s"] == 5
    body = json.loads(msg["payload"])
    assert body == {"id": cmd.id, "device": "P-101", "command": "set_speed", "args": {"speed": 40},
                    "user": "olga", "issued_at": T0, "expires_at": T0 + 5}  # fmt: skip

    clock.t += 0.2
    service.on_ack(cmd.id, "accepted", "ok", "P-101")
    service.poll()
    assert cmd.state == ACKNOWLEDGED
    [d] = service.desired("P-101")
    assert (d.point, d.wanted, d.reported, d.quality) == ("setpoint", 40, 20.0, "good")

    clock.t += 0.3
    service.on_values(plant.report(clock.t, setpoint=39.8))  # within tolerance 0.5
    assert cmd.state == CONFIRMED
    assert "setpoint reported 39.8" in cmd.reason
    assert service.pending_devices() == frozenset()
    assert service.poll() == {"P-101"}
    assert states(audit, cmd.id) == [REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED]
    rows = read_audit(audit, command_id=cmd.id)
    assert {r["user"] for r in rows} == {"olga"} and {r["role"] for r in rows} == {"operator"}
    assert rows[-1]["outcome"] == "succeeded" and rows[0]["outcome"] == "pending"
    assert [s for _, s in seen] == [REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED]


def test_viewer_is_refused_and_nothing_is_published(rig):
    _, _, _, wire, service, audit, _ = rig
    cmd = service.request(VIEWER, "P-101", "set_speed", {"speed": 40}, True)
    assert cmd.state == REFUSED and "role viewer" in cmd.reason and "operator" in cmd.reason
    service.poll()
    assert wire.attempts == []
    [row] = read_audit(audit, command_id=cmd.id)
    assert (row["state"], row["user"], row["role"], row["outcome"]) == (REFUSED, "vic", "viewer", "failed")
    admin_only = service.request(OPERATOR, "P-101", "reset", {}, False)
    assert admin_only.state == REFUSED and "needs admin" in admin_only.reason
    assert service.request(ADMIN, "P-101", "reset", {}, False).state == REQUESTED


@pytest.mark.parametrize(
    "args, why",
    [
        ({"speed": 140}, "speed must be at most 100"),
        ({"speed": -1}, "speed must be at least 0"),
        ({"speed": "fast"}, "speed must be a number"),
        ({"speed": True}, "speed must be a number"),
        ({"speed": float("nan")}, "finite"),
        ({}, "missing argument 'speed'"),
        ({"speed": 10, "force": 1}, "unknown argument 'force'"),
    ],
)
def test_invalid_arguments_are_refused(rig, args, why):
    _, _, _, wire, service, audit, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", args, False)
    service.poll()
    assert cmd.state == REFUSED and why in cmd.reason and cmd.reason.startswith("invalid argument")
    assert wire.attempts == []
    assert states(audit, cmd.id) == [REFUSED]


def test_defaults_enums_and_bools(rig):
    site = rig[0]
    spec = next(c for c in site.device("P-101").commands if c.name == "mode")
    assert validate_args(spec, {}) == ({"mode": "auto", "ramp": False}, [])
    assert validate_args(spec, {"mode": "manual", "ramp": True}) == ({"mode": "manual", "ramp": True}, [])
    _, errors = validate_args(spec, {"mode": "turbo", "ramp": "yes"})
    assert errors == ["mode must be one of auto, manual (got 'turbo')", "ramp must be true or false"]
    assert parse_cli_args(spec, ["mode=manual", "ramp=on"]) == {"mode": "manual", "ramp": True}
    assert parse_cli_args(spec, ["ramp=maybe"]) == {"ramp": "maybe"}  # the service refuses it by name
    with pytest.raises(ValueError):
        parse_cli_args(spec, ["ramp"])


def test_unknown_device_command_and_missing_confirmation(rig):
    _, _, _, wire, service, audit, _ = rig
    a = service.request(OPERATOR, "P-999", "start", {}, True)
    b = service.request(OPERATOR, "P-101", "launch", {}, True)
    c = service.request(OPERATOR, "P-101", "start", {}, False)
    service.poll()
    assert "unknown device 'P-999'" in a.reason
    assert "no command 'launch'" in b.reason and "set_speed" in b.reason
    assert "must be confirmed" in c.reason
    assert all(x.state == REFUSED for x in (a, b, c)) and wire.attempts == []
    assert len(read_audit(audit, state=REFUSED)) == 3
    assert service.request(OPERATOR, "P-101", "start", {}, True).state == REQUESTED


def test_interlock_false_or_stale_refuses_with_the_reason(rig):
    _, plant, clock, wire, service, audit, _ = rig
    plant.report(clock.t, level=5.0)
    low = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    assert low.state == REFUSED
    assert low.reason == "interlock: the feed tank is too low (level > 10 is false (level = 5))"
    plant.report(clock.t, level=50.0)
    clock.t += 10  # level's window is 0.5 s * 3: it goes stale
    plant.state.tick(clock.t)
    stale = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    assert stale.state == REFUSED and "level is stale" in stale.reason
    service.poll()
    assert wire.attempts == []
    assert [r["reason"] for r in read_audit(audit, state=REFUSED)] == [low.reason, stale.reason]


def test_no_report_times_out_with_what_was_seen(rig):
    _, _, clock, _, service, audit, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    service.on_ack(cmd.id, "accepted")
    service.poll()
    clock.t += 2.9
    service.poll()
    assert cmd.state == ACKNOWLEDGED
    clock.t += 0.2
    service.poll()
    assert cmd.state == TIMED_OUT
    assert "setpoint did not reach 40 within 3 s" in cmd.reason and "20" in cmd.reason
    assert states(audit, cmd.id) == [REQUESTED, SENT, ACKNOWLEDGED, TIMED_OUT]
    # the device catches up later: recorded as a note, the state stays timed out
    service.on_values(rig[1].report(clock.t, setpoint=40.0))
    assert cmd.state == TIMED_OUT and "after the command was marked timed out" in cmd.notes[-1]
    assert read_audit(audit, command_id=cmd.id)[-1]["event"] == "note"


def test_device_rejection(rig):
    _, _, _, _, service, audit, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    service.on_ack(cmd.id, "rejected", "local control")
    service.poll()
    assert cmd.state == REJECTED and cmd.reason == "rejected by the device: local control"
    assert states(audit, cmd.id) == [REQUESTED, SENT, REJECTED]


def test_unanswered_command_expires_before_its_timeout(rig):
    _, _, clock, _, service, audit, _ = rig
    cmd = service.request(OPERATOR, "P-101", "mode", {"mode": "manual"}, False)  # expiry 2 s < timeout 3 s
    service.poll()
    assert cmd.state == SENT
    clock.t += 2.0
    service.poll()
    assert cmd.state == EXPIRED and "before the command expired" in cmd.reason
    service.on_ack(cmd.id, "accepted")
    service.poll()
    assert cmd.state == EXPIRED and "after it was expired" in cmd.notes[-1]


def test_without_success_point_the_acknowledgement_confirms(rig):
    _, _, _, _, service, audit, _ = rig
    cmd = service.request(ADMIN, "P-101", "reset", {}, False)
    service.poll()
    service.on_ack(cmd.id, "accepted", "fault reset", "P-101")
    service.poll()
    assert cmd.state == CONFIRMED and "no success point" in cmd.reason
    assert states(audit, cmd.id) == [REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED]


def test_a_value_that_already_matched_needs_the_device_to_answer(rig):
    _, plant, clock, _, service, _, _ = rig
    clock.t += 0.1
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 20}, False)  # setpoint read 20 before
    service.poll()
    service.on_values({"P-101"})
    clock.t += 0.5
    service.poll()
    assert cmd.state == SENT  # not shown as done: nothing says the device got it
    clock.t += 0.1
    service.on_ack(cmd.id, "accepted")
    service.poll()
    assert cmd.state == CONFIRMED


def test_a_matching_value_reported_again_is_no_evidence_and_ends_unverified(rig):
    """Issue 13: speed already at the wanted value and reported every period after the send, but
    the device never answered: not confirmed (a coincidence), and at the timeout 'unverified'."""
    _, plant, clock, wire, service, audit, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 20}, False)  # setpoint reads 20 already
    service.poll()
    assert cmd.state == SENT and len(wire.sent) == 1
    for _ in range(5):  # the periodic reports, each received after the send
        clock.t += 0.5
        service.on_values(plant.report(clock.t, setpoint=20.0, level=50.0))
        service.poll()
        assert cmd.state == SENT, cmd.reason
    clock.t += 0.6
    service.poll()
    assert cmd.state == UNVERIFIED and cmd.final and cmd.outcome == "unverified"
    assert "already did before the command" in cmd.reason and "nothing shows it received" in cmd.reason
    rows = read_audit(audit, command_id=cmd.id)
    assert [r["state"] for r in rows] == [REQUESTED, SENT, UNVERIFIED] and rows[-1]["outcome"] == "unverified"
    # the value it always had is no late news either; the device's late answer is
    service.on_values(plant.report(clock.t + 0.1, setpoint=20.0))
    assert cmd.notes == []
    service.on_ack(cmd.id, "accepted")
    service.poll()
    assert cmd.state == UNVERIFIED and "accepted the command after it was unverified" in cmd.notes[-1]


def test_a_change_after_the_send_confirms_without_an_answer(rig):
    _, plant, clock, _, service, _, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)  # setpoint reads 20
    service.poll()
    clock.t += 0.5
    service.on_values(plant.report(clock.t, setpoint=40.0))
    assert cmd.state == CONFIRMED and cmd.acked is False


def test_a_value_unknown_before_needs_the_answer_or_a_change(rig):
    """The first value ever known, equal to the wanted one, may have been there all along."""
    site, _, clock, _, _, audit, _ = rig
    from test_commands_site import Plant

    fresh = Plant(site)  # nothing received yet
    fresh.report(clock.t, level=50.0)
    service = CommandService(site, fresh.reader, Wire(), audit, clock=clock, threaded=False)
    first = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    clock.t += 0.5
    service.on_values(fresh.report(clock.t, setpoint=40.0))  # reported after the send, but no news
    assert first.state == SENT
    clock.t += 3
    service.poll()
    assert first.state == UNVERIFIED and "its value before the command was not known" in first.reason
    second = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    service.on_ack(second.id, "accepted")
    service.poll()
    assert second.state == CONFIRMED  # the device's answer for this id is the evidence
    service.close()


def test_fresh_report_after_sending_confirms_without_an_answer(rig):
    _, plant, clock, _, service, _, _ = rig
    cmd = service.request(OPERATOR, "P-101", "stop", {}, False)
    service.poll()
    clock.t += 0.4
    service.on_values(plant.report(clock.t, running=True))
    assert cmd.state == SENT
    clock.t += 0.4
    service.on_values(plant.report(clock.t, running=False))
    assert cmd.state == CONFIRMED and cmd.acked is False


def test_broker_down_retries_with_the_same_id_then_fails_at_expiry(rig):
    _, _, clock, wire, service, audit, _ = rig
    wire.up = False
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    for _ in range(12):
        service.poll()
        clock.t += 0.5
    service.poll()
    assert cmd.state == FAILED and "could not be sent before it expired" in cmd.reason
    assert len(wire.attempts) >= 3
    assert {a["correlation_id"] for a in wire.attempts} == {cmd.id}
    assert len({a["payload"] for a in wire.attempts}) == 1  # same bytes every time
    expiries = [a["expiry_s"] for a in wire.attempts]
    assert expiries == sorted(expiries, reverse=True) and expiries[0] == 5 and expiries[-1] >= 1
    assert states(audit, cmd.id) == [REQUESTED, FAILED]
    assert any("retrying with the same id" in r["reason"] for r in read_audit(audit, command_id=cmd.id))


def test_broker_back_sends_at_once_with_the_remaining_expiry(rig):
    _, _, clock, wire, service, _, _ = rig
    wire.up = False
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    assert cmd.waiting_for_broker and cmd.display_state == "sent pending"
    clock.t += 2.2
    wire.up = True
    service.on_link(True)
    service.poll()
    assert cmd.state == SENT and wire.sent[-1]["expiry_s"] == 2


def test_interlock_is_checked_again_before_a_retry(rig):
    _, plant, clock, wire, service, _, _ = rig
    wire.up = False
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    plant.report(clock.t, level=3.0)
    clock.t += 1.1
    wire.up = True
    service.poll()
    assert cmd.state == FAILED and "too low" in cmd.reason and len(wire.sent) == 0


def test_a_retry_waits_for_stale_interlock_points_to_be_fresh(rig):
    _, plant, clock, wire, service, _, _ = rig
    wire.up = False
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    clock.t += 2.0
    plant.state.tick(clock.t)  # level goes stale during the outage
    wire.up = True
    service.on_link(True)
    service.poll()
    assert cmd.state == REQUESTED and "level is stale" in cmd.reason and wire.sent == []
    plant.report(clock.t, level=60.0)
    clock.t += 1.0
    service.poll()
    assert cmd.state == SENT and len(wire.sent) == 1


def test_broker_refusal_fails_at_once(rig):
    _, _, _, wire, service, _, _ = rig
    wire.refuse = "Not authorized"
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    assert cmd.state == FAILED and "Not authorized" in cmd.reason and len(wire.attempts) == 1


def test_answers_for_other_devices_or_unknown_ids_are_ignored(rig):
    _, _, _, _, service, _, _ = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll()
    service.on_ack(cmd.id, "accepted", "", "T-201")
    service.on_ack("f" * 32, "accepted")
    service.on_ack(cmd.id, "maybe")
    service.poll()
    assert cmd.state == SENT
    assert service.counters["wrong_device_acks"] == 1 and service.counters["unknown_acks"] == 1
    assert service.counters["bad_responses"] == 1


def test_answer_before_the_pubAck_result_is_in_order(rig):
    _, _, _, wire, service, audit, _ = rig
    cmd = service.request(ADMIN, "P-101", "reset", {}, False)
    service.on_ack(cmd.id, "accepted")  # the device was faster than the broker's acknowledgement
    service.poll()
    assert states(audit, cmd.id) == [REQUESTED, SENT, ACKNOWLEDGED, CONFIRMED]
    service.poll()
    assert len(wire.attempts) == 0  # it never needed sending again
    no = service.request(ADMIN, "P-101", "reset", {}, False)
    service.on_ack(no.id, "rejected", "busy")
    service.poll()
    assert states(audit, no.id) == [REQUESTED, SENT, REJECTED]


def test_matching_and_response_parsing():
    assert matches(40, 40.4, 0.5) and not matches(40, 40.6, 0.5)
    assert matches(True, True) and not matches(True, 1) and not matches(1, True)
    assert matches("open", "open") and not matches("open", "OPEN") and not matches(5, None)
    r = parse_response(b'{"id": "abc", "status": "rejected", "reason": "interlocked\\nlocally"}')
    assert (r.id, r.status, r.reason) == ("abc", "rejected", "interlocked locally")
    assert parse_response(b'{"accepted": true}', "abc").status == "accepted"
    for bad in (b"[]", b'{"id": "abc"}', b'{"id": "x", "status": "done"}', b"[" * 100000, b'{"status": "accepted"}'):
        with pytest.raises(ValueError):
            parse_response(bad)
    with pytest.raises(ValueError):
        parse_response(b'{"id": "abc", "status": "accepted"}', "xyz")


def test_a_command_left_in_flight_by_a_stopped_viewer_is_reported_unknown_once(rig):
    """After a restart the service neither retries it (could actuate twice) nor calls it failed
    (it may have worked): the audit log and the UI say its outcome is unknown, once."""
    site, plant, clock, wire, service, audit, seen = rig
    cmd = service.request(OPERATOR, "P-101", "set_speed", {"speed": 40}, False)
    service.poll(clock())
    assert cmd.state == "sent"
    service.close()  # the viewer stops with the command in flight

    again = CommandService(site, plant.reader, Wire(), audit, clock=clock, threaded=False)
    assert [r["id"] for r in again.unresolved] == [cmd.id]
    notes = [r for r in read_audit(audit, command_id=cmd.id) if r.get("event") == "note"]
    assert len(notes) == 1 and notes[0]["reason"].startswith("outcome unknown")
    again.poll(clock())
    assert again.get(cmd.id) is None and again.pending_devices() == frozenset()
    again.close()

    third = CommandService(site, plant.reader, Wire(), audit, clock=clock, threaded=False)
    assert [r["id"] for r in third.unresolved] == [cmd.id]  # still listed for the operator...
    notes = [r for r in read_audit(audit, command_id=cmd.id) if r.get("event") == "note"]
    assert len(notes) == 1  # ...but noted in the audit log only once
    assert states(audit, cmd.id) == ["requested", "sent"]  # history untouched
    third.close()
