"""Value labels floating above devices: one MultiText for the whole site.

A label is re-laid out only when its text changes. Which labels show is
re-chosen when the camera moves or a device's condition changes: the selected
device always, then the worst condition first (offline, bad, alarm, stale),
then the nearest, skipping any that would overlap one already placed on
screen, up to a budget. Labels that yield are never dropped silently: a count
("N labels hidden") sits in the picture's corner, drawn by the scene so every
view that renders it shows it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pygfx as gfx

from twinview.twin.vocabulary import DeviceFlag

DEFAULT_BUDGET = 300
# What a label says about its device, worst first: these labels are the last to yield.
RANKS = ((DeviceFlag.OFFLINE, 4, "offline"), (DeviceFlag.BAD, 3, "bad"), (DeviceFlag.ALARM, 2, "in alarm"),
         (DeviceFlag.STALE, 1, "stale"))  # fmt: skip
RANK_NAMES = {rank: name for _, rank, name in RANKS}
COUNTER_MARGIN = 8  # pixels from the picture's corner


def label_rank(flags: np.ndarray) -> np.ndarray:
    """Priority of each device's label from its twin flags: 4 offline, 3 bad, 2 alarm, 1 stale, 0 fine."""
    flags = np.asarray(flags, np.int64)
    rank = np.zeros(flags.shape, np.int8)
    for flag, value, _ in reversed(RANKS):  # the worst flag set wins
        rank[(flags & int(flag)) != 0] = value
    return rank


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
        # Condition of each device's label (label_rank), kept up to date by refresh() from the twin's flags.
        self.flags_of: Callable[[np.ndarray], np.ndarray] | None = None
        self.rank = np.zeros(len(device_bounds), np.int8)
        self._is_labelled = np.zeros(len(device_bounds), bool)
        self._is_labelled[self.labelled] = True
        self._dirty = False
        # "N labels hidden": how many labels on screen had to yield, by the worst condition among them.
        self.hidden = 0
        self.hidden_by_rank: dict[int, int] = {}
        self.counter_text = ""
        counter_material = gfx.TextMaterial(color="#1b1f24", outline_color="#f4f6f8", outline_thickness=0.3)
        counter_material.depth_test = False
        self.counter = gfx.Text(text="", screen_space=True, font_size=font_size, anchor="bottom-right", material=counter_material)
        self.counter.render_order = 11  # the view adds it to its scene
        self.counter_corner = "bottom-right"
        self.counter_inset = (float(COUNTER_MARGIN), float(COUNTER_MARGIN))

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

    def place_counter(self, corner: str, inset: tuple[float, float]) -> None:
        """Where "N labels hidden" is drawn: a corner of the picture ("top-left", "bottom-right", ...)
        and the distance from it in pixels (x, y), e.g. to keep clear of a window's panels."""
        vertical, _, horizontal = corner.partition("-")
        if vertical not in ("top", "bottom") or horizontal not in ("left", "right"):
            raise ValueError(f"corner must be top-left, top-right, bottom-left or bottom-right, not {corner!r}")
        self.counter_corner = corner
        self.counter_inset = (float(inset[0]), float(inset[1]))
        self.counter.anchor = corner
        self._dirty = True

    def set_rank(self, devices, ranks) -> None:
        """Set labels' priorities by hand (without a twin): see label_rank."""
        devices = np.asarray(devices, np.int64)
        self.rank[devices] = ranks
        self._dirty = True

    def refresh(self, devices: np.ndarray) -> None:
        """The twin changed these devices: re-rank their labels and re-make the text of those on screen."""
        devices = np.asarray(devices, np.int64)
        if self.flags_of is not None and devices.size:
            mine = devices[self._is_labelled[devices]]
            if mine.size:
                rank = label_rank(self.flags_of(mine))
                if (rank != self.rank[mine]).any():
                    self.rank[mine] = rank
                    self._dirty = True  # which labels show must be chosen again
        if not self.slot_of or self.text_of is None:
            return
        shown = np.fromiter(self.slot_of, np.int64, len(self.slot_of))
        for device in shown[np.isin(shown, devices)].tolist():
            text = self.text_of(device)
            if self.texts.get(device) != text:
                if len(text) != len(self.texts.get(device, "")):
                    self._dirty = True  # a longer label may overlap another now
                self.texts[device] = text
                self.blocks[self.slot_of[device]].set_text(text)

    def update_visible(self, camera, size: tuple[int, int], priority: int | None = None, force: bool = False) -> bool:
        """Choose which labels show: the selected device, then the worst condition, then the nearest;
        none overlapping on screen. Runs when the camera moved, a label's condition changed (or force);
        True when the choice changed.
        """
        if not self.budget:
            return False
        matrix = np.asarray(camera.camera_matrix, dtype=np.float64)
        key = (matrix.tobytes(), tuple(size), priority)
        if not force and not self._dirty and key == self._last_camera:
            return False
        self._last_camera = key
        self._dirty = False
        # One vectorised pass over the labelled devices to find those on screen; the Python loop
        # below only sees the best few times the budget of them.
        candidates = self.labelled
        anchors = self.anchors[candidates]
        clip = np.c_[anchors, np.ones(len(anchors))] @ matrix.T
        w = clip[:, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            ndc = clip[:, :3] / w[:, None]
        on_screen = (w > 0) & (np.abs(ndc[:, 0]) <= 1.05) & (np.abs(ndc[:, 1]) <= 1.05) & np.isfinite(ndc).all(axis=1)
        candidates, anchors, ndc = candidates[on_screen], anchors[on_screen], ndc[on_screen]
        cam = np.asarray(camera.world.position, dtype=np.float64)
        d2 = ((anchors - cam) ** 2).sum(axis=1)
        rank = self.rank[candidates].astype(np.float64)
        score = d2 / (d2.max() + 1.0) - rank if len(d2) else d2  # worst condition first, then nearest
        if priority is not None:
            score = np.where(candidates == priority, -np.inf, score)
        keep = 4 * self.budget
        if len(candidates) > keep:  # keep the screen-space pass small on big sites
            part = np.argpartition(score, keep - 1)[:keep]
            order = part[np.argsort(score[part], kind="stable")]
        else:
            order = np.argsort(score, kind="stable")
        width, height = size
        sx = (ndc[:, 0] + 1) / 2 * width
        sy = (1 - ndc[:, 1]) / 2 * height
        line = self.font_size * 1.3
        cell = 4 * line  # placed boxes are bucketed by screen cell: each test looks at its neighbours only
        grid: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
        chosen: list[int] = []
        for k in order.tolist():
            if len(chosen) >= self.budget:
                break
            device = int(candidates[k])
            half = (len(self._text(device)) * self.font_size * 0.55 + 6) / 2
            box = (sx[k] - half, sy[k] - line, sx[k] + half, sy[k])
            cells = [(cx, cy) for cx in range(int(box[0] // cell), int(box[2] // cell) + 1)
                     for cy in range(int(box[1] // cell), int(box[3] // cell) + 1)]  # fmt: skip
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                   for c in cells for b in grid.get(c, ())):  # fmt: skip
                continue
            for c in cells:
                grid.setdefault(c, []).append(box)
            chosen.append(device)
        before = set(self.slot_of)
        chosen_arr = np.asarray(chosen, dtype=np.int64)
        self._assign(chosen_arr)
        # Labels on screen that yielded, by condition: all on screen minus those shown.
        by_rank = np.bincount(self.rank[candidates], minlength=5) - np.bincount(self.rank[chosen_arr], minlength=5)
        self._show_counter(by_rank, matrix, size)
        return set(self.slot_of) != before

    def _show_counter(self, by_rank: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> None:
        """Say how many labels on screen yielded (and how many of those say something is wrong)."""
        self.hidden = int(by_rank.sum())
        self.hidden_by_rank = {r: int(by_rank[r]) for r in range(2, len(by_rank)) if by_rank[r]}
        if not self.hidden:
            self.counter_text = ""
            self.counter.set_text("")
            return
        text = f"{self.hidden} label{'s' if self.hidden != 1 else ''} hidden"
        worse = [f"{self.hidden_by_rank[r]} {RANK_NAMES[r]}" for r in sorted(self.hidden_by_rank, reverse=True)]
        if worse:
            text += " (" + ", ".join(worse) + ")"
        self.counter_text = text
        self.counter.set_text(text)
        # A point in front of the camera that projects onto the chosen corner of the picture.
        width, height = size
        vertical, _, horizontal = self.counter_corner.partition("-")
        dx, dy = 2 * self.counter_inset[0] / width, 2 * self.counter_inset[1] / height
        x = -1 + dx if horizontal == "left" else 1 - dx
        y = 1 - dy if vertical == "top" else -1 + dy
        corner = np.array([x, y, 0.5, 1.0])
        world = np.linalg.inv(matrix) @ corner
        if world[3] != 0 and np.isfinite(world).all():
            self.counter.local.position = tuple(world[:3] / world[3])

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
