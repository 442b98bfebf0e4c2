"""The whole site as one pygfx world object, with a custom material and shader.

Per-device visual state (paint colour, state flags) and per-part motion live
in storage buffers written by index: changing one device uploads a few bytes,
whatever the size of the site. The pick buffer carries the device index, so a
click maps to a device without any search.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pygfx as gfx
import wgpu
from pygfx.renderers.wgpu import Binding, BaseShader, register_wgpu_render_function
from pygfx.utils import unpack_bitfield

from .site_geometry import SiteGeometry

FLAG_SELECTED = 1
FLAG_HOVERED = 2
FLAG_STALE = 4
FLAG_BAD = 8
FLAG_ALARM = 16
FLAG_OFFLINE = 32
FLAG_PENDING = 64
FLAG_HIDDEN = 128
VIEW_FLAGS = FLAG_SELECTED | FLAG_HOVERED | FLAG_HIDDEN  # set by the view; the rest come from the twin


class SiteMaterial(gfx.Material):
    """Lighting, selection accent and the animation clock for a SiteMesh."""

    uniform_type = dict(gfx.Material.uniform_type, accent="4xf4", time="f4")

    def __init__(self, accent: str = "#ffb000", **kwargs):
        kwargs.setdefault("pick_write", True)
        super().__init__(**kwargs)
        self.accent = accent
        self.time = 0.0

    @property
    def accent(self) -> gfx.Color:
        return gfx.Color(self.uniform_buffer.data["accent"])

    @accent.setter
    def accent(self, value) -> None:
        self.uniform_buffer.data["accent"] = gfx.Color(value)
        self.uniform_buffer.update_full()

    @property
    def time(self) -> float:
        return float(self.uniform_buffer.data["time"])

    @time.setter
    def time(self, value: float) -> None:
        self.uniform_buffer.data["time"] = value
        self.uniform_buffer.update_full()

    def _wgpu_get_pick_info(self, pick_value) -> dict:
        values = unpack_bitfield(pick_value, wobject_id=20, index=26, x=9, y=9)
        return {"device_index": int(values["index"]) - 1}


class SiteMesh(gfx.Mesh):
    """All static and moving geometry of a site in one draw call."""

    def __init__(self, geometry: SiteGeometry, n_devices: int, material: SiteMaterial | None = None):
        geo = gfx.Geometry(
            positions=geometry.positions,
            normals=geometry.normals,
            indices=geometry.indices,
        )
        geo.vertex_colors = gfx.Buffer(geometry.colors)
        geo.parts = gfx.Buffer(geometry.parts)
        super().__init__(geo, material or SiteMaterial())
        self.part_buffer = gfx.Buffer(geometry.part_info.copy())
        # Two vec4 per device: paint rgba, [flags, 0, 0, 0]
        self.device_buffer = gfx.Buffer(np.zeros((max(n_devices, 1) * 2, 4), np.float32))
        self.n_devices = n_devices

    @property
    def parts_data(self) -> np.ndarray:
        """(P, 3, 4) view of the part table; write, then update_parts()."""
        return self.part_buffer.data.reshape(-1, 3, 4)

    @property
    def device_data(self) -> np.ndarray:
        """(N, 2, 4) view of device state; write, then update_devices()."""
        return self.device_buffer.data.reshape(-1, 2, 4)

    def update_devices(self, indices) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size:
            self.device_buffer.update_indices(np.concatenate([idx * 2, idx * 2 + 1]))

    def update_parts(self, parts) -> None:
        idx = np.asarray(parts, dtype=np.int64)
        if idx.size:
            self.part_buffer.update_indices(np.concatenate([idx * 3, idx * 3 + 1, idx * 3 + 2]))


@register_wgpu_render_function(SiteMesh, SiteMaterial)
class SiteShader(BaseShader):
    type = "render"

    def get_bindings(self, wobject, shared, scene):
        geometry = wobject.geometry
        rbuffer = "buffer/read_only_storage"
        bindings = [
            Binding("u_stdinfo", "buffer/uniform", shared.uniform_buffer),
            Binding("u_wobject", "buffer/uniform", wobject.uniform_buffer),
            Binding("u_material", "buffer/uniform", wobject.material.uniform_buffer),
            Binding("s_indices", rbuffer, geometry.indices, "VERTEX"),
            Binding("s_positions", rbuffer, geometry.positions, "VERTEX"),
            Binding("s_normals", rbuffer, geometry.normals, "VERTEX"),
            Binding("s_colors", rbuffer, geometry.vertex_colors, "VERTEX"),
            Binding("s_parts", rbuffer, geometry.parts, "VERTEX"),
            Binding("s_part_info", rbuffer, wobject.part_buffer, "VERTEX"),
            Binding("s_devices", rbuffer, wobject.device_buffer, "VERTEX"),
        ]
        bindings = dict(enumerate(bindings))
        self.define_bindings(0, bindings)
        return {0: bindings}

    def get_pipeline_info(self, wobject, shared):
        return {
            "primitive_topology": wgpu.PrimitiveTopology.triangle_list,
            "cull_mode": wgpu.CullMode.none,
        }

    def get_render_info(self, wobject, shared):
        offset, size = wobject.geometry.indices.draw_range
        return {"indices": (size * 3, 1, offset * 3, 0)}

    def get_code(self):
        return resources.files("twinview.shaders").joinpath("site.wgsl").read_text(encoding="utf-8")
