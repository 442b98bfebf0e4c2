"""The timeline under the scene: scrub to any recorded moment, play it back, jump back to live.

The live runtime keeps running (and recording) while the past is shown: the
timeline binds the scene and the panels to a PastTwin instead, and back. While
the view is not live it says so unmistakably: a banner with the shown time,
an amber frame, and commands disabled (the past runtime has no transport).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from imgui_bundle import imgui

from twinview.scene.binding import SceneBinding
from twinview.twin.memory import PastTwin

from .panels import DIM

SPEEDS = (1, 10, 60)
PAST_FRAME = imgui.ImVec4(0.95, 0.62, 0.10, 1.0)


class Shown:
    """The runtime the panels read: the live one, or the past one while the timeline is not live."""

    def __init__(self, live: Any):
        self.live = live
        self.current = live

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("live", "current"):
            object.__setattr__(self, name, value)
        else:  # who is signed in, and the like, belong to the live twin
            setattr(self.live, name, value)


class Timeline:
    """A slider over the recorded span, play/pause at 1x-60x, and a Live button."""

    def __init__(self, view: Any, live: Any, shown: Shown, request_draw: Callable[[], None]):
        self.view = view
        self.live = live
        self.shown = shown
        self.request_draw = request_draw
        self.binding = SceneBinding(live, view)
        self.past: PastTwin | None = None
        self.playing = False
        self.speed = SPEEDS[1]
        self._last_frame = time.monotonic()
        self._reader: Any = None

    @property
    def is_live(self) -> bool:
        return self.past is None

    def _store(self) -> Any:
        recorder = getattr(self.live, "recorder", None)
        return recorder.store if recorder is not None else None

    def _span(self) -> tuple[float, float] | None:
        store = self._store()
        if store is None:
            return None
        twin = self.past or PastTwin(self.live.site, store)
        span = twin.span()
        if span is None:
            return None
        return span[0], max(span[1], time.time())

    def go_to(self, at: float) -> None:
        """Show the twin as it was at `at` (the live runtime goes on, unseen, and keeps recording)."""
        store = self._store()
        if store is None:
            return
        store.flush()
        if self.past is None:
            self.past = PastTwin(self.live.site, store)
            self.binding.close()
            self.binding = SceneBinding(self.past.runtime, self.view)
            self.shown.current = self.past.runtime
        self.past.seek(at)
        self.view.set_mode("past")
        self.request_draw()

    def jump(self, at: float, forward: bool) -> float | None:
        """Go to the previous or next event (a point turning stale, bad or offline); None if there is none."""
        store = self._store()
        if store is None:
            return None
        store.flush()
        finder = self.past or PastTwin(self.live.site, store)
        when = finder.event_near(at, forward)
        if when is not None:
            self.playing = False
            self.go_to(when)
        return when

    def go_live(self) -> None:
        if self.past is None:
            return
        self.binding.close()
        self.binding = SceneBinding(self.live, self.view)
        self.shown.current = self.live
        self.past = None
        self.playing = False
        self.view.set_mode("live")
        self.request_draw()

    def before_frame(self) -> bool:
        """Advance playback; True while frames must keep coming."""
        now = time.monotonic()
        dt, self._last_frame = now - self._last_frame, now
        if self.past is None or not self.playing:
            return False
        self.past.advance(min(dt, 0.5) * self.speed)
        if self.past.at >= time.time():
            self.go_live()  # played up to the present
            return False
        return True

    def draw(self, x: float, y: float, width: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.always)
        imgui.set_next_window_size(imgui.ImVec2(width, 62), imgui.Cond_.always)
        flags = imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
        imgui.begin("timeline", None, flags)
        span = self._span()
        if span is None:
            imgui.text_colored(DIM, "History is off for this view (started with --no-record, or the store is "
                                    "recorded by another process): the timeline needs a recording.")
            imgui.end()
            return
        first, last = span
        cursor = self.past.at if self.past is not None else last
        if self.past is None:
            imgui.text_colored(imgui.ImVec4(0.2, 0.75, 0.3, 1.0), "LIVE")
        else:
            imgui.text_colored(PAST_FRAME, "PAST")
        imgui.same_line()
        imgui.set_next_item_width(width - 560)
        changed, value = imgui.slider_float("##time", float(cursor - last), float(first - last), 0.0,
                                            _ago(cursor - last))  # fmt: skip
        if changed:
            self.go_to(last + value)
        imgui.same_line()
        if imgui.button("< event"):
            self.jump(cursor, forward=False)
        imgui.same_line()
        if imgui.button("event >") and self.past is not None:
            self.jump(cursor, forward=True)
        imgui.same_line()
        if imgui.button("Pause" if self.playing else "Play") and self.past is not None:
            self.playing = not self.playing
            self._last_frame = time.monotonic()
        imgui.same_line()
        for speed in SPEEDS:
            if imgui.radio_button(f"{speed}x", self.speed == speed):
                self.speed = speed
            imgui.same_line()
        if imgui.button("Live"):
            self.go_live()
        imgui.text_colored(DIM, f"recorded from {_clock(first)}  ·  drag to go back; < event > jumps to a point "
                                "turning stale, bad or offline; Play replays at the chosen speed")
        imgui.end()

    def draw_banner(self, width: float) -> None:
        """While not live: the shown time, in a bar nobody can miss."""
        if self.past is None:
            return
        imgui.set_next_window_pos(imgui.ImVec2(width / 2 - 330, 44), imgui.Cond_.always)
        imgui.set_next_window_size(imgui.ImVec2(660, 34), imgui.Cond_.always)
        imgui.push_style_color(imgui.Col_.window_bg, PAST_FRAME)
        flags = imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings
        imgui.begin("past banner", None, flags)
        imgui.text_colored(imgui.ImVec4(0.1, 0.06, 0.0, 1.0),
                           f"PAST: the plant as it was at {_clock(self.past.at)}  ·  commands are disabled")
        imgui.end()
        imgui.pop_style_color()


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _ago(seconds: float) -> str:
    s = -seconds
    if s < 1:
        return "now"
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.1f} min ago"
    return f"{s / 3600:.1f} h ago"


