"""Alarms on the web page and in the headset, in real Chromium (and IWER's emulated Quest 3).

The page gets the alarm list as a snapshot and changes; an operator's token acknowledges from
the list and every page sees the new state; a viewer's token is refused (and audited). In a
headset the area badge is shown over the site and the alarm panel's Ack button works by ray.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import command_site, wait_for  # noqa: E402

from twinview.connectors.base import Sample  # noqa: E402
from twinview.security.auth import add_user, issue_token  # noqa: E402
from twinview.site import open_site  # noqa: E402
from twinview.twin.runtime import Runtime  # noqa: E402
from twinview.web.actuation import token_authenticator  # noqa: E402
from twinview.web.serve import start_server  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

RULES = """
[[types.box.alarms]]
point = "temp"
kind = "high"
limit = 80
severity = "critical"
message = "{device} hot: {value:.0f} degC"
"""


@pytest.fixture
def rig(tmp_path):
    root = command_site(tmp_path / "site")
    text = (root / "site.toml").read_text()
    head, _, devices = text.partition("[[devices]]")
    (root / "site.toml").write_text(head + RULES + "\n[[devices]]" + devices)
    loaded = open_site(root)
    users = tmp_path / "users.toml"
    add_user("olga", "operator", path=users)
    add_user("victor", "viewer", path=users)
    tokens = {"operator": issue_token("olga", path=users), "viewer": issue_token("victor", path=users)}
    live = Runtime(loaded.site)
    audit = tmp_path / "audit.jsonl"
    live.enable_alarms(tmp_path / "alarms.jsonl", audit)
    server = start_server(loaded, live, port=0, authenticate=token_authenticator(users))
    yield live, server, tokens, audit
    server.stop()


def hot(live, device: str, value: float = 95.0) -> None:
    now = time.time()
    live.submit(Sample(device, "temp", value, now, now))


def test_an_operator_acknowledges_from_the_web_page_and_a_viewer_is_refused(rig):
    live, server, tokens, audit = rig
    hot(live, "B-0-0")
    assert wait_for(lambda: live.alarms.describe(live.alarms.index["B-0-0/temp.high"])["state"] == "unacknowledged")
    browser = Browser()
    try:
        browser.goto(server.url)
        browser.wait("() => twinview.connected && twinview.alarms.list.has('B-0-0/temp.high')")
        hot(live, "B-2-2")  # a change after the snapshot arrives as a change
        browser.wait("() => twinview.alarms.list.has('B-2-2/temp.high')")
        assert browser.eval("() => document.getElementById('alarms-open').dataset.count") == "2"
        browser.call("click", selector="#alarms-open")
        browser.call("click", selector="th[data-sort='device']")  # newest device name first
        order = browser.eval("() => [...document.querySelectorAll('#alarm-table tr[data-alarm]')].map((r) => r.dataset.alarm)")
        assert order == ["B-2-2/temp.high", "B-0-0/temp.high"]
        browser.call("click", selector="th[data-sort='device']")
        order = browser.eval("() => [...document.querySelectorAll('#alarm-table tr[data-alarm]')].map((r) => r.dataset.alarm)")
        assert order == ["B-0-0/temp.high", "B-2-2/temp.high"]
        row = browser.wait("() => document.querySelector(\"tr[data-alarm='B-0-0/temp.high']\")?.textContent")
        assert "critical" in row and "unacknowledged" in row

        browser.eval("(t) => twinview.login(t)", tokens["viewer"])
        browser.wait("() => twinview.role === 'viewer'")
        browser.eval("() => twinview.alarms.ack('B-0-0/temp.high')")  # the button is disabled; the server decides anyway
        result = browser.wait("() => twinview.alarms.results.length === 1 && twinview.alarms.results[0]")
        assert not result["ok"] and "operator" in result["reason"]

        browser.eval("(t) => twinview.login(t)", tokens["operator"])
        browser.wait("() => twinview.role === 'operator'")
        browser.wait("() => document.getElementById('alarms').hidden === false")
        browser.wait("() => !document.querySelector(\"tr[data-alarm='B-0-0/temp.high'] button.alarm-ack\").disabled")
        browser.call("click", selector="tr[data-alarm='B-0-0/temp.high'] button.alarm-ack")
        result = browser.wait("() => twinview.alarms.results.length === 2 && twinview.alarms.results[1]")
        assert result["ok"], result
        state = browser.wait("() => twinview.alarms.list.get('B-0-0/temp.high').state === 'acknowledged' && "
                             "document.querySelector(\"tr[data-alarm='B-0-0/temp.high']\").textContent")
        assert "acknowledged" in state and "unacknowledged" not in state
        assert live.alarms.describe(live.alarms.index["B-0-0/temp.high"])["acked_by"] == "olga"

        hot(live, "B-0-0", 20.0)  # back to normal, acknowledged already: it leaves the list
        browser.wait("() => !twinview.alarms.list.has('B-0-0/temp.high')")
        lines = [json.loads(x) for x in audit.read_text().splitlines()]
        assert [(r["user"], r["state"]) for r in lines] == [("victor", "refused"), ("olga", "acknowledged")]
        # a click on the device in the list selects it
        browser.eval("() => document.querySelector(\"tr[data-alarm='B-2-2/temp.high'] a\").click()")
        browser.wait("() => twinview.selectedDevice === 'B-2-2'")
    finally:
        browser.close()


def aim_and_select(browser: Browser, target: dict) -> None:
    selects = browser.eval("() => twinview.xr.selects")
    browser.xr("look_at", device="controller-right", target=target)
    browser.xr("select", device="controller-right", duration=1)
    browser.wait("(n) => twinview.xr.selects > n", selects)


def test_the_headset_shows_the_area_badge_and_acknowledges_by_ray(rig):
    live, server, tokens, audit = rig
    hot(live, "B-1-0")
    hot(live, "B-1-2")
    browser = Browser(iwer=True)
    try:
        browser.goto(server.url)
        browser.wait("() => twinview.connected && twinview.xr.supported.vr && twinview.alarms.list.size === 2")
        assert browser.eval("() => twinview.alarms.shownBadges()") == {"Row 1": "Row 1: 2 alarms"}  # zoomed out
        browser.eval("(t) => twinview.login(t)", tokens["operator"])
        browser.wait("() => twinview.role === 'operator'")
        browser.call("click", selector="#enter-vr")
        browser.wait("() => twinview.xr.presenting && twinview.frames > 2 && twinview.alarms.panel.mesh.visible")
        badge = browser.eval("""() => {
            const b = twinview.alarms.badges.get('Row 1');
            const p = b.sprite.getWorldPosition(b.sprite.position.clone());
            return { visible: b.sprite.visible, text: b.text, y: p.y };
        }""")
        assert badge["visible"] and badge["text"] == "Row 1: 2 alarms"
        label = "Ack B-1-0/temp.high"
        target = browser.wait("(l) => twinview.alarmButtonPosition(l)", label)
        aim_and_select(browser, target)
        result = browser.wait("() => twinview.alarms.results.length === 1 && twinview.alarms.results[0]")
        assert result["ok"] and result["alarm"] == "B-1-0/temp.high", result
        assert wait_for(lambda: live.alarms.describe(live.alarms.index["B-1-0/temp.high"])["state"] == "acknowledged")
        hot(live, "B-1-0", 10.0)
        browser.wait("() => twinview.alarms.shownBadges()['Row 1'] === 'Row 1: 1 alarm'")
        browser.eval("() => twinview.exitXR()")
        browser.wait("() => !twinview.xr.presenting && !twinview.alarms.panel.mesh.visible")
    finally:
        browser.close()


def test_alarm_actions_over_the_websocket_are_checked(rig):
    """Without a browser: a malformed action is refused by the protocol, an anonymous one by the engine (and
    audited), an unknown alarm says so; every page gets the alarm list when it connects."""
    from websockets.sync.client import connect

    from twinview.web.protocol import BadMessage, parse_client_message

    for bad in ({"action": "delete", "alarm": "B-0-0/temp.high"}, {"action": "ack"},
                {"action": "shelve", "alarm": "B-0-0/temp.high", "seconds": -1, "reason": "x"},
                {"action": "shelve", "alarm": "B-0-0/temp.high", "seconds": 60},
                {"action": "shelve", "alarm": "B-0-0/temp.high", "seconds": 60, "reason": "x" * 501}):
        with pytest.raises(BadMessage):
            parse_client_message(json.dumps({"type": "alarm_action", **bad}))
    live, server, tokens, audit = rig
    hot(live, "B-0-0")
    assert wait_for(lambda: live.alarms.describe(live.alarms.index["B-0-0/temp.high"])["active"])
    with connect(server.bridge.ws_url) as ws:
        seen: dict = {}

        def until(kind: str) -> dict:
            while kind not in seen:
                msg = json.loads(ws.recv(timeout=10))
                seen.setdefault(msg["type"], msg)
            return seen[kind]

        snapshot = until("alarms")
        assert snapshot["kind"] == "snapshot" and [a["id"] for a in snapshot["alarms"]] == ["B-0-0/temp.high"]
        assert snapshot["areas"] == {"Row 0": 1}
        ws.send(json.dumps({"type": "alarm_action", "action": "ack", "alarm": "B-0-0/temp.high", "ref": 1}))
        result = until("alarm_result")
        assert not result["ok"] and "read-only" in result["reason"]
        del seen["alarm_result"]
        ws.send(json.dumps({"type": "alarm_action", "action": "ack", "alarm": "B-9-9/nope", "ref": 2}))
        result = until("alarm_result")
        assert not result["ok"] and "no alarm 'B-9-9/nope'" in result["reason"]
        ws.send(json.dumps({"type": "alarm_action", "action": "shelve", "alarm": "B-0-0/temp.high", "seconds": 0}))
        assert until("error")["code"] == "bad_field"
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(r["user"], r["state"], r["alarm"]) for r in lines] == [("anonymous", "refused", "B-0-0/temp.high")]
