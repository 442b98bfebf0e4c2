"""Alarm system performance (EEMUA 191 / ISA-18.2 section 16) from the alarm journal.

Figures over a period: annunciated alarms per area per 10 minutes (average and
peak; EEMUA 191's "manageable" is about 1, "likely acceptable" below 2, a flood
above 10), the share of 10-minute periods in flood, the ten most frequent
alarms, chattering alarms (more activations a minute than the limit), alarms
standing (active) for more than 24 hours, and the priority distribution of the
activations (the usual target is about 80 % low, 15 % high, 5 % critical).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable

from .rules import SEVERITIES

PERIOD = 600.0
STANDING = 24 * 3600.0


def performance(records: Iterable[dict[str, Any]], since: float, until: float, states: dict[str, dict[str, Any]] | None = None,
                flood_count: int = 10, chatter_per_minute: int = 5) -> dict[str, Any]:
    """The figures of `twinview alarms report` as plain data."""
    span = max(until - since, PERIOD)
    periods = max(1, math.ceil(span / PERIOD))
    per_area: dict[str, Counter] = defaultdict(Counter)  # area -> period index -> activations
    per_alarm: Counter = Counter()
    priorities: Counter = Counter()
    times: dict[str, list[float]] = defaultdict(list)
    chattering: set[str] = set()
    opened: dict[str, float] = {}
    standing: dict[str, float] = {}
    for rec in records:
        ts = rec.get("ts")
        if not isinstance(ts, (int, float)) or ts > until:
            continue
        aid, ev = rec.get("id", ""), rec.get("ev")
        if ev == "chattering" and ts >= since:
            chattering.add(aid)
        if ev == "activated":
            opened[aid] = ts
            if ts < since or rec.get("hidden"):  # shelved, suppressed or out of service: not annunciated
                continue
            per_area[rec.get("area") or ""][int((ts - since) // PERIOD)] += 1
            per_alarm[aid] += 1
            priorities[rec.get("sev") or "medium"] += 1
            times[aid].append(ts)
        elif ev == "cleared" and aid in opened:
            start = opened.pop(aid)
            if ts - start > STANDING and ts >= since:
                standing[aid] = max(standing.get(aid, 0.0), ts - start)
    for aid, start in opened.items():  # still active
        active = (states or {}).get(aid, {}).get("active", True)
        if active and until - start > STANDING:
            standing[aid] = max(standing.get(aid, 0.0), until - start)
    for aid, ts in times.items():
        j = 0
        for i, t in enumerate(ts):
            while t - ts[j] > 60.0:
                j += 1
            if i - j + 1 > chatter_per_minute:
                chattering.add(aid)
                break
    areas = {}
    flood_periods: set[int] = set()
    for area, counts in sorted(per_area.items()):
        total = sum(counts.values())
        areas[area] = {"alarms": total, "average_per_10min": round(total / periods, 3), "peak_per_10min": max(counts.values())}
        flood_periods.update(p for p, c in counts.items() if c > flood_count)
    total = sum(priorities.values())
    return {
        "since": since, "until": until, "periods": periods, "alarms": total, "areas": areas,
        "flood_share": round(len(flood_periods) / periods, 4),
        "flood_periods": len(flood_periods),
        "most_frequent": [{"id": aid, "count": n} for aid, n in per_alarm.most_common(10)],
        "chattering": sorted(chattering),
        "standing": [{"id": aid, "hours": round(s / 3600, 1)} for aid, s in sorted(standing.items(), key=lambda x: -x[1])],
        "priorities": {sev: {"count": priorities.get(sev, 0), "share": round(priorities.get(sev, 0) / total, 4) if total else 0.0}
                       for sev in reversed(SEVERITIES)},
    }  # fmt: skip


def format_report(r: dict[str, Any], site: str = "") -> str:
    from datetime import datetime

    def when(t: float) -> str:
        return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

    out = [f"Alarm performance{' of ' + site if site else ''}: {when(r['since'])} .. {when(r['until'])}"
           f" ({r['periods']} periods of 10 min), {r['alarms']} alarm{'' if r['alarms'] == 1 else 's'}"]  # fmt: skip
    out.append("")
    out.append("Alarms per area per 10 minutes (EEMUA 191: ~1 manageable, >10 a flood)")
    if not r["areas"]:
        out.append("  (no alarms)")
    width = max([len(a or "(no area)") for a in r["areas"]] + [4])
    for area, a in r["areas"].items():
        out.append(f"  {(area or '(no area)').ljust(width)}  average {a['average_per_10min']:7.3f}  peak {a['peak_per_10min']:4d}  total {a['alarms']}")
    out.append(f"Periods in flood: {r['flood_periods']} of {r['periods']} ({100 * r['flood_share']:.1f} %)")
    out.append("")
    out.append("Most frequent alarms")
    for i, m in enumerate(r["most_frequent"], 1):
        out.append(f"  {i:2d}. {m['id']}  {m['count']}")
    if not r["most_frequent"]:
        out.append("  (none)")
    out.append("Chattering alarms: " + (", ".join(r["chattering"]) or "none"))
    out.append("Active for more than 24 h: " + (", ".join(f"{s['id']} ({s['hours']:g} h)" for s in r["standing"]) or "none"))
    out.append("Priority distribution (target about 5 % critical, 15 % high, 80 % medium and low)")
    for sev, p in r["priorities"].items():
        out.append(f"  {sev:<8}  {p['count']:6d}  {100 * p['share']:5.1f} %")
    return "\n".join(out) + "\n"
