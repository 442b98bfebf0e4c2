"""Issue 14, command it: arguments, confirmations, the per-device command log, over real MQTT.

Before this work the speed box started at 0 with no unit and sent 5000 against a
3000 maximum, the log had no times or users, kept 8 lines, emptied when the panel
reopened and showed nobody else's commands.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from browser import Browser, missing  # noqa: E402
from rig import DemoRig, open_page, wait_for  # noqa: E402
from test_web_browser import CommandSub  # noqa: E402

from twinview.connectors.base import Sample  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

SPEED = "#panel-commands [data-command=set_speed] input"
SET = "#panel-commands [data-command=set_speed] button:not([hidden])"
STOP = "#panel-commands [data-command=stop] button"
LOG = "() => [...document.querySelectorAll('#panel-log li')].map(li => li.innerText.replace(/\\s+/g, ' ').trim())"


class PlantSub(CommandSub):
    def messages(self) -> list[str]:
        return [line for line in self.lines if line.startswith("plant/")]


def command_from_another_user(rig, token: str, device: str, command: str, args: dict, confirmed: bool) -> dict:
    """A second client (a real websocket client, as another user's page would be)."""
    from websockets.sync.client import connect

    with connect(rig.server.bridge.ws_url) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        ws.send(json.dumps({"type": "command", "device": device, "command": command, "args": args, "confirmed": confirmed, "ref": "x1"}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=10))
            if msg.get("type") == "command_result":
                return msg
    raise AssertionError("no command_result")


def test_command_arguments_confirmation_and_log(tmp_path, broker):
    rig = DemoRig(tmp_path, broker=broker)
    sub = PlantSub(broker, "plant/+/cmd/#")
    try:
        with Browser(width=1280, height=720) as browser:
            open_page(browser, rig)
            browser.eval("() => twinview.select('P-102')")
            browser.wait("() => document.getElementById('panel-title').textContent.startsWith('P-102')")
            # Logged out: the commands are disabled and say why.
            assert browser.eval(f"() => document.querySelector('{SET}').disabled")
            assert "Log in to send commands" in browser.text("#panel-why")

            # The login form opens above the inspector: its buttons can be clicked.
            browser.call("click", selector="#login-open")
            top = browser.eval("() => { const b = document.querySelector('#login button[type=submit]').getBoundingClientRect();"
                               " const e = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2); return e && e.closest('#login') !== null; }")
            assert top, "the login form is hidden under the panel"
            browser.key("Escape")
            browser.wait("() => document.getElementById('login').hidden")
            browser.eval("(t) => twinview.login(t)", rig.tokens["olga"])
            browser.wait(f"() => twinview.role === 'operator' && twinview.live && !document.querySelector('{SET}').disabled")
            # The speed box starts at the current value and shows unit and range.
            speed = browser.eval(f"() => {{ const i = document.querySelector('{SPEED}'); return {{ value: i.value, label: i.getAttribute('aria-label') }}; }}")
            assert speed["value"] == "1800" and "rpm" in speed["label"] and "0–3000" in speed["label"], speed
            assert "0–3000 rpm" in browser.text("#panel-commands [data-command=set_speed]")

            # 5000 against a 3000 maximum is refused in the page: nothing leaves it.
            browser.call("fill", selector=SPEED, text="5000")
            browser.call("click", selector=SET)
            err = browser.wait("() => document.querySelector('#panel-commands [data-command=set_speed] .err').textContent")
            assert "above the maximum 3000 rpm" in err, err
            assert browser.eval(f"() => document.querySelector('{SPEED}').getAttribute('aria-invalid')") == "true"
            assert browser.eval("() => twinview.results.length") == 0 and sub.messages() == []

            # 1200 goes out over MQTT; desired vs reported while pending; confirmed when the device reports it.
            browser.call("fill", selector=SPEED, text="1200")
            browser.call("click", selector=SET)
            assert wait_for(lambda: len(sub.messages()) == 1, 15), sub.lines[-5:]
            topic, payload = sub.messages()[0].split(" ", 1)
            assert topic == "plant/P-102/cmd/set_speed" and json.loads(payload)["args"] == {"speed": 1200}
            desired = browser.wait("() => document.querySelector('#panel-commands [data-command=set_speed] .desired').textContent")
            assert "desired 1200 rpm" in desired and "reported 1800 rpm" in desired, desired
            rig.live.submit(Sample("P-102", "speed", 1200.0, time.time()))  # the pump reports the new speed
            line = browser.wait(f"() => ({LOG})().find(t => t.includes('confirmed'))", timeout=20)
            assert re.match(r"\d\d:\d\d:\d\d olga: Set speed \(speed=1200\) — confirmed", line), line
            assert len(browser.eval(LOG)) == 1, browser.eval(LOG)  # one line per command, not one per state
            said = browser.eval("() => twinview.announcements")
            assert any("set_speed on P-102: confirmed" in a for a in said), said  # screen readers hear the outcome

            # Another user's command appears in this page's log.
            other = command_from_another_user(rig, rig.tokens["piotr"], "P-102", "start", {}, False)
            assert other["ok"], other
            line = browser.wait(f"() => ({LOG})().find(t => t.includes('piotr'))", timeout=15)
            assert re.match(r"\d\d:\d\d:\d\d piotr: Start — \w+", line), line

            # Stop asks to confirm with a visible countdown, then re-arms *visibly*.
            browser.call("click", selector=STOP)
            label = browser.eval(f"() => document.querySelector('{STOP}').textContent")
            assert re.match(r"Confirm Stop\? [45] s", label), label
            browser.wait(f"() => /Confirm Stop\\? [123] s/.test(document.querySelector('{STOP}').textContent)", timeout=10)
            browser.wait("() => document.querySelector('#panel-commands [data-command=stop] .err').textContent.includes('not confirmed within 5 s')",
                         timeout=15)
            assert len(sub.messages()) == 2  # set_speed and piotr's start; no stop

            # The log survives closing and reopening the inspector.
            browser.call("click", selector="#panel-close")
            browser.wait("() => document.getElementById('panel').hidden")
            browser.eval("() => twinview.select('P-102')")
            browser.wait(f"() => ({LOG})().length === 2")
            log = browser.eval(LOG)
            assert any("olga: Set speed (speed=1200) — confirmed" in t for t in log) and any("piotr: Start" in t for t in log), log
            browser.screenshot(tmp_path / "commands.png")

            # And across reloading the page (from the server's recent commands and the audit log).
            browser.goto(rig.url)
            browser.wait("() => twinview.live")
            browser.eval("() => twinview.select('P-102')")
            browser.wait(f"() => ({LOG})().length === 2", timeout=20)
            assert browser.eval(LOG) == log, (browser.eval(LOG), log)
    finally:
        sub.close()
        rig.close()
