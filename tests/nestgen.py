"""A site whose devices nest: a line node holding two pumps, one pump holding its motor."""

from __future__ import annotations

from pathlib import Path

import trimesh

T = trimesh.transformations.translation_matrix

NESTED_TOML = """[site]
name = "Nested"
model = "model.glb"

[types.thing]
points = [{ id = "state", kind = "enum", states = ["a", "b", "c", "d"], period = 1 }]
overlays = [
  { kind = "color", point = "state", states = { a = "#ff0000", b = "#00ff00", c = "#0000ff", d = "#ffff00" } },
  { kind = "label", points = ["state"] },
]

[[devices]]
id = "LINE"
type = "thing"
node = "Line"

[[devices]]
id = "P1"
type = "thing"
node = "Pump1"

[[devices]]
id = "M1"
type = "thing"
node = "Motor1"

[[devices]]
id = "P2"
type = "thing"
node = "Pump2"
"""


def nested_site(out: Path, manifest: str = NESTED_TOML, line_mesh: bool = True) -> Path:
    """Line (a long base) > Pump1 (box) > Motor1 (box beside it), Line > Pump2 (box); and a floor.

    Seen from above: the base spans x -4..4, pumps at x=-2 and x=+2, the motor at x=-2, z=+1.2.
    """
    out.mkdir(parents=True, exist_ok=True)
    scene = trimesh.Scene()
    gray = [200, 200, 200, 255]

    def box(extents, node, parent, at):
        mesh = trimesh.creation.box(extents)
        mesh.visual.face_colors = gray
        scene.add_geometry(mesh, node_name=node, geom_name=node, parent_node_name=parent, transform=T(at))

    floor = trimesh.creation.box((12, 0.1, 8))
    floor.visual.face_colors = [120, 120, 120, 255]
    scene.add_geometry(floor, node_name="Yard", geom_name="Yard", transform=T([0, -0.05, 0]))
    if line_mesh:
        box((8, 0.2, 1.0), "Line", None, [0, 0.1, 0])
    else:  # a bare group: everything the line has is its pumps
        scene.graph.update(frame_to="Line", frame_from=scene.graph.base_frame, matrix=T([0, 0.1, 0]))
    box((1.2, 1.0, 1.2), "Pump1", "Line", [-2, 0.6, 0])
    box((0.8, 0.6, 0.8), "Motor1", "Pump1", [0, -0.2, 1.2])
    box((1.2, 1.0, 1.2), "Pump2", "Line", [2, 0.6, 0])
    scene.export(out / "model.glb")
    (out / "site.toml").write_text(manifest)
    return out
