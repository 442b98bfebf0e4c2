"""`twinview broker-acl SITE`: the broker rules that keep raw MQTT from bypassing twinview.

twinview checks roles, interlocks and writes the audit log, but a client that can
publish on `{prefix}/{device}/cmd/{command}` itself skips all of that. Only the
broker can stop it. This writes, from the site's manifest:

- a mosquitto `acl_file`: only twinview's command identity (`--user`, default
  "twinview") may publish command topics (the site's declared command names);
  each device (a broker user named as its device id) may read its own commands
  and publish its own answers, telemetry and availability, nothing else;
  twinview reads everything under the prefix. Anybody else gets nothing.
- with `--fleet-user NAME`, one more user for a process that plays every device
  at once (`twinview sim`, a gateway): it may read every device's commands and
  publish every answer, telemetry and availability topic, and still no command.
- with `--dynsec FILE`, the same rules as a mosquitto dynamic-security
  configuration (roles "twinview-commands" and "device-<id>", one client each).
  An existing FILE (e.g. made by `mosquitto_ctrl dynsec init FILE admin`) is
  updated in place: its admin, other clients, roles and every password are kept;
  the roles written here before are replaced. New clients have no password: set
  them with `mosquitto_ctrl -u admin ... dynsec setClientPassword NAME`.

Passwords are never written here: create them with `mosquitto_passwd` (acl_file)
or mosquitto_ctrl (dynamic security). See docs/commands.md#broker-acls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from twinview.site.manifest import Device, Site
from twinview.connectors.mqtt.telemetry import rebirth_topic
from twinview.twin.commands import command_topic, response_topic

EXIT_OK, EXIT_USAGE, EXIT_SITE = 0, 2, 3
_WILDCARDS = ("+", "#")


class AclError(ValueError):
    """The site cannot be expressed as broker rules (e.g. a device id with an MQTT wildcard)."""


def _check_name(what: str, name: str) -> None:
    if not name or any(c in name for c in (*_WILDCARDS, "/", "\n", "\r", "\0")) or name != name.strip():
        raise AclError(f"{what} {name!r} cannot be used in broker rules (no '+', '#', '/', spaces at the ends)")


def _check_topic(site: Site, topic: str) -> None:
    """A telemetry topic that can be a rule, and that lies outside every device's command space."""
    if not topic or any(c in topic for c in ("\n", "\r", "\0", *_WILDCARDS)):
        raise AclError(f"topic {topic!r} cannot be used in broker rules")
    prefix = [p for p in site.topic_prefix.strip("/").split("/") if p]
    parts = topic.split("/")
    rest = parts[len(prefix):] if parts[: len(prefix)] == prefix else []
    if len(rest) >= 2 and (rest[1] == "cmd_response" or (rest[1] == "cmd" and len(rest) >= 3)):
        raise AclError(f"telemetry topic {topic!r} lies in the command space ({site.topic_prefix}/<device>/cmd/...)")


def command_names(site: Site) -> list[str]:
    """Every declared command name, sorted (one write rule each for twinview)."""
    names = sorted({c.name for d in site.devices for c in d.commands})
    for name in names:
        _check_name("command", name)
    return names


def device_topics(site: Site, device: Device) -> tuple[list[str], list[str]]:
    """(topics the device reads, topics the device writes)."""
    _check_name("device id", device.id)
    reads = [command_topic(site.topic_prefix, device.id, "#"), rebirth_topic(site.topic_prefix.strip("/"))]
    writes = [response_topic(site.topic_prefix, device.id)]
    for topic in [p.topic for p in device.points] + ([device.availability_topic] if device.availability_topic else []):
        _check_topic(site, topic)
        if topic not in writes:
            writes.append(topic)
    return reads, writes


def twinview_topics(site: Site) -> tuple[list[str], list[str]]:
    """(topics twinview reads, topics twinview writes): commands it may send, everything it listens to."""
    prefix = site.topic_prefix.strip("/")
    writes = [command_topic(prefix, "+", name) for name in command_names(site)]
    writes.append(rebirth_topic(prefix))  # after a (re)connect twinview asks devices for every point at once
    reads = [f"{prefix}/#"] if prefix else []
    for device in site.devices:  # telemetry outside the prefix, topic by topic
        for topic in [p.topic for p in device.points] + ([device.availability_topic] if device.availability_topic else []):
            _check_topic(site, topic)
            if (not prefix or not topic.startswith(prefix + "/")) and topic not in reads:
                reads.append(topic)
    if not prefix:
        reads.append(response_topic(prefix, "+"))
    return reads, writes


def fleet_topics(site: Site) -> tuple[list[str], list[str]]:
    """(reads, writes) of a user that plays every device: all their topics, no command topic.
    Under a prefix, '{prefix}/+/+' covers the default topics in one rule: a command topic has one
    level more ({prefix}/{device}/cmd/{command}), so it never matches."""
    prefix = site.topic_prefix.strip("/")
    reads = [command_topic(prefix, "+", "#"), rebirth_topic(prefix)]
    writes = [f"{prefix}/+/+"] if prefix else []
    depth = len(prefix.split("/")) + 2 if prefix else 0
    for device in site.devices:
        _, d_writes = device_topics(site, device)
        for topic in d_writes:
            covered = prefix and topic.startswith(prefix + "/") and len(topic.split("/")) == depth
            if not covered and topic not in writes:
                writes.append(topic)
    return reads, writes


def _check_users(site: Site, *users: str | None) -> None:
    for user in users:
        if user is None:
            continue
        _check_name("user", user)
        if site.device(user) is not None:
            raise AclError(f"user {user!r} is also a device id: choose another name")
    if len([u for u in users if u]) != len({u for u in users if u}):
        raise AclError("the command user and the fleet user must differ")


