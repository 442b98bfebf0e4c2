"""The bundled demo plant and the minimal example site of docs/site-format.md: they load, bind and do not drift."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from twinview.assets.generate_demo_site import DEMO_DIR, build_demo
from twinview.site import check_site, find_part, open_site

ROOT = Path(__file__).resolve().parents[1]
MINIMAL_DIR = ROOT / "tests" / "data" / "minimal_site"
DOC = ROOT / "docs" / "site-format.md"

# the telemetry simulator and the docs are written against these type names and point ids
TYPE_POINTS = {
    "pump": {"state", "speed", "pressure", "motor_temp"},
    "tank": {"level", "temperature", "drain_open"},
    "valve": {"position"},
    "fan": {"running", "speed"},
    "hvac": {"supply_temp", "return_temp", "fan_running"},
    "conveyor": {"running", "speed", "items"},
}
SENSOR_POINTS = {"flow", "pressure", "temperature", "vibration"}


@pytest.fixture(scope="module")
def demo():
    return open_site(DEMO_DIR)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    stats = build_demo(out)
    return out, stats


def test_demo_loads_with_a_plausible_mix_of_devices(demo):
    devices = demo.site.devices
    assert 60 <= len(devices) <= 150
    by_type: dict[str, int] = {}
    for d in devices:
        by_type[d.type] = by_type.get(d.type, 0) + 1
    assert set(by_type) == set(TYPE_POINTS) | {"sensor"}
    assert by_type["pump"] >= 10 and by_type["valve"] >= 10 and by_type["sensor"] >= 20
    assert demo.site.topic_prefix == "plant"
    assert demo.site.camera_position is not None and demo.site.camera_target is not None


def test_demo_points_match_the_simulator_contract(demo):
    for d in demo.site.devices:
        ids = {p.id for p in d.points}
        if d.type == "sensor":
            assert len(ids) == 1 and ids <= SENSOR_POINTS, d.id
            assert d.color is not None and d.color.map is not None and d.color.range is not None
        else:
            assert ids == TYPE_POINTS[d.type], d.id
        assert d.color is not None, d.id
        assert d.area and d.name != d.id
        assert set(d.meta) == {"manufacturer", "model", "serial", "install_year"}, d.id
        assert d.points[0].topic.startswith(f"plant/{d.id}/")
        assert d.availability_topic == f"plant/{d.id}/availability"
    pump = next(d for d in demo.site.devices if d.type == "pump")
    commands = {c.name: c for c in pump.commands}
    assert commands["start"].success_point == "state" and commands["start"].success_value == "running"
    assert commands["stop"].confirm
    assert commands["set_speed"].success_value == "$speed" and commands["set_speed"].success_tolerance == 50
    tank = next(d for d in demo.site.devices if d.type == "tank")
    drain = next(c for c in tank.commands if c.name == "open_drain")
    assert drain.interlock == "level > 10" and drain.confirm and drain.success_value is True


def test_demo_binds_cleanly(demo):
    problems = check_site(DEMO_DIR)
    assert [p for p in problems if p.severity == "error"] == []
    assert not [p for p in problems if "bound to no device" in p.message], problems
    assert demo.warnings == []
    model = demo.model
    device_ids = {d.id for d in demo.site.devices}
    for d in demo.site.devices:
        assert d.node == d.id
        parts = model.descendants(d.node)[1:]
        assert parts and all(p.startswith(d.id + ".") for p in parts), d.id
    for node in model.nodes.values():
        if node.geometry and not node.name.startswith("structure/"):
            assert node.name.split(".")[0] in device_ids, node.name


def test_every_motion_part_resolves_and_moves_about_its_own_origin(demo):
    model = demo.model
    checked = 0
    for d in demo.site.devices:
        for motion in d.motions:
            name = find_part(model, d.node, motion.node)
            assert name == f"{d.id}.{motion.node}"
            node = model.nodes[name]
            assert node.geometry, name
            positions = np.concatenate([g.positions for g in node.geometry]).astype(np.float64)
            pivot = node.world[:3, 3]
            axis = node.world[:3, :3] @ np.asarray(motion.axis)
            axis /= np.linalg.norm(axis)
            # the axis reads the same in the part's frame and in the model's (only turns about the axis itself)
            assert np.allclose(axis, motion.axis), name
            if motion.kind == "rotate":
                # a rotor is symmetric about its axis, so its mean vertex lies on the axis through the node origin
                centre = positions.mean(axis=0) - pivot
                off_axis = centre - (centre @ axis) * axis
                assert np.linalg.norm(off_axis) < 0.02, (name, off_axis)
            elif motion.kind == "scale":
                # the bar's base sits at the node origin, so scaling grows it from the bottom
                heights = (positions - pivot) @ axis
                assert abs(heights.min()) < 1e-3 and heights.max() > 1.0, (name, heights.min(), heights.max())
            checked += 1
    kinds = {m.kind for d in demo.site.devices for m in d.motions}
    assert kinds == {"rotate", "translate", "scale"}
    assert checked >= 40


def test_demo_model_is_moderate_and_instanced():
    data = (DEMO_DIR / "plant.glb").read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20 : 20 + length])
    meshes_used = [n["mesh"] for n in doc["nodes"] if "mesh" in n]
    assert len(set(meshes_used)) < len(meshes_used)  # repeated equipment shares meshes
    for material in doc["materials"]:
        assert material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
    assert len(data) < 8 * 2**20


def test_regenerating_the_demo_matches_the_committed_files(regenerated, demo):
    out, stats = regenerated
    assert (out / "site.toml").read_text(encoding="utf-8") == (DEMO_DIR / "site.toml").read_text(encoding="utf-8"), (
        "assets/demo/site.toml is stale: run python -m twinview.assets.generate_demo_site"
    )
    fresh = open_site(out)
    assert sorted(fresh.model.nodes) == sorted(demo.model.nodes)
    tri = lambda m: sum(len(g.faces) for n in m.nodes.values() for g in n.geometry)  # noqa: E731
    assert tri(fresh.model) == tri(demo.model) == stats.triangles
    assert stats.triangles < 150_000
    assert stats.devices == len(demo.site.devices)


# --- the minimal example site of docs/site-format.md ---------------------------------------


def test_minimal_site_loads_and_binds():
    loaded = open_site(MINIMAL_DIR)
    assert loaded.warnings == []
    assert [p for p in check_site(MINIMAL_DIR) if p.severity == "error"] == []
    site = loaded.site
    assert [d.id for d in site.devices] == ["P-1", "T-1", "TT-1"]
    pump, tank, sensor = site.devices
    assert pump.points[1].topic == "minimal/P-1/speed"
    assert find_part(loaded.model, pump.node, "impeller") == "P-1.impeller"
    assert tank.node == "tank-1" and find_part(loaded.model, "tank-1", "level") == "tank-1.level"
    assert tank.availability_topic == "minimal/T-1/availability"
    assert sensor.points[0].topic == "legacy/room1/temp" and sensor.points[0].json_value == "reading.value"
    assert loaded.model.nodes["TT-1"].geometry  # a device node may be a mesh itself


def test_doc_quotes_the_minimal_site_verbatim():
    doc = DOC.read_text(encoding="utf-8")
    manifest = (MINIMAL_DIR / "site.toml").read_text(encoding="utf-8")
    assert manifest in doc, "docs/site-format.md must quote tests/data/minimal_site/site.toml exactly"


def test_minimal_model_script_reproduces_the_committed_model(tmp_path):
    spec = importlib.util.spec_from_file_location("make_minimal_model", MINIMAL_DIR / "make_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "model.glb")
    (tmp_path / "site.toml").write_text((MINIMAL_DIR / "site.toml").read_text(encoding="utf-8"), encoding="utf-8")
    fresh, committed = open_site(tmp_path), open_site(MINIMAL_DIR)
    assert sorted(fresh.model.nodes) == sorted(committed.model.nodes)
    assert np.allclose(fresh.model.bounds, committed.model.bounds)
