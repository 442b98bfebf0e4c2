"""The bridge answers a trend chart's history request from the twin's in-memory history
(a real websocket client against a real server; no browser)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "web"))

from rig import command_site, wait_for  # noqa: E402

from twinview.app.live import LiveSite  # noqa: E402
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
    live = LiveSite(loaded)
    server = start_server(loaded, live, port=0)
    try:
        now = time.time()
        for k, value in enumerate((10.0, 20.0, 30.0)):
            t = now - 30 + 10 * k
            live.inbox.put(Sample("B-0-1", "temp", value, t, t))
        assert wait_for(lambda: len(live.twin.history("B-0-1", "temp")[0]) == 3, 10)
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
            assert [(e["code"], e.get("ref")) for e in errors] == [("bad_field", "h2"), ("unknown_device", "h3"), ("bad_field", None)]
            # A point with no samples yet: an empty history, not an error.
            ws.send(json.dumps({"type": "history", "device": "B-2-2", "point": "temp", "ref": "h5"}))
            (msg,) = answers(ws, "history")
            assert msg["t"] == [] and msg["v"] == []
    finally:
        server.stop()
