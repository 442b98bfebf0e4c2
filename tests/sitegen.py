"""Small, exact test sites: a grid of boxes, each a device, some with a spinning blade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

MANIFEST_HEAD = """[site]
name = "Grid"
model = "model.glb"
topic_prefix = "grid"

[types.box]
[[types.box.points]]
id = "temp"
unit = "degC"
range = [0, 100]
period = 1

[[types.box.overlays]]
kind = "color"
point = "temp"
map = "heat"
range = [0, 100]

[[types.box.overlays]]
kind = "rotate"
point = "temp"
node = "blade"
axis = [0, 1, 0]
range = [0, 100]
to = [0, 1]

[[types.box.overlays]]
kind = "label"
points = ["temp"]
format = "{temp:.0f} degC"
"""


def grid_site(out: Path, rows: int = 3, cols: int = 3, spacing: float = 3.0) -> Path:
    """Boxes on a floor; device 'B-r-c' has a body and a long flat blade on top."""
    out.mkdir(parents=True, exist_ok=True)
    scene = trimesh.Scene()
    floor = trimesh.creation.box((cols * spacing + 2, 0.2, rows * spacing + 2))
    floor.visual.face_colors = [120, 120, 120, 255]
    scene.add_geometry(floor, node_name="structure/floor", transform=trimesh.transformations.translation_matrix([0, -0.1, 0]))
    lines = [MANIFEST_HEAD]
    for r in range(rows):
        for c in range(cols):
            name = f"B-{r}-{c}"
            x = (c - (cols - 1) / 2) * spacing
            z = (r - (rows - 1) / 2) * spacing
            scene.graph.update(frame_to=name, frame_from=scene.graph.base_frame, matrix=trimesh.transformations.translation_matrix([x, 0.5, z]))
            body = trimesh.creation.box((1.0, 1.0, 1.0))
            body.visual.face_colors = [200, 200, 200, 255]
            scene.add_geometry(body, node_name=f"{name}.body", parent_node_name=name)
            blade = trimesh.creation.box((2.4, 0.1, 0.3))
            blade.visual.face_colors = [40, 40, 40, 255]
            scene.add_geometry(blade, node_name=f"{name}.blade", parent_node_name=name,
                               transform=trimesh.transformations.translation_matrix([0, 0.56, 0]))
            lines.append(f'[[devices]]\nid = "{name}"\ntype = "box"\nname = "Box {r} {c}"\narea = "Row {r}"\n')
    scene.export(out / "model.glb")
    (out / "site.toml").write_text("\n".join(lines))
    return out


def top_down(view, height: float = 14.0) -> None:
    """Look straight down at the site centre (device tops fully visible, none hides another)."""
    lo, hi = view.geometry.bounds
    center = (lo + hi) / 2
    view.camera.local.position = (float(center[0]), float(height), float(center[2]) + 0.001)
    view.camera.look_at(tuple(center))


def dominant_channel(pixel: np.ndarray) -> int:
    return int(np.argmax(pixel[:3]))
