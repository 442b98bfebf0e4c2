"""`twinview state`: the twin after a while, every point's value, quality, time and flags.

What scripts, monitoring and a doubtful operator use. The command hosts the
runtime on its own thread for --wait seconds, then prints one line per point
(or one JSON object per point with --json). It exits non-zero when the source
cannot be reached, so a cron job notices.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 4


def cmd_state(args: Any, open_site: Any) -> int:
    from twinview.cli.sources import runtime_from_args
    from twinview.twin.vocabulary import DeviceFlag

    if not (args.mqtt or args.replay or args.ws_ingest or args.sim):
        print("error: name a source: --mqtt URL, --replay FILE, --ws-ingest HOST:PORT or --sim", file=sys.stderr)
        return EXIT_USAGE
    loaded = open_site(args.site, quiet=True)
    site = loaded.site
    if args.device and site.device(args.device) is None:
        print(f"error: no device {args.device!r} in {site.name}", file=sys.stderr)
        return EXIT_USAGE
    args.no_sim = not args.sim
    runtime = runtime_from_args(loaded, args)
    try:
        runtime.run_for(args.wait)
        unreachable = _unreachable(runtime)
        rows = _rows(runtime, args.device, DeviceFlag)
    finally:
        runtime.stop()
    if args.json:
        for row in rows:
            print(json.dumps(row, allow_nan=False, ensure_ascii=False))
    else:
        _print_table(rows)
        counts = runtime.state.quality_counts()
        print("  ".join(f"{k} {v:,}" for k, v in counts.items()))
        errors = {k: v for k, v in runtime.counted_errors().items() if v}
        if errors:
            print("counted: " + "  ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in errors.items()))
    for name, why in unreachable:
        print(f"error: {name} could not be reached: {why}", file=sys.stderr)
    return EXIT_UNREACHABLE if unreachable else EXIT_OK


def _unreachable(runtime: Any) -> list[tuple[str, str]]:
    """Sources that never came up (their link is not 'up' and they delivered nothing)."""
    out = []
    links = runtime.link_states()
    for connector in runtime.connectors:
        link = links.get(connector.name)
        received = connector.stats.snapshot().get("received", 0) if connector.stats is not None else 0
        if link is not None and link.state != "up" and not received:
            out.append((connector.name, link.detail or link.state))
    return out


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def _rows(runtime: Any, device: str | None, flag_type: Any) -> list[dict[str, Any]]:
    state, looks = runtime.state, runtime.looks
    now = time.time()
    rows = []
    indices = [state.index(device)] if device else range(len(state.devices))
    for i in indices:
        flags = [f.name.lower() for f in flag_type if int(looks.flags[i]) & f]
        for p in state.points(i):
            value = p.value
            rows.append({
                "device": p.device, "point": p.point, "value": value, "unit": p.spec.unit,
                "quality": p.quality.label, "ts": _iso(p.ts), "age_s": None if p.ts is None else round(now - p.ts, 3),
                "alarm": p.alarm, "device_flags": flags, "error": p.error, "note": p.note or None,
            })  # fmt: skip
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    def show(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "on" if v else "off"
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    table = [["device", "point", "value", "quality", "age", "flags"]]
    for r in rows:
        value = show(r["value"]) + (f" {r['unit']}" if r["unit"] and r["value"] is not None else "")
        age = "—" if r["age_s"] is None else f"{r['age_s']:.1f} s"
        flags = ",".join(r["device_flags"] + (["alarm"] if r["alarm"] and "alarm" not in r["device_flags"] else []))
        table.append([r["device"], r["point"], value, r["quality"], age, flags])
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
