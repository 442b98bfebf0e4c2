"""Synthetic large sites: every device binds, the model instances shared meshes, output is reproducible."""

from __future__ import annotations

import json
import struct

import pytest

from twinview.site import check_site, find_part, open_site
from twinview.site.synthetic import FAN_EVERY, generate_site


def _gltf_json(path):
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    return json.loads(data[20 : 20 + length])


@pytest.fixture(scope="module")
def site200(tmp_path_factory):
    return generate_site(tmp_path_factory.mktemp("synth") / "s200", 200, seed=3)


def test_every_device_binds(site200):
    loaded = open_site(site200)
    devices = loaded.site.devices
    assert len(devices) == 200
    assert len({d.id for d in devices}) == 200
    assert all(d.node in loaded.model.nodes for d in devices)
    assert all(any(loaded.model.nodes[n].geometry for n in loaded.model.descendants(d.node)) for d in devices)
    assert all(d.color is not None for d in devices)
    types = {d.type for d in devices}
    assert {"machine", "cabinet", "vessel", "fan"} <= types
    assert loaded.warnings == []


def test_generated_site_passes_check_site(site200):
    problems = check_site(site200)
    assert problems == [], problems


def test_fans_spin_about_their_own_origin(site200):
    loaded = open_site(site200)
    fans = [d for d in loaded.site.devices if d.type == "fan"]
    assert len(fans) == 200 // FAN_EVERY
    for fan in fans:
        (motion,) = fan.motions
        name = find_part(loaded.model, fan.node, motion.node)
        assert name == f"{fan.id}.blades"
        node = loaded.model.nodes[name]
        lo = min(g.positions.min(axis=0)[0] for g in node.geometry)
        hi = max(g.positions.max(axis=0)[0] for g in node.geometry)
        assert abs((lo + hi) / 2 - node.world[0, 3]) < 0.05


def test_model_instances_a_few_shared_meshes(site200):
    doc = _gltf_json(site200 / "plant.glb")
    mesh_nodes = [n for n in doc["nodes"] if "mesh" in n]
    assert len(mesh_nodes) > 200
    assert len(doc["meshes"]) <= 12


def test_partial_last_bay_and_reproducible_output(tmp_path):
    a = generate_site(tmp_path / "a", 150, seed=1)
    b = generate_site(tmp_path / "b", 150, seed=1)
    c = generate_site(tmp_path / "c", 150, seed=2)
    assert (a / "site.toml").read_bytes() == (b / "site.toml").read_bytes()
    assert (a / "plant.glb").read_bytes() == (b / "plant.glb").read_bytes()
    assert (a / "plant.glb").read_bytes() != (c / "plant.glb").read_bytes()
    loaded = open_site(a)
    assert len(loaded.site.devices) == 150
    bays = {d.area for d in loaded.site.devices}
    assert bays == {"Bay 1", "Bay 2"}
    assert sorted(n for n in loaded.model.nodes if n.startswith("structure/bay-") and not n.endswith("aisle")) == [
        "structure/bay-0001", "structure/bay-0002",
    ]


def test_rejects_an_empty_site(tmp_path):
    with pytest.raises(ValueError):
        generate_site(tmp_path, 0)
