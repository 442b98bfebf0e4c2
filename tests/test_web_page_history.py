"""The bridge answers a trend chart's history request from the twin's in-memory history
(a real websocket client against a real server; no browser)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "web"))

import pytest  # noqa: E402
from rig import command_site, wait_for  # noqa: E402

from twinview.twin.runtime import Runtime  # noqa: E402
from twinview.connectors.base import Sample  # noqa: E402
from twinview.site import open_site  # noqa: E402
from twinview.web.serve import start_server  # noqa: E402


def answers(ws, kind: str, n: int = 1) -> list[dict]:
    out = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=10))
        if msg["type"] == kind:
            out.append(msg)
    return out


def test_history_request_returns_the_points_samples_and_refuses_unknown_names(tmp_path):
    from websockets.sync.client import connect

    loaded = open_site(command_site(tmp_path / "site"))
    live = Runtime(loaded.site)
    server = start_server(loaded, live, port=0)
    try:
        now = time.time()
        for k, value in enumerate((10.0, 20.0, 30.0)):
            t = now - 30 + 10 * k
            live.submit(Sample("B-0-1", "temp", value, t, t))
            # one at a time: samples of one point applied in the same step keep only the newest
            assert wait_for(lambda: live.state.point("B-0-1", "temp").value == value, 10)
        assert wait_for(lambda: len(live.state.history("B-0-1", "temp")[0]) == 3, 10)
        with connect(server.bridge.ws_url) as ws:  # read-only: no login needed to read history
            ws.send(json.dumps({"type": "history", "device": "B-0-1", "point": "temp", "ref": "h1"}))
            (msg,) = answers(ws, "history")
            assert msg["ref"] == "h1" and msg["device"] == "B-0-1" and msg["point"] == "temp"
            assert msg["v"] == [10.0, 20.0, 30.0]
            assert [round(t - now) for t in msg["t"]] == [-30, -20, -10]
            assert abs(msg["now"] - time.time()) < 5

            ws.send(json.dumps({"type": "history", "device": "B-0-1", "point": "nope", "ref": "h2"}))
            ws.send(json.dumps({"type": "history", "device": "X-9", "point": "temp", "ref": "h3"}))
            ws.send(json.dumps({"type": "history", "device": "B-0-1", "ref": "h4"}))
            errors = answers(ws, "error", 3)
            got = sorted((e["code"], str(e.get("ref"))) for e in errors)
            assert got == [("bad_field", "None"), ("bad_field", "h2"), ("unknown_device", "h3")], got
            # A point with no samples yet: an empty history, not an error.
            ws.send(json.dumps({"type": "history", "device": "B-2-2", "point": "temp", "ref": "h5"}))
            (msg,) = answers(ws, "history")
            assert msg["t"] == [] and msg["v"] == []
    finally:
        server.stop()


def test_command_log_request_reads_a_devices_commands_from_the_audit_log(tmp_path):
    from websockets.sync.client import connect

    from twinview.twin.audit import AuditLog
    from twinview.web.auditlog import command_log_provider

    loaded = open_site(command_site(tmp_path / "site"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    t = time.time() - 3600
    for i, (cid, state, user) in enumerate((("a1", "requested", "olga"), ("a1", "sent", "olga"), ("b2", "refused", "victor"),
                                            ("a1", "confirmed", "olga"), ("c3", "requested", "olga"))):
        device = "B-9-9" if cid == "c3" else "B-0-1"
        audit.write({"ts": t + i, "event": "transition", "id": cid, "state": state, "user": user, "role": "operator",
                     "device": device, "command": "start", "args": {}, "reason": "viewer" if state == "refused" else None})
    audit.close()
    server = start_server(loaded, Runtime(loaded.site), port=0)
    server.bridge.command_log_provider = command_log_provider(audit.path)
    try:
        with connect(server.bridge.ws_url) as ws:
            ws.send(json.dumps({"type": "command_log", "device": "B-0-1", "ref": "l1"}))
            (msg,) = answers(ws, "command_log")
            got = [(c["id"], c["user"], c["state"], c["final"]) for c in msg["commands"]]
            assert got == [("b2", "victor", "refused", True), ("a1", "olga", "confirmed", True)], got
            assert msg["commands"][1]["updated"] == pytest.approx(t + 3)
            ws.send(json.dumps({"type": "command_log", "device": "X-9", "ref": "l2"}))
            (err,) = answers(ws, "error")
            assert err["code"] == "unknown_device" and err["ref"] == "l2"
    finally:
        server.stop()
