"""`twinview check` and open_site: every kind of broken site gives a clear error, nothing half-loaded."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen import grid_site

from twinview.site import ModelError, SiteError, check_site, open_site


@pytest.fixture(scope="module")
def good_site(tmp_path_factory) -> Path:
    return grid_site(tmp_path_factory.mktemp("good"), rows=2, cols=2)


@pytest.fixture
def site(good_site, tmp_path) -> Path:
    dst = tmp_path / "site"
    shutil.copytree(good_site, dst)
    return dst


def run_check(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinview.cli", "check", str(site)], capture_output=True, text=True)


def errors_of(site: Path) -> list[str]:
    return [str(p) for p in check_site(site) if p.severity == "error"]


def test_good_site_passes(good_site):
    result = run_check(good_site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_cli_lists_every_error_with_field_and_exits_non_zero(site):
    manifest = site / "site.toml"
    text = manifest.read_text()
    text = text.replace('period = 1', 'period = "fast"\ncolour = "red"', 1)
    text += '\n[[devices]]\nid = "B-0-0"\ntype = "box"\n'  # duplicate id
    text += '\n[[devices]]\nid = "GHOST"\ntype = "box"\n'  # node not in the model
    text += '\n[[devices]]\nid = "X"\ntype = "nosuchtype"\n'
    manifest.write_text(text)
    result = run_check(site)
    assert result.returncode == 3
    out = result.stdout
    assert "types.box.points[0].period: expected a number greater than 0, got str 'fast'" in out
    assert "types.box.points[0].colour: unknown key" in out
    assert "duplicate device id 'B-0-0'" in out
    assert "unknown device type 'nosuchtype'" in out
    assert "Traceback" not in result.stderr


def test_device_bound_to_missing_node(site):
    (site / "site.toml").write_text((site / "site.toml").read_text() + '\n[[devices]]\nid = "GHOST"\ntype = "box"\n')
    errors = errors_of(site)
    assert any("node 'GHOST' is not in the model" in e for e in errors), errors
    with pytest.raises(SiteError):
        open_site(site)


def test_missing_motion_part_is_an_error(site):
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('node = "blade"', 'node = "propeller"'))
    errors = errors_of(site)
    assert any("rotate overlay: no node 'propeller'" in e for e in errors), errors


def test_unbound_model_nodes_are_a_warning_not_an_error(site):
    manifest = site / "site.toml"
    text = manifest.read_text()
    cut = text.index('[[devices]]\nid = "B-1-1"')
    manifest.write_text(text[:cut])
    problems = check_site(site)
    assert not [p for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert any("bound to no device" in w and "B-1-1" in w for w in warnings), warnings
    assert run_check(site).returncode == 0


def test_not_toml(site):
    (site / "site.toml").write_text("[site\nname = ")
    assert "not valid TOML" in errors_of(site)[0]


def test_missing_manifest_and_folder(tmp_path):
    assert "no site.toml" in errors_of(tmp_path)[0]
    assert "site folder not found" in errors_of(tmp_path / "nope")[0]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "model file is empty"),
        (b"glTF\x02\x00\x00\x00\xff\xff\x00\x00garbage", "not a valid glTF file"),
        (b"this is not a model at all" * 10, "not a valid glTF file"),
    ],
)
def test_corrupt_model(site, content, message):
    (site / "model.glb").write_bytes(content)
    errors = errors_of(site)
    assert any(message in e for e in errors), errors
    with pytest.raises(ModelError):
        open_site(site)


def test_missing_model(site):
    (site / "model.glb").unlink()
    assert any("model file not found" in e for e in errors_of(site))


def test_model_path_outside_site(site, tmp_path):
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('model = "model.glb"', 'model = "../elsewhere.glb"'))
    (tmp_path / "elsewhere.glb").write_bytes((site / "model.glb").read_bytes())
    assert any("escapes the site folder" in e for e in errors_of(site))


def _gltf_with_buffer_uri(uri: str) -> str:
    doc = {
        "asset": {"version": "2.0"},
        "buffers": [{"uri": uri, "byteLength": 36}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 36}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "nodes": [{"name": "B-0-0", "mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    return json.dumps(doc)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("../secret.bin", "outside the site folder"),
        ("/etc/hostname", "absolute path"),
        ("http://example.invalid/x.bin", "URIs are refused"),
        ("file:///etc/hostname", "URIs are refused"),
        ("missing.bin", "does not exist"),
    ],
)
def test_gltf_references_must_stay_inside_the_site(site, tmp_path, uri, message):
    (tmp_path / "secret.bin").write_bytes(struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0))
    (site / "model.gltf").write_text(_gltf_with_buffer_uri(uri))
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('model = "model.glb"', 'model = "model.gltf"'))
    errors = errors_of(site)
    assert any(message in e for e in errors), errors


def test_gltf_with_a_buffer_inside_the_site_loads(site):
    (site / "tri.bin").write_bytes(struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0))
    (site / "model.gltf").write_text(_gltf_with_buffer_uri("tri.bin"))
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('model = "model.glb"', 'model = "model.gltf"'))
    # The grid's devices are not in this one-triangle model: only binding errors remain, no model errors.
    errors = errors_of(site)
    assert errors and all("is not in the model" in e or "rotate overlay" in e for e in errors), errors
    assert any("B-0-0" in e for e in errors)


def test_oversized_model_is_refused_before_parsing(site, monkeypatch):
    from twinview.site import model as model_module

    monkeypatch.setattr(model_module, "MAX_MODEL_BYTES", 1024)
    assert any("above the" in e and "limit" in e for e in errors_of(site))


def test_unsupported_format(site):
    (site / "model.fbx").write_bytes(b"x" * 100)
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('model = "model.glb"', 'model = "model.fbx"'))
    assert any("unsupported model format" in e for e in errors_of(site))


def test_render_cli_reports_broken_site_without_traceback(site, tmp_path):
    (site / "model.glb").write_bytes(b"broken")
    result = subprocess.run(
        [sys.executable, "-m", "twinview.cli", "render", str(site), "--out", str(tmp_path / "x.png")],
        capture_output=True, text=True,
    )
    assert result.returncode == 3
    assert "model.glb" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
