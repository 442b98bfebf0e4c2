"""Area badges: when the camera is zoomed out, each area shows how many of its alarms are active.

One screen-space MultiText with a block per area, placed above the middle of
the area's devices. The counts come from the alarm engine (set_counts); which
badges show depends only on the camera's distance (update), so a frame costs a
comparison unless the camera moved.
"""

from __future__ import annotations

import numpy as np
import pygfx as gfx


class AreaBadges:
    """'Pump hall: 3 alarms' over each area with active alarms, shown while zoomed out."""

    def __init__(self, device_bounds: np.ndarray, areas: list[str], site_bounds: np.ndarray, font_size: float = 16):
        self.names = sorted({a for a in areas if a})
        lo, hi = site_bounds
        finite = np.isfinite(device_bounds).all(axis=(1, 2))
        if finite.any():  # the equipment's extent, not the scenery's (grounds and trees go far beyond it)
            lo, hi = device_bounds[finite, 0].min(axis=0), device_bounds[finite, 1].max(axis=0)
        self.center = (lo + hi) / 2
        self.radius = max(float(np.linalg.norm(hi - lo)) / 2, 1.0)
        anchors = []
        for name in self.names:
            idx = [i for i, a in enumerate(areas) if a == name]
            b = device_bounds[idx]
            ok = np.isfinite(b).all(axis=(1, 2))
            if not ok.any():
                anchors.append((np.nan, np.nan, np.nan))
                continue
            blo, bhi = b[ok, 0].min(axis=0), b[ok, 1].max(axis=0)
            anchors.append(((blo[0] + bhi[0]) / 2, bhi[1] + 0.12 * self.radius, (blo[2] + bhi[2]) / 2))
        self.anchors = np.asarray(anchors, np.float64).reshape(-1, 3)
        material = gfx.TextMaterial(color="#ffffff", outline_color="#b00020", outline_thickness=0.45)
        material.depth_test = False
        self.object = gfx.MultiText(screen_space=True, font_size=font_size, anchor="bottom-center", material=material)
        self.object.render_order = 11
        self.blocks = self.object.create_text_blocks(len(self.names)) if self.names else []
        for block, (x, y, z) in zip(self.blocks, self.anchors):
            if np.isfinite(x):
                block.set_position(x, y, z)
        self.counts: dict[str, int] = {}
        self.texts = ["" for _ in self.names]
        self.zoomed_out = True
        self.object.visible = True

    def set_counts(self, counts: dict[str, int]) -> None:
        """Active (shown) alarms per area; areas without any show no badge."""
        self.counts = dict(counts)
        for k, name in enumerate(self.names):
            n = self.counts.get(name, 0)
            text = f"{name}: {n} alarm{'s' if n != 1 else ''}" if n else ""
            if text != self.texts[k]:
                self.texts[k] = text
                self.blocks[k].set_text(text)

    def update(self, camera) -> bool:
        """Show the badges while the camera is farther from the equipment than its extent; True when that changed."""
        distance = float(np.linalg.norm(np.asarray(camera.world.position, np.float64) - self.center))
        zoomed_out = distance > 1.2 * self.radius
        if zoomed_out == self.zoomed_out:
            return False
        self.zoomed_out = zoomed_out
        self.object.visible = zoomed_out
        return True

    def shown(self) -> dict[str, str]:
        """Area -> badge text, of the badges on screen now (tests, the status line)."""
        if not self.zoomed_out:
            return {}
        return {name: text for name, text in zip(self.names, self.texts) if text}
