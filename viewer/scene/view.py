"""SiteView: the 3D scene of one site, its camera, and the visual state of its devices.

The view owns GPU-side state only. It is told what changed (a device's look,
a motion target, the selection) and writes exactly those entries; it never
reads telemetry itself and never talks to a broker.
"""

from __future__ import annotations

import time

import numpy as np
import pygfx as gfx

from twinview.site import LoadedSite

from .alarm_badges import AreaBadges
from .labels import LabelLayer
from .site_geometry import MOTION_KINDS, SiteGeometry, build_site_geometry
from .site_object import (
    FLAG_HOVERED,
    FLAG_SELECTED,
    VIEW_FLAGS,
    DeviceStates,
    PartTable,
    SiteMaterial,
    SiteMesh,
    VertexBuffers,
)

BACKGROUND_TOP = "#dfe6ee"
BACKGROUND_BOTTOM = "#9aa7b6"
# Not the present: the sky says so too (amber for the past, violet for a what-if simulation).
MODE_BACKGROUNDS = {"live": (BACKGROUND_TOP, BACKGROUND_BOTTOM), "past": ("#f3e2c4", "#c29a5a"),
                    "simulation": ("#e6dcf3", "#9b86bf")}


def frame_site(camera: gfx.PerspectiveCamera, bounds: np.ndarray, site=None, margin: float = 0.9) -> None:
    """Place a camera to show `bounds`: the site's manifest camera if given, else an elevated 3/4 view
    from just far enough that every corner of the bounds is inside the picture (with a margin)."""
    lo, hi = np.asarray(bounds, np.float64)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo)) / 2 or 1.0
    if site is not None and site.camera_position and site.camera_target:
        far = float(np.linalg.norm(np.asarray(site.camera_position) - center)) + radius
        camera.depth_range = (radius / 200, max(radius * 20, far * 1.5))
        camera.local.position = site.camera_position
        camera.show_pos(site.camera_target)
        return
    direction = np.array([0.9, 0.75, 1.1])
    direction /= np.linalg.norm(direction)
    right = np.cross(-direction, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, -direction)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]) - center
    toward = corners @ direction  # how far each corner stands out toward the camera
    # pygfx's fov spans the mean of the view's width and height, not its height.
    aspect = max(float(camera.aspect), 1e-3)
    tan_v = np.tan(np.radians(camera.fov) / 2) * 2 / (1 + aspect) * margin
    tan_h = tan_v * aspect
    # A corner fits when its offset across the view is within the frustum at its own depth (distance - toward).
    distance = float(max((toward + np.abs(corners @ up) / tan_v).max(), (toward + np.abs(corners @ right) / tan_h).max()))
    distance = max(distance, float(toward.max()) + radius * 0.1, radius * 0.5)
    camera.depth_range = (radius / 200, max(radius * 20, (distance + radius) * 1.5))
    camera.local.position = tuple(center + direction * distance)
    camera.show_pos(tuple(center))


