"""Render a SiteView without a window: screenshots, tests, reports and benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .renderer import make_renderer


class OffscreenView:
    """An offscreen canvas and renderer bound to one SiteView."""

    def __init__(self, view, size: tuple[int, int] = (960, 540), quality: str = "fast"):
        from rendercanvas.offscreen import RenderCanvas

        self.view = view
        self.size = (int(size[0]), int(size[1]))
        self.canvas = RenderCanvas(size=self.size, pixel_ratio=1)
        self.renderer = make_renderer(self.canvas, quality)
        view.camera.aspect = self.size[0] / self.size[1]
        self.prep_seconds = 0.0  # Python time of the last frame before GPU submission

    def render(self) -> np.ndarray:
        """Draw one frame and return it as an (h, w, 4) uint8 array."""
        def draw():
            t0 = time.perf_counter()
            self.view.before_render(self.size)
            self.renderer.render(self.view.scene, self.view.camera, flush=False)
            self.prep_seconds = time.perf_counter() - t0
            self.renderer.flush()

        self.canvas.request_draw(draw)
        return np.asarray(self.canvas.draw())

    def pick(self, x: float, y: float) -> int | None:
        """Device index under pixel (x, y), or None for scenery and background.

        Needs a frame drawn since the last change (render() first).
        """
        info = self.renderer.get_pick_info((x, y))
        return self.view.device_at(info)

    def save(self, path: str | Path) -> Path:
        from PIL import Image

        image = self.render()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[:, :, :3]).save(path)
        return path
