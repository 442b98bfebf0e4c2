"""The desktop demo's closed loop without a broker: CommandService -> SimulatorTransport ->
the real embedded Simulator -> its reported samples -> TwinState -> confirmed."""

from __future__ import annotations

import json

import pytest
from test_commands_site import Plant, write_site

from twinview.connectors.simulator.commands import SimulatorTransport
from twinview.connectors.simulator.plant import Simulator
from twinview.twin.audit import read_audit
from twinview.security.auth import Principal
from twinview.twin.commands import CONFIRMED, FINAL, REJECTED, CommandService

OPERATOR = Principal("olga", "operator")
T0 = 1_700_000_000.0


class Loop:
    """One frame at a time, on a controlled clock, as the render loop runs it."""

    def __init__(self, tmp_path, threaded: bool = False):
        self.site = write_site(tmp_path / "site")
        self.plant = Plant(self.site)
        self.sim = Simulator(self.site, seed=3, faults=False)
        self.transport = SimulatorTransport(self.sim)
        self.t = T0
        self.audit = tmp_path / "audit.jsonl"
        self.service = CommandService(self.site, self.plant.reader, self.transport, self.audit, clock=lambda: self.t, threaded=threaded)

    def frame(self, dt: float = 0.1) -> None:
        self.t += dt
        state = self.plant.state
        rows = list(state.apply(self.sim.step(self.t))) + list(state.tick(self.t))
        self.service.on_values(set(state.table.device[rows].tolist()))
        self.service.poll(self.t)

    def run_until_final(self, cmd, frames: int = 100) -> None:
        for _ in range(frames):
            if cmd.state in FINAL:
                return
            self.frame()


@pytest.fixture
def loop(tmp_path):
    lp = Loop(tmp_path)
    for _ in range(10):  # let every point report once
        lp.frame()
    yield lp
    lp.service.close()


def test_stop_is_confirmed_by_the_simulated_report(loop):
    if loop.plant.state.point("P-101", "running").value is False:
        loop.sim.handle_command("P-101", "start")
        for _ in range(10):
            loop.frame()
    cmd = loop.service.request(OPERATOR, "P-101", "stop", {}, False)
    loop.run_until_final(cmd)
    assert cmd.state == CONFIRMED and cmd.acked
    assert loop.plant.state.point("P-101", "running").value is False
    assert [r["state"] for r in read_audit(loop.audit, command_id=cmd.id)] == ["requested", "sent", "acknowledged", "confirmed"]


def test_speed_setpoint_closes_the_loop(loop):
    loop.plant.report(loop.t, level=50.0)  # the interlock point (the simulator does not model a tank here)
    cmd = loop.service.request(OPERATOR, "P-101", "set_speed", {"speed": 35}, False)
    loop.run_until_final(cmd)
    assert cmd.state == CONFIRMED, cmd.reason
    assert abs(loop.plant.state.point("P-101", "setpoint").value - 35) <= 0.5


def test_a_command_the_simulator_cannot_do_is_rejected(loop):
    cmd = loop.service.request(OPERATOR, "P-101", "mode", {"mode": "manual"}, False)
    loop.run_until_final(cmd)
    assert cmd.state == REJECTED and "simulator cannot" in cmd.reason


def test_duplicates_are_answered_once_and_late_commands_dropped(loop):
    transport = loop.transport
    payload = json.dumps({"id": "d1", "device": "P-101", "command": "reset", "args": {}, "user": "olga",
                          "expires_at": loop.t + 5}).encode()  # fmt: skip
    answers = []
    transport.on_ack = lambda *a: answers.append(a)
    for _ in range(2):
        transport.publish("plant/P-101/cmd/reset", payload, expiry_s=5, correlation_id="d1", response_topic="r")
    transport.poll(loop.t)
    assert transport.counters["handled"] == 1 and transport.counters["duplicates"] == 1
    assert [a[1] for a in answers] == ["accepted", "accepted"]
    late = json.dumps({"id": "d2", "device": "P-101", "command": "reset", "args": {}, "expires_at": loop.t - 1}).encode()
    transport.publish("plant/P-101/cmd/reset", late, expiry_s=1, correlation_id="d2", response_topic="r")
    transport.poll(loop.t)
    assert transport.counters["expired"] == 1 and len(answers) == 2


@pytest.mark.parametrize("missing", ["id", "user", "expires_at"])
def test_a_command_without_id_user_or_expiry_is_rejected_and_does_nothing(loop, missing):
    """Issue 13: the simulator checks a command like a careful device (docs/commands.md)."""
    transport = loop.transport
    body = {"id": "d9", "device": "P-101", "command": "stop", "args": {}, "user": "olga", "expires_at": loop.t + 5}
    del body[missing]
    answers = []
    transport.on_ack = lambda *a: answers.append(a)
    calls = []
    real = transport.simulator.handle_command
    transport.simulator.handle_command = lambda *a: calls.append(a) or real(*a)
    transport.publish("plant/P-101/cmd/stop", json.dumps(body).encode(), expiry_s=5, correlation_id="d9", response_topic="r")
    transport.poll(loop.t)
    assert calls == [] and [a[1] for a in answers] == ["rejected"] and "refused" in answers[0][2]


def test_threaded_sender_also_closes_the_loop(tmp_path):
    lp = Loop(tmp_path, threaded=True)
    try:
        for _ in range(10):
            lp.frame()
        cmd = lp.service.request(Principal("ada", "admin"), "P-101", "reset", {}, False)
        import time

        deadline = time.monotonic() + 10
        while cmd.state not in FINAL and time.monotonic() < deadline:
            lp.frame()
            time.sleep(0.005)
        assert cmd.state == CONFIRMED and "no success point" in cmd.reason
    finally:
        lp.service.close()
