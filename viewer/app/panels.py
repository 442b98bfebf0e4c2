"""Dear ImGui panels of the desktop app: toolbar, device tree, inspector.

Panels read the site, the twin and the selection; they change nothing but the
selection and camera, through the callbacks the app gives them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from imgui_bundle import imgui

from twinview.site import Site

GOOD = imgui.ImVec4(0.55, 0.85, 0.55, 1.0)
WARN = imgui.ImVec4(0.95, 0.75, 0.30, 1.0)
BAD = imgui.ImVec4(0.95, 0.40, 0.60, 1.0)
DIM = imgui.ImVec4(0.65, 0.65, 0.70, 1.0)


@dataclass
class PanelState:
    search: str = ""
    scroll_to_selected: bool = False
    tree_cache_key: str | None = None
    tree: dict = field(default_factory=dict)


class DeviceTree:
    """Devices grouped by area and type, filtered by a search over id, name, type and area."""

    def __init__(self, site: Site, on_select: Callable[[int], None]):
        self.site = site
        self.on_select = on_select
        self.state = PanelState()
        self._haystack = [f"{d.id} {d.name} {d.type} {d.area}".lower() for d in site.devices]

    def groups(self, query: str) -> dict[str, dict[str, list[int]]]:
        if query == self.state.tree_cache_key:
            return self.state.tree
        terms = query.lower().split()
        tree: dict[str, dict[str, list[int]]] = {}
        for i, device in enumerate(self.site.devices):
            if terms and not all(t in self._haystack[i] for t in terms):
                continue
            tree.setdefault(device.area or "(no area)", {}).setdefault(device.type or "(untyped)", []).append(i)
        self.state.tree_cache_key, self.state.tree = query, tree
        return tree

    def draw(self, selected: int | None, x: float, y: float, height: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.set_next_window_size(imgui.ImVec2(290, height), imgui.Cond_.first_use_ever)
        imgui.begin("Devices")
        _, self.state.search = imgui.input_text_with_hint("##search", "search id, name, type, area", self.state.search)
        tree = self.groups(self.state.search.strip())
        count = sum(len(v) for types in tree.values() for v in types.values())
        imgui.text_colored(DIM, f"{count} of {len(self.site.devices)} devices")
        imgui.separator()
        imgui.begin_child("tree")
        searching = bool(self.state.search.strip())
        for area, types in sorted(tree.items(), key=lambda kv: natural_key(kv[0])):
            if searching or (selected is not None and self.state.scroll_to_selected and self.site.devices[selected].area == area):
                imgui.set_next_item_open(True)
            if imgui.tree_node(f"{area} ({sum(len(v) for v in types.values())})"):
                for type_name, members in sorted(types.items(), key=lambda kv: natural_key(kv[0])):
                    if searching or (selected is not None and self.state.scroll_to_selected and selected in members):
                        imgui.set_next_item_open(True)
                    if imgui.tree_node(f"{type_name} ({len(members)})##{area}"):
                        self._rows(members, selected)
                        imgui.tree_pop()
                imgui.tree_pop()
        imgui.end_child()
        imgui.end()


    def _rows(self, members: list[int], selected: int | None) -> None:
        """One selectable per device; only the rows on screen are drawn (ImGui list clipper),
        so a group of 10,000 devices costs what a screenful does."""
        clipper = imgui.ListClipper()
        clipper.begin(len(members))
        if selected is not None and self.state.scroll_to_selected and selected in members:
            clipper.include_item_by_index(members.index(selected))
        while clipper.step():
            for row in range(clipper.display_start, clipper.display_end):
                i = members[row]
                device = self.site.devices[i]
                clicked, _ = imgui.selectable(f"{device.id}  {device.name}##{i}", i == selected)
                if i == selected and self.state.scroll_to_selected:
                    imgui.set_scroll_here_y(0.5)
                    self.state.scroll_to_selected = False
                if clicked:
                    self.on_select(i)
        clipper.end()


def natural_key(text: str) -> tuple:
    """Sort 'Bay 2' before 'Bay 10'."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return "now"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Inspector:
    """The selected device: identity, metadata, and each bound point (live when a twin is attached)."""

    def __init__(self, site: Site, point_reader: Callable | None = None, extra: Callable[[int], None] | None = None):
        self.site = site
        self.point_reader = point_reader  # (device_id, point_id) -> PointState-like or None
        self.extra = extra  # draws more sections (history charts, commands) for the device

    def draw(self, selected: int | None, x: float, y: float, height: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x, y), imgui.Cond_.first_use_ever)
        imgui.set_next_window_size(imgui.ImVec2(360, height), imgui.Cond_.first_use_ever)
        imgui.begin("Inspector")
        if selected is None:
            imgui.text_colored(DIM, "Click a device in the scene or the tree.")
            imgui.end()
            return
        device = self.site.devices[selected]
        imgui.text(device.name)
        imgui.text_colored(DIM, f"{device.id}  ·  {device.type or 'untyped'}  ·  {device.area or 'no area'}")
        imgui.text_colored(DIM, f"model node: {device.node}")
        if device.meta and imgui.collapsing_header("Metadata", imgui.TreeNodeFlags_.default_open):
            if imgui.begin_table("meta", 2, imgui.TableFlags_.row_bg):
                for key, value in device.meta.items():
                    imgui.table_next_row()
                    imgui.table_next_column()
                    imgui.text_colored(DIM, key)
                    imgui.table_next_column()
                    imgui.text(value)
                imgui.end_table()
        if imgui.collapsing_header("Points", imgui.TreeNodeFlags_.default_open):
            self._points(device)
        if self.extra is not None:
            self.extra(selected)
        imgui.end()

    def _points(self, device) -> None:
        flags = imgui.TableFlags_.row_bg | imgui.TableFlags_.borders_inner_h
        if not imgui.begin_table("points", 4, flags):
            return
        imgui.table_setup_column("point")
        imgui.table_setup_column("value")
        imgui.table_setup_column("quality")
        imgui.table_setup_column("age")
        imgui.table_headers_row()
        now = time.time()
        for point in device.points:
            state = self.point_reader(device.id, point.id) if self.point_reader else None
            imgui.table_next_row()
            imgui.table_next_column()
            imgui.text(point.label or point.id)
            if imgui.is_item_hovered():
                rng = f"{point.range[0]:g}..{point.range[1]:g}" if point.range else "any"
                imgui.set_tooltip(f"topic: {point.topic}\nkind: {point.kind}\nrange: {rng} {point.unit}\nexpected every {point.period:g} s")
            imgui.table_next_column()
            if state is None or getattr(state, "value", None) is None:
                imgui.text_colored(DIM, "no data")
            else:
                imgui.text(format_value(state.value, point.unit))
            imgui.table_next_column()
            quality = getattr(state, "quality", None)
            name = getattr(quality, "name", str(quality) if quality is not None else "none").lower()
            color = {"good": GOOD, "stale": WARN, "bad": BAD, "offline": BAD}.get(name, DIM)
            imgui.text_colored(color, name)
            if state is not None and getattr(state, "error", None) and imgui.is_item_hovered():
                imgui.set_tooltip(str(state.error))
            imgui.table_next_column()
            recv = getattr(state, "recv_ts", None)
            imgui.text_colored(DIM, age_text(now - recv if recv else None))
        imgui.end_table()


def format_value(value, unit: str = "") -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()