class SiteView:
    """Scene graph, camera and per-device visual state for one loaded site."""

    def __init__(self, loaded: LoadedSite, geometry: SiteGeometry | None = None):
        self.loaded = loaded
        self.site = loaded.site
        self.geometry = geometry or build_site_geometry(loaded)
        self.device_ids = [d.id for d in self.site.devices]
        self._index = {d: i for i, d in enumerate(self.device_ids)}

        self.scene = gfx.Scene()
        self.background = gfx.Background.from_color(BACKGROUND_TOP, BACKGROUND_TOP, BACKGROUND_BOTTOM, BACKGROUND_BOTTOM)
        self.scene.add(self.background)
        self.mode = "live"
        self.devices = DeviceStates(len(self.device_ids))
        self.parts = PartTable(self.geometry.part_info)
        self.material = SiteMaterial()
        static, moving = self.geometry.split()
        self.meshes = [SiteMesh(VertexBuffers(static), static.indices, self.devices, self.material)]
        if moving is not None:
            self.meshes.append(SiteMesh(VertexBuffers(moving), moving.indices, self.devices, self.material, self.parts))
        self.scene.add(*self.meshes)
        labelled = [i for i, d in enumerate(self.site.devices) if d.label is not None]
        self.labels = LabelLayer(self.geometry.device_bounds, labelled) if labelled else None
        if self.labels is not None:
            self.scene.add(self.labels.object, self.labels.counter)
        self.badges = AreaBadges(self.geometry.device_bounds, [d.area for d in self.site.devices], self.geometry.bounds)
        self.scene.add(self.badges.object)
        self.camera = gfx.PerspectiveCamera(45, 16 / 9)
        self.camera.world.reference_up = (0, 1, 0)
        self.fit()

        self.selected: int | None = None
        self.hovered: int | None = None
        self._clock0 = time.monotonic()
        # Moving parts as columns: part row, motion kind, and a rotation's rate, phase and start time.
        self.motions = self.geometry.motion_parts
        self._part = np.asarray([part for part, _, _ in self.motions], np.int64)
        self._kind = np.asarray([MOTION_KINDS[m.kind] for _, _, m in self.motions], np.int64)
        self._rate = np.zeros(len(self.motions))
        self._phase = np.zeros(len(self.motions))
        self._t0 = np.zeros(len(self.motions))
        self._slot_of_entry = np.empty(0, np.int64)

    # --- lookup -----------------------------------------------------------------

    def device_at(self, pick_info: dict) -> int | None:
        """The device a pick hit, or None for scenery, labels and background."""
        index = pick_info.get("device_index")
        if pick_info.get("world_object") not in self.meshes or index is None or index < 0:
            return None
        return index

    def index_of(self, device_id: str) -> int | None:
        return self._index.get(device_id)

    # --- camera -----------------------------------------------------------------

    def fit(self, use_manifest_camera: bool = True) -> None:
        """Frame the whole site: the manifest's camera if it has one, else an elevated 3/4 view."""
        site = self.site if use_manifest_camera else None
        frame_site(self.camera, self.geometry.bounds, site)

    def focus(self, index: int) -> None:
        """Move the camera to look at one device from a sensible distance."""
        lo, hi = self.geometry.device_bounds[index]
        if not np.isfinite(lo).all():
            return
        center = (lo + hi) / 2
        size = max(float(np.linalg.norm(hi - lo)), 1.0)
        position = np.asarray(self.camera.world.position)
        direction = position - center
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 0 else np.array([0.6, 0.6, 0.6])
        self.camera.local.position = tuple(center + direction * size * 3.0)
        self.camera.show_pos(tuple(center))

    def project(self, world_points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """World points (K, 3) to pixel coordinates (K, 2), origin top-left; NaN behind the camera."""
        pts = np.atleast_2d(np.asarray(world_points, np.float64))
        homo = np.c_[pts, np.ones(len(pts))]
        clip = homo @ np.asarray(self.camera.camera_matrix, np.float64).T
        w = clip[:, 3:4]
        ndc = clip[:, :3] / np.where(np.abs(w) < 1e-12, np.nan, w)
        ndc[w[:, 0] <= 0] = np.nan
        width, height = size
        return np.c_[(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height]

    # --- device state -------------------------------------------------------------

    def set_look(self, index: int, rgba, flags: int) -> None:
        """Paint a device (rgba None keeps the model colour) and set its twin flags."""
        data = self.devices.data[index]
        data[0] = rgba if rgba is not None else (0.0, 0.0, 0.0, 0.0)
        view_bits = int(data[1, 0]) & VIEW_FLAGS
        data[1, 0] = float((int(flags) & ~VIEW_FLAGS) | view_bits)
        self.devices.update([index])

    def set_looks(self, indices: np.ndarray, rgba: np.ndarray, flags: np.ndarray) -> None:
        """Vectorised set_look for many devices at once (rgba with alpha 0 keeps model colour)."""
        idx = np.asarray(indices, np.int64)
        if not idx.size:
            return
        data = self.devices.data
        data[idx, 0] = rgba
        view_bits = data[idx, 1, 0].astype(np.int64) & VIEW_FLAGS
        data[idx, 1, 0] = ((np.asarray(flags, np.int64) & ~VIEW_FLAGS) | view_bits).astype(np.float32)
        self.devices.update(idx)

    def set_mode(self, mode: str) -> None:
        """Live, past or simulation: the background changes so no one mistakes one for another."""
        top, bottom = MODE_BACKGROUNDS.get(mode, MODE_BACKGROUNDS["live"])
        self.background.material.set_colors(top, top, bottom, bottom)
        self.mode = mode

    def before_render(self, size: tuple[int, int]) -> None:
        """Per-frame view upkeep that depends on the camera (which labels fit on screen)."""
        # The renderer tells the camera the view size only while rendering: tell it first, so the
        # labels are placed with this frame's projection (the first frame too).
        self.camera.set_view_size(*size)
        if self.labels is not None:
            self.labels.update_visible(self.camera, size, priority=self.selected)
        self.badges.update(self.camera)

    def flags(self, index: int) -> int:
        return int(self.devices.data[index, 1, 0])

    def _set_view_flag(self, index: int | None, flag: int, on: bool) -> None:
        if index is None:
            return
        data = self.devices.data[index]
        value = int(data[1, 0])
        data[1, 0] = float(value | flag if on else value & ~flag)
        self.devices.update([index])

    def select(self, index: int | None) -> None:
        if index == self.selected:
            return
        self._set_view_flag(self.selected, FLAG_SELECTED, False)
        self.selected = index
        self._set_view_flag(index, FLAG_SELECTED, True)

    def hover(self, index: int | None) -> None:
        if index == self.hovered:
            return
        self._set_view_flag(self.hovered, FLAG_HOVERED, False)
        self.hovered = index
        self._set_view_flag(index, FLAG_HOVERED, True)

    # --- motion -------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self._clock0

    def bind_motions(self, motion_start: np.ndarray) -> None:
        """Map the twin's motion entries (device i owns motion_start[i]:motion_start[i+1], in manifest
        order) to this view's moving parts, so targets can be written by index."""
        n = int(motion_start[-1]) if len(motion_start) else 0
        self._slot_of_entry = np.full(n, -1, np.int64)
        devices = self.site.devices
        for slot, (_, dev, m) in enumerate(self.geometry.motion_parts):
            try:
                k = devices[dev].motions.index(m)
            except ValueError:
                continue
            self._slot_of_entry[int(motion_start[dev]) + k] = slot

    def set_motion_targets(self, entries: np.ndarray, targets: np.ndarray, now: float | None = None) -> None:
        """Apply motion targets (NaN: hold) of the twin's motion entries, vectorised."""
        if not len(self.motions) or not len(entries):
            return
        slots = self._slot_of_entry[np.asarray(entries, np.int64)]
        keep = (slots >= 0) & ~np.isnan(targets)
        slots, targets = slots[keep], np.asarray(targets, np.float64)[keep]
        if not slots.size:
            return
        now = self.now() if now is None else now
        parts = self.parts.data
        rows = self._part[slots]
        rotate = self._kind[slots] == MOTION_KINDS["rotate"]
        if rotate.any():
            s, r = slots[rotate], rows[rotate]
            self._phase[s] = (self._phase[s] + self._rate[s] * (now - self._t0[s])) % 1.0
            self._t0[s] = now
            self._rate[s] = targets[rotate]
            parts[r, 1, 3] = self._rate[s]
            parts[r, 2, 0] = self._phase[s]
            parts[r, 2, 1] = now
        if (~rotate).any():
            parts[rows[~rotate], 2, 2] = targets[~rotate]
        self.parts.update(np.unique(rows).tolist())

    @property
    def animating(self) -> bool:
        """True while anything moves on its own (a spinning part), so frames must keep coming."""
        return bool(self._rate.size and self._rate.any())

    def advance_clock(self, now: float | None = None) -> None:
        self.material.time = self.now() if now is None else now