def acl_text(site: Site, user: str = "twinview", fleet_user: str | None = None) -> str:
    """A mosquitto acl_file for the site."""
    _check_users(site, user, fleet_user)
    reads, writes = twinview_topics(site)
    lines = [
        f"# mosquitto acl_file for site {site.name!r}, written by `twinview broker-acl`. Do not edit: regenerate.",
        "# mosquitto.conf:  allow_anonymous false / password_file <file> / acl_file <this file>",
        "# Users: twinview's command identity below, and one user per device named as its device id",
        "# (mosquitto_passwd <file> <name>). Anybody else may publish and subscribe nothing.",
        "",
        f"user {user}",
        *[f"topic write {t}" for t in writes],
        *[f"topic read {t}" for t in reads],
    ]
    if fleet_user:
        f_reads, f_writes = fleet_topics(site)
        lines += ["", "# plays every device (twinview sim, a gateway): their commands in, their answers and telemetry out",
                  f"user {fleet_user}", *[f"topic read {t}" for t in f_reads], *[f"topic write {t}" for t in f_writes]]  # fmt: skip
    for device in site.devices:
        d_reads, d_writes = device_topics(site, device)
        lines += ["", f"user {device.id}", *[f"topic read {t}" for t in d_reads], *[f"topic write {t}" for t in d_writes]]
    return "\n".join(lines) + "\n"


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


MARK = "twinview broker-acl: "  # in the textDescription of every role written here


def _role(name: str, reads: list[str], writes: list[str], text: str) -> dict[str, Any]:
    acls = [_acl("publishClientSend", t) for t in writes]
    for t in reads:
        acls += [_acl("subscribePattern", t), _acl("publishClientReceive", t)]
    return {"rolename": name, "textDescription": MARK + text, "acls": acls}


def dynsec_config(site: Site, user: str = "twinview", fleet_user: str | None = None) -> dict[str, Any]:
    """The same rules as a mosquitto dynamic-security configuration (clients without passwords)."""
    _check_users(site, user, fleet_user)
    reads, writes = twinview_topics(site)
    roles = [_role("twinview-commands", reads, writes, f"sends the commands of site {site.name}")]
    clients = [{"username": user, "textName": "twinview command identity", "roles": [{"rolename": "twinview-commands"}]}]
    if fleet_user:
        roles.append(_role("twinview-fleet", *fleet_topics(site), f"plays every device of site {site.name}"))
        clients.append({"username": fleet_user, "textName": "device fleet", "roles": [{"rolename": "twinview-fleet"}]})
    for device in site.devices:
        d_reads, d_writes = device_topics(site, device)
        roles.append(_role(f"device-{device.id}", d_reads, d_writes, f"device {device.id}"))
        clients.append({"username": device.id, "textName": device.name or device.id, "roles": [{"rolename": f"device-{device.id}"}]})
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True},
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def merge_dynsec(existing: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """`ours` written into an existing dynamic-security configuration: its admin, other clients and
    roles and every password stay; roles this tool wrote before are replaced (or dropped when gone)."""
    out = dict(existing)
    names = {r["rolename"] for r in ours["roles"]}
    kept = [r for r in existing.get("roles", []) if r.get("rolename") not in names
            and not str(r.get("textDescription", "")).startswith(MARK)]  # fmt: skip
    out["roles"] = kept + ours["roles"]
    valid = {r.get("rolename") for r in out["roles"]}
    clients = {c.get("username"): dict(c) for c in existing.get("clients", [])}
    for client in clients.values():  # no client keeps a role that is gone
        client["roles"] = [r for r in client.get("roles", []) if r.get("rolename") in valid]
    for client in ours["clients"]:
        old = clients.get(client["username"])
        if old is None:
            clients[client["username"]] = client
        else:
            have = {r.get("rolename") for r in old["roles"]}
            old["roles"] += [r for r in client["roles"] if r["rolename"] not in have]
    out["clients"] = list(clients.values())
    out["defaultACLAccess"] = ours["defaultACLAccess"]
    out.setdefault("groups", [])
    return out


def run_broker_acl(site_dir: str | Path, user: str = "twinview", out: str | None = None, dynsec: str | None = None,
                   stdout: TextIO | None = None, fleet_user: str | None = None) -> int:  # fmt: skip
    """Write the acl_file (to `out`, else stdout) and, with `dynsec`, the dynamic-security JSON."""
    from twinview.site.errors import SiteError
    from twinview.site.manifest import load_manifest

    stdout = stdout or sys.stdout
    try:
        site, _ = load_manifest(site_dir)
    except SiteError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_SITE
    try:
        text = acl_text(site, user, fleet_user)
        config = dynsec_config(site, user, fleet_user) if dynsec else None
    except AclError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if out:
            Path(out).write_text(text)
            print(f"wrote {out}: {user} may send {len(command_names(site))} command(s) to {len(site.devices)} device(s)",
                  file=sys.stderr)  # fmt: skip
        else:
            stdout.write(text)
        if dynsec and config is not None:
            path = Path(dynsec)
            if path.exists() and path.stat().st_size:
                existing = json.loads(path.read_text())
                if not isinstance(existing, dict):
                    raise ValueError("not a JSON object")
                config = merge_dynsec(existing, config)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(config, indent=2) + "\n")
            tmp.chmod(0o600)  # it may hold password hashes
            tmp.replace(path)
            print(f"wrote {dynsec}: set new clients' passwords with `mosquitto_ctrl ... dynsec setClientPassword NAME`",
                  file=sys.stderr)  # fmt: skip
    except OSError as exc:
        print(f"error: cannot write: {exc.strerror or exc} ({exc.filename})", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"error: {dynsec} is not a dynamic-security configuration ({str(exc)[:80]})", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
