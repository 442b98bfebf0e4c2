"""Value labels floating above devices: one MultiText for the whole site.

A label is re-laid out only when its text changes. Which labels show is
re-chosen only when the camera moves: nearest first (the selected device
always), skipping any that would overlap one already placed on screen, up to
a budget, so the cost follows what is on screen rather than the site size.
"""

from __future__ import annotations

from typing import Callable

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
        self.font_size = font_size
        self.object = gfx.MultiText(screen_space=True, font_size=font_size, anchor="bottom-center", material=material)
        self.object.render_order = 10
        material.depth_test = False
        self.blocks = self.object.create_text_blocks(self.budget) if self.budget else []
        self.slot_of: dict[int, int] = {}  # device -> block
        self._last_camera: tuple | None = None
        self.text_of: Callable[[int], str] | None = None  # made on demand (the twin's label of a device)

    def _text(self, device: int) -> str:
        return self.text_of(device) if self.text_of is not None else self.texts.get(device, "")

    def set_text(self, device: int, text: str) -> None:
        """Set a label's text by hand (without a twin)."""
        if self.texts.get(device) == text:
            return
        self.texts[device] = text
        slot = self.slot_of.get(device)
        if slot is not None:
            self.blocks[slot].set_text(text)

    def refresh(self, devices: np.ndarray) -> None:
        """The twin changed these devices: re-make the text of those whose label is on screen."""
        if not self.slot_of or self.text_of is None:
            return
        shown = np.fromiter(self.slot_of, np.int64, len(self.slot_of))
        for device in shown[np.isin(shown, devices)].tolist():
            text = self.text_of(device)
            if self.texts.get(device) != text:
                self.texts[device] = text
                self.blocks[self.slot_of[device]].set_text(text)

    def update_visible(self, camera, size: tuple[int, int], priority: int | None = None, force: bool = False) -> bool:
        """Choose which labels show: nearest first, none overlapping on screen.

        Runs only when the camera moved (or force); True when the choice changed.
        """
        if not self.budget:
            return False
        matrix = np.asarray(camera.camera_matrix, dtype=np.float64)
        key = (matrix.tobytes(), tuple(size), priority)
        if not force and key == self._last_camera:
            return False
        self._last_camera = key
        candidates = self.labelled
        anchors = self.anchors[candidates]
        cam = np.asarray(camera.world.position, dtype=np.float64)
        d2 = np.nansum((anchors - cam) ** 2, axis=1)
        if len(candidates) > 4 * self.budget:  # keep the screen-space pass small on big sites
            keep = np.argpartition(d2, 4 * self.budget - 1)[: 4 * self.budget]
            candidates, anchors, d2 = candidates[keep], anchors[keep], d2[keep]
        clip = np.c_[anchors, np.ones(len(anchors))] @ matrix.T
        w = clip[:, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            ndc = clip[:, :3] / w[:, None]
        on_screen = (w > 0) & (np.abs(ndc[:, 0]) <= 1.05) & (np.abs(ndc[:, 1]) <= 1.05) & np.isfinite(ndc).all(axis=1)
        width, height = size
        sx = (ndc[:, 0] + 1) / 2 * width
        sy = (1 - ndc[:, 1]) / 2 * height
        order = np.argsort(d2)
        if priority is not None:
            order = np.r_[np.flatnonzero(candidates == priority), order[candidates[order] != priority]]
        line = self.font_size * 1.3
        taken: list[tuple[float, float, float, float]] = []
        chosen: list[int] = []
        for k in order:
            if not on_screen[k]:
                continue
            device = int(candidates[k])
            half = (len(self._text(device)) * self.font_size * 0.55 + 6) / 2
            box = (sx[k] - half, sy[k] - line, sx[k] + half, sy[k])
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
                continue
            taken.append(box)
            chosen.append(device)
            if len(chosen) >= self.budget:
                break
        before = set(self.slot_of)
        self._assign(np.asarray(chosen, dtype=np.int64))
        return set(self.slot_of) != before

    def _assign(self, devices: np.ndarray) -> None:
        self.slot_of = {}
        for slot, device in enumerate(devices[: self.budget]):
            device = int(device)
            self.slot_of[device] = slot
            block = self.blocks[slot]
            x, y, z = self.anchors[device]
            if np.isfinite(x):
                block.set_position(x, y, z)
            text = self._text(device)
            self.texts[device] = text
            block.set_text(text)
        for slot in range(len(devices), len(self.blocks)):
            self.blocks[slot].set_text("")
