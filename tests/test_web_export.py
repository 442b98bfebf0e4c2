"""The site as a GLB for three.js, site.json, and the static export-xr bundle."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))

from rig import command_site, validate_gltf  # noqa: E402

from twinview.site import open_site  # noqa: E402
from twinview.web.export import build_gltf, export_glb  # noqa: E402
from twinview.web.sitejson import site_info  # noqa: E402

WEB = Path(__file__).resolve().parents[1] / "viewer" / "web"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return open_site(command_site(tmp_path_factory.mktemp("site")))


def read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    n, kind = struct.unpack_from("<II", data, 12)
    assert kind == 0x4E4F534A
    doc = json.loads(data[20 : 20 + n])
    m, kind = struct.unpack_from("<II", data, 20 + n)
    assert kind == 0x004E4942
    return doc, data[28 + n : 28 + n + m]


def accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5126: np.float32, 5121: np.uint8, 5125: np.uint32}[acc["componentType"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    raw = np.frombuffer(binary, dtype, acc["count"] * width, view["byteOffset"])
    return raw.reshape(acc["count"], width)


def test_glb_passes_the_khronos_validator(loaded, tmp_path):
    if shutil.which("node") is None or not (WEB / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("node or the gltf-validator npm package is missing (npm ci in viewer/web)")
    out = export_glb(loaded, tmp_path / "site.glb")
    report = validate_gltf(out)
    issues = report["issues"]
    assert issues["numErrors"] == 0, issues["messages"]
    assert issues["numWarnings"] == 0, issues["messages"]
    assert report["info"]["totalVertexCount"] > 0


def test_devices_are_groups_with_moving_parts_about_their_pivot(loaded, tmp_path):
    doc, binary = read_glb(export_glb(loaded, tmp_path / "site.glb"))
    nodes = doc["nodes"]
    roots = doc["scenes"][0]["nodes"]
    by_name = {n["name"]: n for n in nodes}
    ids = [d.id for d in loaded.site.devices]
    assert {nodes[i]["name"] for i in roots} >= set(ids)
    for device_id in ids:
        group = by_name[device_id]
        assert group["extras"] == {"device": device_id}
        kids = {nodes[k]["name"]: nodes[k] for k in group["children"]}
        assert set(kids) == {f"{device_id}.body", f"{device_id}.blade"}
        blade = kids[f"{device_id}.blade"]
        assert blade["extras"] == {"device": device_id, "part": "blade", "motion": 0}
        # The blade's node sits at its pivot; its geometry is centred on it, so a rotation
        # of the node turns the blade in place.
        world_pivot = np.asarray(loaded.model.nodes[f"{device_id}.blade"].world)[:3, 3]
        assert np.allclose(np.add(group["translation"], blade["translation"]), world_pivot, atol=1e-5)
        positions = accessor(doc, binary, doc["meshes"][blade["mesh"]]["primitives"][0]["attributes"]["POSITION"])
        assert np.allclose(positions.mean(axis=0), 0, atol=1e-5)
        assert np.ptp(positions[:, 0]) == pytest.approx(2.4, abs=1e-4)  # sitegen's blade is 2.4 m long
    assert "structure/floor" in by_name


def test_material_renders_without_an_environment_map(loaded):
    doc, binary = build_gltf(loaded)
    (material,) = doc["materials"]
    pbr = material["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 0
    assert 0.5 <= pbr["roughnessFactor"] <= 1
    # Base colours come through as vertex colours: grey bodies, dark blades.
    device = doc["nodes"][next(i for i, n in enumerate(doc["nodes"]) if n["name"] == "B-0-0.blade")]
    colors = accessor(doc, binary, doc["meshes"][device["mesh"]]["primitives"][0]["attributes"]["COLOR_0"])
    assert (colors[:, :3] == 40).all() and (colors[:, 3] == 255).all()


def test_site_json_describes_devices_for_the_page(loaded):
    info = site_info(loaded)
    text = json.dumps(info, allow_nan=False)
    assert json.loads(text)["name"] == "Grid"
    device = next(d for d in info["devices"] if d["id"] == "B-1-1")
    assert [p["id"] for p in device["points"]] == ["temp"]
    assert device["motions"][0]["kind"] == "rotate" and device["motions"][0]["found"]
    assert device["motions"][0]["axis"] == pytest.approx([0, 1, 0])
    assert device["label_points"] == ["temp"]
    stop = next(c for c in device["commands"] if c["name"] == "stop")
    assert stop["confirm"] is True and stop["role"] == "operator"


def test_static_bundle_is_self_contained(loaded, tmp_path):
    from twinview.web.assets import MissingThree, imports_of, three_root
    from twinview.web.serve import export_static

    try:
        three_root()
    except MissingThree as exc:
        pytest.skip(str(exc))

    index = export_static(loaded, tmp_path / "bundle")
    out = index.parent
    html = index.read_text()
    importmap = json.loads(html.split('<script type="importmap">')[1].split("</script>")[0])["imports"]
    assert (out / importmap["three"]).is_file()
    # Every module import of the page and of the copied three.js files resolves inside the bundle.
    for js in [*out.glob("*.js"), *(out / "three").rglob("*.js")]:
        for spec in imports_of(js.read_text()):
            if spec == "three":
                continue
            if spec.startswith("three/addons/"):
                target = out / importmap["three/addons/"] / spec[len("three/addons/"):]
            else:
                target = js.parent / spec
            assert target.resolve().is_file(), f"{js.name} imports {spec}, missing from the bundle"
    assert (out / "site.glb").stat().st_size > 1000
    assert json.loads((out / "site.json").read_text())["glb"] == "site.glb"
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert size < 5 * 2**20, "only the needed three.js modules are copied"
