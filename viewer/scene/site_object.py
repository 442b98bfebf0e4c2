"""The site as two pygfx world objects (static and moving geometry) with a custom material and shader.

Per-device visual state (paint colour, state flags) lives in one storage
buffer shared by both objects, and per-part motion in another; both are
written by index, so changing one device uploads a few bytes whatever the size
of the site. The pick buffer carries the device index, so a click maps to a
device without any search.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pygfx as gfx
import wgpu
from pygfx.renderers.wgpu import Binding, BaseShader, register_wgpu_render_function
from pygfx.utils import unpack_bitfield

from twinview.twin.vocabulary import VIEW_FLAGS as VOCAB_VIEW_FLAGS, DeviceFlag

from .site_geometry import MeshArrays

FLAG_SELECTED, FLAG_HOVERED, FLAG_HIDDEN = int(DeviceFlag.SELECTED), int(DeviceFlag.HOVERED), int(DeviceFlag.HIDDEN)
VIEW_FLAGS = int(VOCAB_VIEW_FLAGS)  # set by the view; the rest come from the twin


class DeviceStates:
    """Paint and flags of every device: two vec4 per device in one GPU buffer."""

    def __init__(self, n_devices: int):
        self.buffer = gfx.Buffer(np.zeros((max(n_devices, 1) * 2, 4), np.float32))
        self.n = n_devices

    @property
    def data(self) -> np.ndarray:
        """(N, 2, 4) view: [paint rgba], [flags, 0, 0, 0]. Write, then update()."""
        return self.buffer.data.reshape(-1, 2, 4)

    def update(self, indices) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size:
            self.buffer.update_indices(np.concatenate([idx * 2, idx * 2 + 1]))


class PartTable:
    """Motion of every part: [pivot, kind], [axis, rate], [phase, t0, amount, device]."""

    def __init__(self, part_info: np.ndarray):
        self.buffer = gfx.Buffer(np.ascontiguousarray(part_info, dtype=np.float32))

    @property
    def data(self) -> np.ndarray:
        return self.buffer.data.reshape(-1, 3, 4)

    def update(self, parts) -> None:
        idx = np.asarray(parts, dtype=np.int64)
        if idx.size:
            self.buffer.update_indices(np.concatenate([idx * 3, idx * 3 + 1, idx * 3 + 2]))


class SiteMaterial(gfx.Material):
    """Lighting, selection accent and the animation clock for SiteMesh objects."""

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


class VertexBuffers:
    """GPU buffers of one MeshArrays, shared by every SiteMesh that draws a range of its faces."""

    def __init__(self, arrays: MeshArrays):
        self.positions = gfx.Buffer(arrays.positions)
        self.normals = gfx.Buffer(arrays.normals)
        self.colors = gfx.Buffer(arrays.colors)
        self.per_vertex = gfx.Buffer(arrays.per_vertex)


class SiteMesh(gfx.Mesh):
    """Site geometry in one draw call. Static: each vertex names its device.
    Moving (parts is given): each vertex names its part, which names its device and motion."""

    def __init__(self, vertices: VertexBuffers, faces: np.ndarray, devices: DeviceStates, material: SiteMaterial,
                 parts: PartTable | None = None):
        geo = gfx.Geometry(indices=np.ascontiguousarray(faces, dtype=np.uint32))
        geo.positions = vertices.positions
        geo.normals = vertices.normals
        geo.vertex_colors = vertices.colors
        geo.per_vertex = vertices.per_vertex
        super().__init__(geo, material)
        self.devices = devices
        self.parts = parts


@register_wgpu_render_function(SiteMesh, SiteMaterial)
class SiteShader(BaseShader):
    type = "render"

    def __init__(self, wobject):
        super().__init__(wobject)
        self["motion"] = wobject.parts is not None

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
            Binding("s_per_vertex", rbuffer, geometry.per_vertex, "VERTEX"),
            Binding("s_devices", rbuffer, wobject.devices.buffer, "VERTEX"),
        ]
        if wobject.parts is not None:
            bindings.append(Binding("s_part_info", rbuffer, wobject.parts.buffer, "VERTEX"))
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
        shaders = resources.files("twinview.shaders")
        # The flag and quality constants come from the one vocabulary (twinview.twin.vocabulary).
        return shaders.joinpath("vocabulary.wgsl").read_text(encoding="utf-8") + shaders.joinpath("site.wgsl").read_text(encoding="utf-8")
