"""Overlay rules one value at a time: colour of a value, label text, formatting, legends.

The column-wise evaluation of every device's look is twinview.twin.looks; these
are the exact rules it follows, used for labels (made on demand), legends and
the rare overlay that cannot be vectorised. Every label ends with its worst
quality when that is not good, e.g. " (stale)" or " (no data)".
"""

from __future__ import annotations

import string
from typing import Any

from twinview.site.manifest import ColorOverlay, Device, MotionOverlay, PointSpec
from . import colormaps
from .vocabulary import Quality
from .state import PointView, TwinState

RGBA = tuple[float, float, float, float]

NO_VALUE = "—"
_MARKS = {Quality.NONE: " (no data)", Quality.STALE: " (stale)", Quality.BAD: " (bad)", Quality.OFFLINE: " (offline)"}
_FORMATTER = string.Formatter()


def _as_number(spec: PointSpec, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        try:
            return float(spec.states.index(value))
        except ValueError:
            return None
    return float(value)


def _state_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def color_for(overlay: ColorOverlay, spec: PointSpec, value: Any) -> RGBA | None:
    """Colour of a value under a colour overlay; None when there is nothing to show."""
    if value is None:
        return None
    if overlay.states:
        found = overlay.states.get(_state_key(value))
        if found is not None or not (overlay.stops or overlay.map):
            return found
    x = _as_number(spec, value)
    if x is None:
        return None
    if overlay.stops:
        chosen = overlay.stops[0][1]
        for threshold, rgba in overlay.stops:
            if x >= threshold:
                chosen = rgba
            else:
                break
        return chosen
    if overlay.map and overlay.range:
        lo, hi = overlay.range
        return colormaps.sample(overlay.map, (x - lo) / (hi - lo))
    return None


def motion_target(motion: MotionOverlay, rec: PointView) -> float | None:
    """The overlay's target from the point's last good value (held while stale or bad)."""
    x = _as_number(rec.spec, rec.good_value)
    if x is None:
        return None
    (r0, r1), (t0, t1) = motion.range, motion.to
    t = 0.0 if r1 == r0 else min(1.0, max(0.0, (x - r0) / (r1 - r0)))
    return t0 + t * (t1 - t0)


def format_number(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e9:
        return str(int(x))
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def format_value(spec: PointSpec, value: Any) -> str:
    """'value unit' for display; NO_VALUE when there is none."""
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (int, float)):
        text = format_number(value)
    else:
        text = str(value)
    return f"{text} {spec.unit}" if spec.unit else text


def label_text(device: Device, state: TwinState, index: int | None = None) -> str:
    """The device's label: its format string filled with point values, or 'value unit' per point.

    A point without any value shows NO_VALUE; when any labelled point is not
    current, the text ends with its worst quality, e.g. " (stale)".
    """
    if device.label is None:
        return ""
    i = state.index(device.id) if index is None else index
    return _label(device, state.point_map(i), state.device_offline(i))


def _label(device: Device, points: dict[str, PointView], offline: bool) -> str:
    recs = [points[pid] for pid in device.label.points if pid in points]  # type: ignore[union-attr]
    fmt = device.label.format  # type: ignore[union-attr]
    if fmt:
        text = _fill(fmt, {r.point: r.value for r in recs})
    else:
        text = "  ".join(format_value(r.spec, r.value) for r in recs)
    worst = Quality.OFFLINE if offline else max((r.quality for r in recs), default=Quality.NONE)
    if not fmt and all(r.value is None for r in recs):
        text = NO_VALUE
    return text + _MARKS.get(worst, "")


def _fill(fmt: str, values: dict[str, Any]) -> str:
    """str.format without attribute or index access: each field is a point id."""
    out = []
    try:
        parsed = list(_FORMATTER.parse(fmt))
    except ValueError:
        return fmt
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        value = values.get(field)
        if value is None:
            out.append(NO_VALUE)
            continue
        if isinstance(value, bool) and not spec:
            value = "on" if value else "off"
        if conversion == "r":
            value = repr(value)
        elif conversion in ("s", "a"):
            value = str(value)
        try:
            out.append(format(value, spec or ""))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)


def legend(overlay: ColorOverlay, spec: PointSpec | None = None, steps: int = 5) -> list[tuple[str, RGBA]]:
    """(label, rgba) entries a legend panel can show for a colour overlay."""
    unit = f" {spec.unit}" if spec is not None and spec.unit else ""
    if overlay.states:
        return [(key, rgba) for key, rgba in overlay.states.items()]
    if overlay.stops:
        entries = []
        for j, (threshold, rgba) in enumerate(overlay.stops):
            if j + 1 < len(overlay.stops):
                text = f"{format_number(threshold)} – {format_number(overlay.stops[j + 1][0])}{unit}"
            else:
                text = f"≥ {format_number(threshold)}{unit}"
            entries.append((text, rgba))
        return entries
    if overlay.map and overlay.range:
        lo, hi = overlay.range
        n = max(2, steps)
        return [
            (f"{format_number(lo + (hi - lo) * k / (n - 1))}{unit}", colormaps.sample(overlay.map, k / (n - 1)))
            for k in range(n)
        ]
    return []
