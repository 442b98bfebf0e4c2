"""Value labels floating above devices: one MultiText for the whole site.

A label is re-laid out only when its text changes. Large sites get a label
budget: the labels nearest the camera are shown, re-chosen when the camera
has moved, so the cost follows what is on screen rather than the site size.
"""

from __future__ import annotations

import numpy as np
import pygfx as gfx

DEFAULT_BUDGET = 300


class LabelLayer:
    """Screen-space text above each labelled device (devices with a label overlay)."""

    def __init__(self, device_bounds: np.ndarray, labelled: list[int], budget: int = DEFAULT_BUDGET, font_size: float = 13):
        self.labelled = np.asarray(labelled, dtype=np.int64)
        lo, hi = device_bounds[:, 0], device_bounds[:, 1]
        anchor = np.c_[(lo[:, 0] + hi[:, 0]) / 2, hi[:, 1], (lo[:, 2] + hi[:, 2]) / 2]
        lift = np.maximum(0.15, 0.08 * np.linalg.norm(hi - lo, axis=1))
        anchor[:, 1] += lift
        self.anchors = anchor  # (N, 3), NaN for devices without geometry
        self.budget = max(1, min(budget, len(self.labelled))) if len(self.labelled) else 0
        self.texts: dict[int, str] = {}
        material = gfx.TextMaterial(color="#f4f6f8", outline_color="#1b1f24", outline_thickness=0.25)
        self.object = gfx.MultiText(screen_space=True, font_size=font_size, anchor="bottom-center", material=material)
        self.object.render_order = 10
        material.depth_test = False
        self.blocks = self.object.create_text_blocks(self.budget) if self.budget else []
        self.slot_of: dict[int, int] = {}  # device -> block
        self._last_camera: np.ndarray | None = None
        if self.budget and len(self.labelled) <= self.budget:
            self._assign(self.labelled)

    def set_text(self, device: int, text: str) -> None:
        if self.texts.get(device) == text:
            return
        self.texts[device] = text
        slot = self.slot_of.get(device)
        if slot is not None:
            self.blocks[slot].set_text(text)

    def update_visible(self, camera_position, force: bool = False) -> bool:
        """Re-choose the nearest labels when the camera moved; True when the set changed."""
        if not self.budget or len(self.labelled) <= self.budget:
            return False
        cam = np.asarray(camera_position, dtype=np.float64)
        if not force and self._last_camera is not None and np.linalg.norm(cam - self._last_camera) < 0.5:
            return False
        self._last_camera = cam
        anchors = self.anchors[self.labelled]
        d2 = np.nansum((anchors - cam) ** 2, axis=1)
        nearest = self.labelled[np.argpartition(d2, self.budget - 1)[: self.budget]]
        self._assign(nearest)
        return True

    def _assign(self, devices: np.ndarray) -> None:
        self.slot_of = {}
        for slot, device in enumerate(devices[: self.budget]):
            device = int(device)
            self.slot_of[device] = slot
            block = self.blocks[slot]
            x, y, z = self.anchors[device]
            if np.isfinite(x):
                block.set_position(x, y, z)
            block.set_text(self.texts.get(device, ""))
        for slot in range(len(devices), len(self.blocks)):
            self.blocks[slot].set_text("")
