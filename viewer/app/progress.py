"""A one-line progress indicator on stderr for loading large sites."""

from __future__ import annotations

import sys
import time


class ConsoleProgress:
    """Callable(stage, fraction) that redraws one status line, at most ~10 times a second."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False
        self._t0 = time.monotonic()
        self._interactive = getattr(self.stream, "isatty", lambda: False)()

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < 0.1:
            return
        self._last = now
        if not self._interactive:
            # Logs and CI: only report slow loads, once per stage completion.
            if fraction >= 1.0 and now - self._t0 > 2.0:
                print(f"{self.label}: {stage} done ({now - self._t0:.1f} s)", file=self.stream)
            return
        width = 24
        filled = int(width * max(0.0, min(1.0, fraction)))
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r{self.label}: {stage:<10} [{bar}] {fraction * 100:5.1f}%", end="", file=self.stream, flush=True)
        self._shown = True

    def done(self) -> None:
        if self._shown:
            print(f"\r{self.label}: loaded in {time.monotonic() - self._t0:.1f} s" + " " * 30, file=self.stream)
