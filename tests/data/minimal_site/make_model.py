"""Make model.glb for the minimal example site (docs/site-format.md).

    python tests/data/minimal_site/make_model.py [OUT.glb]

Nodes: structure/floor (scenery); P-1 with parts P-1.body and P-1.impeller
(origin on the shaft axis); tank-1 with tank-1.shell and tank-1.level (origin
at the bottom of the gauge bar); TT-1, a device node that is itself a mesh.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial


def _paint(mesh: trimesh.Trimesh, color: tuple[int, int, int]) -> trimesh.Trimesh:
    mesh.metadata = {}
    mesh.visual = trimesh.visual.TextureVisuals(
        material=PBRMaterial(baseColorFactor=[*color, 255], metallicFactor=0.0, roughnessFactor=0.8)
    )
    return mesh


def _box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    mesh = trimesh.creation.box(extents=hi - lo, transform=trimesh.transformations.translation_matrix((lo + hi) / 2))
    mesh.unmerge_vertices()  # flat shading
    return mesh


def _at(x: float, y: float, z: float) -> np.ndarray:
    return trimesh.transformations.translation_matrix((x, y, z))


def build() -> trimesh.Scene:
    scene = trimesh.Scene()
    world = scene.graph.base_frame
    scene.add_geometry(_paint(_box((-4, -0.1, -3), (4, 0, 3)), (196, 192, 182)), node_name="structure/floor", geom_name="floor")

    # pump: group node P-1 at (-2, 0, 0), shaft along x at height 0.5
    scene.graph.update(frame_to="P-1", frame_from=world, matrix=_at(-2, 0, 0))
    body = trimesh.util.concatenate([
        _box((-0.6, 0, -0.3), (0.6, 0.15, 0.3)),
        trimesh.creation.annulus(0.2, 0.3, segment=[(-0.5, 0.5, 0), (-0.3, 0.5, 0)], sections=20),
        trimesh.creation.cylinder(0.22, segment=[(-0.2, 0.5, 0), (0.55, 0.5, 0)], sections=20),
    ])
    scene.add_geometry(_paint(body, (63, 99, 201)), node_name="P-1.body", geom_name="pump-body", parent_node_name="P-1")
    vanes = [trimesh.creation.cylinder(0.05, segment=[(-0.08, 0, 0), (0.08, 0, 0)], sections=10)]
    for k in range(4):
        spin = trimesh.transformations.rotation_matrix(k * np.pi / 2, [1, 0, 0])
        vanes.append(_box((-0.06, 0.04, -0.02), (0.06, 0.18, 0.02)).apply_transform(spin))
    scene.add_geometry(_paint(trimesh.util.concatenate(vanes), (216, 162, 63)), node_name="P-1.impeller",
                       geom_name="pump-impeller", parent_node_name="P-1", transform=_at(-0.4, 0.5, 0))

    # tank: group node tank-1 (bound to device T-1) with a level bar whose origin is its bottom
    scene.graph.update(frame_to="tank-1", frame_from=world, matrix=_at(1.5, 0, -0.5))
    shell = trimesh.creation.cylinder(0.8, segment=[(0, 0, 0), (0, 2.0, 0)], sections=32)
    scene.add_geometry(_paint(shell, (214, 221, 225)), node_name="tank-1.shell", geom_name="tank-shell", parent_node_name="tank-1")
    scene.add_geometry(_paint(_box((-0.08, 0, -0.03), (0.08, 1.7, 0.03)), (77, 171, 247)), node_name="tank-1.level",
                       geom_name="tank-level", parent_node_name="tank-1", transform=_at(0, 0.15, 0.85))

    # sensor: the device node itself carries the mesh
    sensor = trimesh.util.concatenate([_box((-0.03, 0, -0.03), (0.03, 1.2, 0.03)), _box((-0.12, 1.2, -0.08), (0.12, 1.45, 0.08))])
    scene.add_geometry(_paint(sensor, (43, 138, 224)), node_name="TT-1", geom_name="sensor", transform=_at(2.5, 0, 2))
    return scene


def main(out: str | Path | None = None) -> Path:
    path = Path(out) if out else Path(__file__).with_name("model.glb")
    path.write_bytes(build().export(file_type="glb", include_normals=True))
    return path


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else None))
