"""ImGui panels for live data: connection status, colour legend, history charts."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from imgui_bundle import imgui

from twinview.twin.overlays import legend

from .panels import BAD, DIM, GOOD, WARN

STATE_COLORS = {"up": GOOD, "connecting": WARN, "down": BAD}


class StatusPanel:
    """Each connection: state, messages per second, bad payloads with examples, last error."""

    def __init__(self, live):
        self.live = live
        self._quality_counts: dict[str, int] = {}
        self._counted_at = 0.0

    def draw(self, x: float, y: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.begin("Connections", None, imgui.WindowFlags_.always_auto_resize)
        links = self.live.link_states()
        for connector in self.live.connectors:
            if connector.stats is None:  # events handed in by a tool or a test, not a connection
                continue
            stats = connector.stats.snapshot()
            link = links.get(connector.name)
            state = link.state if link is not None else stats.get("state", "idle")
            imgui.text_colored(STATE_COLORS.get(state, DIM), f"{connector.name}: {state}")
            imgui.same_line()
            imgui.text_colored(DIM, f"{connector.stats.rate():7.0f} msg/s  ·  {stats['received']:,} received  ·  {stats['bad']:,} bad")
            if link is not None and link.detail and state != "up":
                imgui.text_colored(WARN, f"  {link.detail}")
            if stats["last_error"]:
                imgui.text_colored(BAD, f"  last error: {stats['last_error'][:90]}")
            if stats["bad_examples"] and imgui.tree_node(f"bad payloads ({len(stats['bad_examples'])} latest)##{connector.name}"):
                for example, error in stats["bad_examples"]:
                    imgui.text_colored(DIM, f"{example[:60]!r}")
                    imgui.same_line()
                    imgui.text_colored(BAD, error[:80])
                imgui.tree_pop()
        now = time.monotonic()
        if now - self._counted_at > 1.0:  # walks every point: once a second, not per frame
            self._quality_counts = self.live.state.quality_counts()
            self._counted_at = now
        imgui.separator()
        counts = self._quality_counts
        imgui.text_colored(GOOD, f"good {counts.get('good', 0):,}")
        for label, color in (("stale", WARN), ("bad", BAD), ("offline", BAD), ("no data", DIM)):
            imgui.same_line()
            imgui.text_colored(color, f"{label} {counts.get(label, 0):,}")
        c = self.live.state.counters
        imgui.text_colored(DIM, f"applied {c['samples']:,}  bad {c['bad']:,}  out of order {c['out_of_order']:,}  unknown {c['unknown']:,}")
        errors = {k: v for k, v in self.live.counted_errors().items() if v and k not in ("bad_samples", "out_of_order", "unknown_points") and not k.endswith(".bad")}
        if errors:
            imgui.text_colored(BAD, "errors: " + "  ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in errors.items()))
            last = self.live.stats.last_error or self.live.events.last_error
            if last:
                imgui.text_colored(DIM, f"  last: {last[:90]}")
        imgui.end()


class LegendPanel:
    """The colour scale of the selected device's overlay (or the first device type's), and what hatching means."""

    def __init__(self, live):
        self.live = live

    def draw(self, selected: int | None, x: float, y: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.begin("Legend", None, imgui.WindowFlags_.always_auto_resize)
        devices = self.live.site.devices
        device = devices[selected] if selected is not None else next((d for d in devices if d.color), None)
        if device is not None and device.color is not None:
            spec = device.point(device.color.point)
            imgui.text(f"{device.type or device.id}: {device.color.point}")
            draw_list = imgui.get_window_draw_list()
            for text, rgba in legend(device.color, spec):
                pos = imgui.get_cursor_screen_pos()
                color = imgui.color_convert_float4_to_u32(imgui.ImVec4(*rgba))
                draw_list.add_rect_filled(pos, imgui.ImVec2(pos.x + 14, pos.y + 14), color)
                imgui.dummy(imgui.ImVec2(18, 14))
                imgui.same_line()
                imgui.text(text)
        imgui.separator()
        imgui.text_colored(WARN, "grey, striped")
        imgui.same_line()
        imgui.text_colored(DIM, "stale / no data")
        imgui.text_colored(BAD, "magenta cross-hatch")
        imgui.same_line()
        imgui.text_colored(DIM, "bad value")
        imgui.text_colored(DIM, "dark, cross-hatched: offline")
        imgui.text_colored(BAD, "blinking red")
        imgui.same_line()
        imgui.text_colored(DIM, "alarm")
        imgui.end()


RANGES = (("5 min", 300.0), ("1 h", 3600.0), ("1 day", 86400.0), ("1 week", 7 * 86400.0), ("30 days", 30 * 86400.0))


class HistoryCharts:
    """The inspector's charts: the last minutes from memory, or hours to a month from the history store.

    Long ranges come from the store's rollups (min, max, mean per bucket), never from raw samples; a
    chart is read again at most every REFRESH_S seconds, not every frame. In the past, the range ends
    at the shown instant.
    """

    REFRESH_S = 2.0

    def __init__(self):
        self.range = 0
        self._cache: dict[tuple, tuple[float, Any]] = {}

    def _series(self, store: Any, point_id: int, t0: float, t1: float, key: tuple) -> Any:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.REFRESH_S:
            return hit[1]
        try:
            store.flush()
            series = store.series(point_id, t0, t1, max_points=600)
        except Exception:  # a store being compacted or retired: show nothing this time, try again later
            series = None
        self._cache[key] = (now, series)
        return series

    def draw(self, live: Any, device_index: int) -> None:
        from imgui_bundle import implot

        device = live.site.devices[device_index]
        numeric = [p for p in device.points if p.kind in ("number", "bool")]
        if not numeric or not imgui.collapsing_header("History", imgui.TreeNodeFlags_.default_open):
            return
        recorder = getattr(getattr(live, "live", live), "recorder", None)  # the live twin records, the past reads
        store = recorder.store if recorder is not None else None
        for k, (name, _) in enumerate(RANGES):
            if k and store is None:
                break
            if k:
                imgui.same_line()
            if imgui.radio_button(name, self.range == k):
                self.range = k
        end = live.clock.now() if getattr(live, "mode", "live") == "past" else time.time()
        span = RANGES[self.range][1]
        for point in numeric:
            label = f"{point.label or point.id} ({point.unit})" if point.unit else (point.label or point.id)
            if not implot.begin_plot(f"{label}##{device.id}.{point.id}", imgui.ImVec2(-1, 120)):
                continue
            implot.setup_axes("s before" if self.range == 0 else "h before", "", implot.AxisFlags_.none,
                              implot.AxisFlags_.auto_fit)  # fmt: skip
            scale = 1.0 if self.range == 0 else 3600.0
            implot.setup_axis_limits(implot.ImAxis_.x1, -span / scale, 0, implot.Cond_.always)
            if self.range == 0 or store is None:
                times, values = live.state.history(device.id, point.id)
                if len(times):
                    implot.plot_line(point.id, np.ascontiguousarray(times - end), np.ascontiguousarray(values, np.float64))
            else:
                pid = int(recorder.ids[live.state.row(device.id, point.id)])
                series = self._series(store, pid, end - span, end, (pid, self.range, round(end / self.REFRESH_S)))
                if series is not None and len(series):
                    x = np.ascontiguousarray((series.t - end) / scale)
                    if series.level != "raw":
                        implot.plot_shaded(f"{point.id} min-max", x, np.ascontiguousarray(series.vmin, np.float64),
                                           np.ascontiguousarray(series.vmax, np.float64))  # fmt: skip
                    implot.plot_line(point.id, x, np.ascontiguousarray(series.v, np.float64))
            implot.end_plot()
