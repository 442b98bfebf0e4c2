"""`twinview alarms`: list, acknowledge, shelve and report alarms from the site's alarm store.

    twinview alarms SITE [--store PATH] [--active] [--all] [--json]
    twinview alarms ack SITE ALARM_ID --user NAME
    twinview alarms shelve SITE ALARM_ID --for 2h --reason TEXT --user NAME
    twinview alarms unshelve SITE ALARM_ID --user NAME
    twinview alarms out-of-service SITE ALARM_ID --reason TEXT --user NAME   (admin; in-service to undo)
    twinview alarms report SITE [--since 7d] [--json]

The command line reads the journal a running viewer or server writes (and the
viewer reads what the command line appends, within a second). Actions check the
role like commands do (password from $TWINVIEW_PASSWORD, or a token) and are
written to the audit log; a refusal exits 10, failed authentication 14.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SITE = 3
EXIT_REFUSED = 10
EXIT_AUTH = 14
ACTIONS = ("list", "ack", "shelve", "unshelve", "out-of-service", "in-service", "report")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '1d' or plain seconds; ValueError otherwise."""
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 2h, 1d)")
    return float(m.group(1)) * _UNIT[(m.group(2) or "s").lower()]


def run_alarms_cli(args: Any) -> int:
    from twinview.site.errors import SiteError
    from twinview.site.manifest import load_manifest

    words = list(args.words)
    action = words.pop(0) if words and words[0] in ACTIONS else "list"
    if not words:
        print(f"error: name the site folder: twinview alarms {'' if action == 'list' else action + ' '}SITE", file=sys.stderr)
        return EXIT_USAGE
    site_dir, rest = words[0], words[1:]
    need_id = action in ("ack", "shelve", "unshelve", "out-of-service", "in-service")
    if need_id and len(rest) != 1 or not need_id and rest:
        print(f"error: expected twinview alarms {action} SITE{' ALARM_ID' if need_id else ''}", file=sys.stderr)
        return EXIT_USAGE
    try:
        site, _ = load_manifest(site_dir)
    except SiteError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return EXIT_SITE
    engine = _offline_engine(site, args)
    try:
        if action == "list":
            return _list(engine, args)
        if action == "report":
            return _report(engine, site, args)
        return _act(engine, site, action, rest[0], args)
    finally:
        engine.store.close()


def _offline_engine(site: Any, args: Any) -> Any:
    """The site's alarms as the store knows them, in an engine that is never stepped."""
    from twinview.twin.alarms import default_store_path
    from twinview.twin.audit import default_audit_path
    from twinview.twin.runtime import Runtime

    runtime = Runtime(site)
    store = args.store or default_store_path(site.name)
    audit = getattr(args, "audit", None) or default_audit_path(site.name)
    engine = runtime.enable_alarms(store, audit)
    for p in engine.problems:
        if p.severity == "error":
            print(f"warning: {p} (rule left out)", file=sys.stderr)
    return engine


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _list(engine: Any, args: Any) -> int:
    rows = engine.alarms(include_normal=args.all, active_only=args.active)
    if args.json:
        for a in rows:
            print(json.dumps(a, ensure_ascii=False, allow_nan=False))
        return EXIT_OK
    header = ("ID", "DEVICE", "POINT", "SEVERITY", "STATE", "ACTIVATED", "CLEARED", "ACKED", "MESSAGE")
    table = [header]
    for a in rows:
        state = a["state"].replace("_", " ")
        if a["chattering"]:
            state += " (chattering)"
        if a["first_out"]:
            state += " (first out)"
        if a["shelved_until"]:
            state += f" until {_when(a['shelved_until'])[11:16]}"
        acked = f"{_when(a['acked_at'])} {a['acked_by']}" if a["acked_at"] else "-"
        table.append((a["id"], a["device"], a["point"] or "-", a["severity"], state, _when(a["activated_at"]),
                      _when(a["cleared_at"]), acked, a["message"]))  # fmt: skip
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join([str(r[i]).ljust(widths[i]) for i in range(len(widths))] + [str(r[-1])]).rstrip())
    counts = engine.counts()
    print("  ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v and k != "normal") or "no alarms")
    for area, flood in engine.floods.items():
        print(f"FLOOD in {area or 'the site'}: {flood['count']} alarms, first out {flood['first_out']}")
    return EXIT_OK


def _act(engine: Any, site: Any, action: str, alarm_id: str, args: Any) -> int:
    from twinview.security.auth import AuthError, authenticate
    from twinview.twin.alarms import AlarmError

    if alarm_id not in engine.index:
        close = [a for a in engine.ids if alarm_id.lower() in a.lower()][:5]
        print(f"error: no alarm {alarm_id!r} in {site.name}" + (f" (did you mean {', '.join(close)}?)" if close else ""),
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    seconds = 0.0
    if action == "shelve":
        if not args.duration or not args.reason:
            print("error: shelving needs --for DURATION and --reason TEXT", file=sys.stderr)
            return EXIT_USAGE
        try:
            seconds = parse_duration(args.duration)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    password = None
    token = args.token if args.token is not None else os.environ.get("TWINVIEW_TOKEN")
    if args.user is not None:
        password = os.environ.get("TWINVIEW_PASSWORD")
        token = None if password is not None else token
    try:
        principal = authenticate(args.user, password, token=token, path=args.users)
    except AuthError as exc:
        who = type("Unknown", (), {"name": args.user or "anonymous", "role": ""})()
        engine._audit(action if action != "ack" else "acknowledge", engine.index[alarm_id], who, "refused",
                      f"not authenticated: {exc}")  # fmt: skip
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AUTH
    try:
        if action == "ack":
            ok, why = engine.acknowledge(alarm_id, principal, args.comment or "")
        elif action == "shelve":
            ok, why = engine.shelve(alarm_id, principal, seconds, args.reason)
        elif action == "unshelve":
            ok, why = engine.unshelve(alarm_id, principal)
        else:
            ok, why = engine.set_out_of_service(alarm_id, principal, action == "out-of-service", args.reason or "")
    except AlarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    engine.flush()
    if not ok:
        print(f"refused: {why}", file=sys.stderr)
        return EXIT_REFUSED
    a = engine.describe(engine.index[alarm_id])
    print(f"{alarm_id}: {a['state'].replace('_', ' ')}"
          + (f" until {_when(a['shelved_until'])}" if a["shelved_until"] else "") + f" (by {principal.name})")
    return EXIT_OK


def _report(engine: Any, site: Any, args: Any) -> int:
    from twinview.twin.alarms.report import format_report, performance
    from twinview.twin.audit import parse_since

    now = time.time()
    try:
        since = parse_since(args.since or "7d", now)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    states = engine.store.load()
    result = performance(engine.store.history(), since, now, states, engine.settings.flood_count,
                         engine.settings.chatter_per_minute)  # fmt: skip
    if args.json:
        print(json.dumps(result, ensure_ascii=False, allow_nan=False))
    else:
        print(format_report(result, site.name), end="")
    return EXIT_OK
