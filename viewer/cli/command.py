"""`twinview command`: send one command and follow it to its final state.

The command line hosts a runtime for the one device (its telemetry over MQTT,
its commands through the same CommandService as every view) and steps it
until the command ends, printing each transition it hears on the event bus.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

EXIT_CONFIRMED = 0
EXIT_USAGE = 2
EXIT_SITE = 3
EXIT_REFUSED = 10
EXIT_REJECTED = 11
EXIT_TIMED_OUT = 12
EXIT_FAILED = 13  # expired or failed
EXIT_AUTH = 14
EXIT_UNVERIFIED = 15  # the value was already as wanted, and nothing shows the device received the command
BROKER_PASSWORD_ENV = "TWINVIEW_MQTT_PASSWORD"  # the broker password for --mqtt mqtt://USER@host
EXIT_CODES = {"confirmed": EXIT_CONFIRMED, "refused": EXIT_REFUSED, "rejected": EXIT_REJECTED,
              "timed_out": EXIT_TIMED_OUT, "expired": EXIT_FAILED, "failed": EXIT_FAILED,
              "unverified": EXIT_UNVERIFIED}  # fmt: skip


def run_command_cli(
    site_dir: str | Path,
    device: str,
    command: str,
    args: list[str],
    mqtt_url: str,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    confirm: bool = False,
    *,
    users_path: str | Path | None = None,
    audit_path: str | Path | None = None,
    connect_timeout: float = 10.0,
    out: TextIO | None = None,
    transport_options: dict[str, Any] | None = None,
    answer_grace: float = 1.0,
) -> int:
    """Send one command and follow it to its final state, printing every transition.

    Credentials: user + password, or a token ($TWINVIEW_TOKEN, or $TWINVIEW_PASSWORD
    with a user, when not given; else the password is asked for on a terminal). Never
    a password on the command line. Exit codes: 0 confirmed, 10 refused, 11 rejected,
    12 timed out, 13 expired or failed, 14 authentication failed, 15 unverified,
    2 bad usage, 3 site problem. Every attempt, refused ones included, is in the audit log.

    After the final state it keeps listening up to `answer_grace` seconds for the device's
    answer when none was seen yet (the answer and the confirming value travel on different
    connections, in no fixed order), so an answer already on the wire reaches the log.
    """
    from twinview.connectors.mqtt.commands import MqttCommandTransport
    from twinview.connectors.mqtt.telemetry import MqttConnector
    from twinview.connectors.wire.topics import TopicMap
    from twinview.security.auth import AuthError, authenticate
    from twinview.site.errors import SiteError
    from twinview.site.manifest import load_manifest
    from twinview.twin.audit import AuditLog, default_audit_path
    from twinview.twin.commands import FINAL, parse_cli_args
    from twinview.twin.events import CommandChanged
    from twinview.twin.runtime import Runtime

    out = out or sys.stdout
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    connect_url = broker_url(mqtt_url)  # may carry a secret: never printed
    try:
        site, _ = load_manifest(site_dir)
    except SiteError as exc:
        for p in exc.problems:
            say(str(p))
        return EXIT_SITE
    dev = site.device(device)
    spec = next((c for c in dev.commands if c.name == command), None) if dev else None
    try:
        typed = parse_cli_args(spec, args)
    except ValueError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    audit = AuditLog(audit_path if audit_path is not None else default_audit_path(site.name))

    token = token if token is not None else (os.environ.get("TWINVIEW_TOKEN") if password is None else None)
    if password is None and token is None and user is not None:
        password = os.environ.get("TWINVIEW_PASSWORD")
        if password is None and sys.stdin is not None and sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"password for {user}: ")
    try:
        principal = authenticate(user, password, token=token, path=users_path)
    except AuthError as exc:
        audit.write({"event": "transition", "id": uuid.uuid4().hex, "state": "refused", "prev": None, "user": user or "",
                     "role": "", "site": site.name, "device": device, "command": command, "args": typed,
                     "reason": f"not authenticated: {exc}"})  # fmt: skip
        audit.close()
        say(f"error: {exc}")
        return EXIT_AUTH

    # The twin of this one device: its telemetry (success and interlock points) and its commands.
    runtime = Runtime(replace(site, devices=(dev,) if dev else ()))
    if dev is not None:
        runtime.add_connector(MqttConnector(connect_url, TopicMap(runtime.site), name="command telemetry"))
    transport = MqttCommandTransport(connect_url, site.topic_prefix, **dict(transport_options or {}))
    service = runtime.enable_commands(transport, audit_path=audit)
    if dev is None:
        service.site = site  # an unknown device is refused (and audited) by the service itself
    last_state: dict[str, str] = {}

    def show(event: CommandChanged) -> None:
        c = event.command
        prev = last_state.get(c["id"])
        last_state[c["id"]] = c["state"]
        say(_line(c, prev))

    runtime.events.subscribe(CommandChanged, show)
    telemetry = runtime.connectors[0] if runtime.connectors else None
    try:
        runtime.start()
        transport.start()
        if not transport.wait_ready(connect_timeout):
            say(f"warning: not connected to {transport.address.host}:{transport.address.port} yet ({transport.last_error or 'no answer'}); "
                "the command will be retried until it expires")  # fmt: skip
        elif telemetry is not None:
            telemetry.wait_subscribed(connect_timeout)
        if spec is not None and transport.connected:
            _wait_for_points(runtime, dev, spec)
        cmd = runtime.request_command(device, command, typed, confirm, principal=principal)
        while cmd.state not in FINAL:
            runtime.step()
            time.sleep(0.02)
        _wait_for_answer(runtime, cmd, answer_grace)
        return EXIT_CODES.get(cmd.state, EXIT_FAILED)
    finally:
        runtime.stop()


def broker_url(url: str) -> str:
    """The URL with the broker password from $TWINVIEW_MQTT_PASSWORD when it names a user without one,
    so that twinview's broker identity needs no password on the command line."""
    from urllib.parse import quote, urlsplit, urlunsplit

    secret = os.environ.get(BROKER_PASSWORD_ENV)
    try:
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    except ValueError:
        return url  # the connectors say what is wrong with it
    if not secret or not parts.username or parts.password is not None or "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(secret, safe='')}@{host}"))


