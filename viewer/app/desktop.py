"""The desktop app: a rendercanvas window with the site, an orbit camera and ImGui panels.

Draws on demand: a frame is requested when input, data or the selection
changes, and continuously only while something spins.
"""

from __future__ import annotations

import time
from typing import Any

import pygfx as gfx
from imgui_bundle import imgui

from twinview.scene.renderer import make_renderer
from twinview.scene.view import SiteView

from .alarm_panel import AlarmPanel, draw_device_alarms
from .command_panel import CommandPanel
from .live_panels import HistoryCharts, LegendPanel, StatusPanel
from .panels import DIM, DeviceTree, Inspector
from .timeline import Shown, Timeline


class DesktopApp:
    """Window, renderer, camera controller, picking and panels around one SiteView."""

    def __init__(self, view: SiteView, canvas: Any, live: Any = None, title: str = "twinview"):
        from wgpu.utils.imgui import ImguiRenderer

        self.view = view
        self.runtime = live  # the live twinview.twin.runtime.Runtime (stepped here every frame), or None
        self.shown = Shown(live) if live is not None else None
        self.live = self.shown  # what the panels read: the live runtime, or the past while the timeline says so
        self.canvas = canvas
        self.renderer = make_renderer(canvas, "auto")
        w, h = canvas.get_logical_size()
        view.camera.aspect = w / max(h, 1)
        self.controller = gfx.OrbitController(view.camera, register_events=self.renderer)
        self.gui = ImguiRenderer(self.renderer.device, canvas)
        self._init_implot()
        self.gui.set_gui(self._draw_gui)

        site = view.site
        self.tree = DeviceTree(site, self.select_and_focus)
        shown = self.shown  # every panel reads what the scene shows: live, or the past on the timeline
        reader = (lambda device, point: shown.point_state(device, point)) if live is not None else None
        self.inspector = Inspector(site, reader, self._inspector_extra if live is not None else None)
        self.status = StatusPanel(live) if live is not None else None  # connections are always the live ones
        self.command_panel = CommandPanel(shown) if live is not None else None
        self.legend = LegendPanel(shown) if live is not None else None
        self.charts = HistoryCharts()
        # alarms are the live runtime's: acknowledging and shelving act now, whatever time the scene shows
        self.alarm_panel = AlarmPanel(live, self.select_and_focus, self._sign_in) if live is not None else None
        self.frame_times: list[float] = []
        self._down_at: tuple[float, float] | None = None

        self.renderer.add_event_handler(self._on_pointer_move, "pointer_move")
        self.renderer.add_event_handler(self._on_pointer_down, "pointer_down")
        self.renderer.add_event_handler(self._on_pointer_up, "pointer_up")
        self.renderer.add_event_handler(self._on_key, "key_down")
        self.renderer.add_event_handler(lambda e: self.request_draw(), "wheel", "resize")
        self.timeline = Timeline(view, live, self.shown, self.request_draw) if live is not None else None
        if view.labels is not None:  # "N labels hidden" where no panel covers it: right of the tree, below the banner
            view.labels.place_counter("top-left", (306, 84))
        if live is not None:
            live.wake = self.request_draw
        canvas.request_draw(self._frame)

    @staticmethod
    def _init_implot() -> None:
        try:
            from imgui_bundle import implot

            implot.create_context()
        except Exception:  # charts are optional; panels fall back to text
            pass

    # --- selection ------------------------------------------------------------------

    def select(self, index: int | None) -> None:
        self.view.select(index)
        self.tree.state.scroll_to_selected = index is not None
        self.request_draw()

    def select_and_focus(self, index: int) -> None:
        self.select(index)
        self.view.focus(index)

    def handle_click(self, x: float, y: float) -> int | None:
        """Select the device under (x, y), or clear the selection on empty space."""
        index = self.pick(x, y)
        self.select(index)
        return index

    def pick(self, x: float, y: float) -> int | None:
        info = self.renderer.get_pick_info((x, y))
        return self.view.device_at(info)

    # --- events ---------------------------------------------------------------------

    def _on_pointer_move(self, event) -> None:
        if event.buttons:  # orbiting; hover picking would only flicker
            self.request_draw()
            return
        index = self.pick(event.x, event.y)
        if index != self.view.hovered:
            self.view.hover(index)
            self.request_draw()

    def _on_pointer_down(self, event) -> None:
        self._down_at = (event.x, event.y)

    def _on_pointer_up(self, event) -> None:
        if self._down_at is None or event.button != 1:
            return
        dx, dy = event.x - self._down_at[0], event.y - self._down_at[1]
        self._down_at = None
        if dx * dx + dy * dy <= 16:  # a click, not the end of a drag
            self.handle_click(event.x, event.y)

    def _on_key(self, event) -> None:
        key = event.key
        if key == "Escape":
            self.select(None)
        elif key in ("f", "F"):
            if self.view.selected is not None:
                self.view.focus(self.view.selected)
            else:
                self.view.fit()
        elif key == "Home":
            self.view.fit()
        self.request_draw()

    def request_draw(self) -> None:
        self.canvas.request_draw()

    # --- frame ----------------------------------------------------------------------

    def _frame(self) -> None:
        t0 = time.perf_counter()
        playing = False
        if self.runtime is not None:
            self.runtime.step()
            playing = self.timeline.before_frame()
        self.view.advance_clock()
        self.view.before_render(tuple(int(v) for v in self.canvas.get_logical_size()))
        self.renderer.render(self.view.scene, self.view.camera)
        self.gui.render()  # drawn over the flushed scene (load op "load")
        self.frame_times = (self.frame_times + [time.perf_counter() - t0])[-60:]
        if self.view.animating or playing or (self.runtime is not None and self.runtime.needs_steps):
            self.canvas.request_draw()

    def _draw_gui(self) -> None:
        w, h = self.canvas.get_logical_size()
        self._toolbar()
        top = 44
        self.tree.draw(self.view.selected, 8, top, h - top - 8)
        self.inspector.draw(self.view.selected, w - 368, top, h - top - 8)
        if self.status is not None:
            self.status.draw(306, h - 240)
        if self.legend is not None:
            self.legend.draw(self.view.selected, w - 626, top)
        if self.command_panel is not None:
            self.command_panel.draw_windows(w - 896, h - 158)
        if self.timeline is not None:
            self.timeline.draw(306, h - 70, w - 306 - 376)
            self.timeline.draw_banner(w)
        if self.alarm_panel is not None:
            self.alarm_panel.draw(306, h - 430, min(1000.0, w - 700.0), 270)
        if self.view.hovered is not None and not imgui.get_io().want_capture_mouse:
            device = self.view.site.devices[self.view.hovered]
            state = self.live.device_summary(self.view.hovered) if self.live is not None else ""
            imgui.set_tooltip(f"{device.name}\n{device.id}" + (f"\n{state}" if state else ""))

    def _sign_in(self) -> None:
        if self.command_panel is not None:
            self.command_panel._login_open = True

    def _inspector_extra(self, index: int) -> None:
        draw_device_alarms(self.live, index)
        self.command_panel.draw_device(index)
        self.charts.draw(self.live, index)

    def _toolbar(self) -> None:
        w, _ = self.canvas.get_logical_size()
        imgui.set_next_window_pos(imgui.ImVec2(8, 6), imgui.Cond_.always)
        imgui.set_next_window_size(imgui.ImVec2(w - 16, 32), imgui.Cond_.always)
        flags = imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
        imgui.begin("toolbar", None, flags)
        imgui.text(self.view.site.name)
        imgui.same_line()
        if imgui.small_button("Fit to site"):
            self.view.fit()
        imgui.same_line()
        if imgui.small_button("Focus selected") and self.view.selected is not None:
            self.view.focus(self.view.selected)
        imgui.same_line()
        ms = 1000 * sum(self.frame_times) / max(len(self.frame_times), 1)
        imgui.text_colored(DIM, f"{len(self.view.device_ids)} devices  ·  {ms:.1f} ms/frame  ·  F focus, Esc clear, Home fit")
        imgui.end()


def has_display() -> bool:
    """True when a window can be opened: a display is named and glfw can actually open it."""
    import os
    import sys
    import warnings

    if sys.platform in ("darwin", "win32"):
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        import glfw

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(glfw.init())  # idempotent; rendercanvas initialises glfw again
    except Exception:
        return False


def run_desktop(view: SiteView, live: Any = None, size: tuple[int, int] = (1440, 900)) -> None:
    from rendercanvas.glfw import RenderCanvas, loop

    canvas = RenderCanvas(title=f"twinview · {view.site.name}", size=size, update_mode="ondemand", max_fps=60)
    app = DesktopApp(view, canvas, live)
    app.request_draw()
    loop.run()