def _wait_for_answer(runtime: Any, cmd: Any, grace: float) -> None:
    """A sent command ended before its device's answer was seen: listen briefly for it, so that an
    answer already on its way is applied (as a note) and written to the audit log before exit."""
    runtime.step()  # whatever is queued already
    if cmd.sent_at is None or cmd.state == "rejected":
        return  # never sent, or the answer is what ended it

    def answered() -> bool:
        return cmd.acked or any(n.startswith("device ") for n in cmd.notes)

    deadline = time.monotonic() + max(0.0, grace)
    while not answered() and time.monotonic() < deadline:
        time.sleep(0.02)
        runtime.step()


SUCCESS_POINT_WAIT_S = 3.0  # at most this long for the success point's value before sending


def _wait_for_points(runtime: Any, device: Any, spec: Any) -> None:
    """Give the interlock's points a chance to report (retained values arrive at once), and the
    success point a few seconds: a change of it is evidence only when its value before the command
    is known (without one, only the device's answer confirms the command)."""
    from twinview.twin.interlock import Interlock, InterlockError

    try:
        points = Interlock.parse(spec.interlock).points if spec.interlock else ()
    except InterlockError:
        points = ()
    specs = [device.point(p) for p in points if device.point(p) is not None]
    success = device.point(spec.success_point) if spec.success_point else None
    start = time.monotonic()
    deadline = start + min(30.0, max(p.period for p in specs) + 1.0) if specs else start
    if success is not None:
        deadline = max(deadline, start + min(SUCCESS_POINT_WAIT_S, success.period + 1.0))
    known = lambda p: runtime.state.point(device.id, p.id).quality.current  # noqa: E731
    while time.monotonic() < deadline:
        runtime.step()
        if all(known(p) for p in specs) and (success is None or known(success)):
            return
        time.sleep(0.02)


def _line(c: dict[str, Any], prev: str | None) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(c["updated"]))
    same = prev == c["state"]
    what = c["note"] if same and c["note"] else c["reason"]
    state = "note" if same else c["state"].replace("_", " ")
    head = f"{stamp}  {c['id'][:8]}  {c['device']} {c['command']}  {state}"
    return f"{head}: {what}" if what else head
