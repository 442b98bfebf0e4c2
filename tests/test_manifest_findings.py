"""Manifest findings from a model nobody here made: each cause said once, scenery declared in the manifest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestgen import nested_site
from sitegen import grid_site

from twinview.site import check_site, open_site


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    return grid_site(tmp_path_factory.mktemp("grid"), rows=2, cols=2)


@pytest.fixture
def site(grid, tmp_path) -> Path:
    shutil.copytree(grid, tmp_path / "site")
    return tmp_path / "site"


def problems_of(site: Path, severity: str) -> list[str]:
    return [str(p) for p in check_site(site) if p.severity == severity]


def test_an_invalid_colour_map_in_a_type_is_reported_once(site):
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('map = "heat"', 'map = "rainbow"'))
    errors = problems_of(site, "error")
    assert len(errors) == 1, errors  # four devices of that type, one cause
    assert "types.box.overlays[0].map: expected one of 'viridis'" in errors[0] and "'rainbow'" in errors[0]
    assert not any("needs map" in e for e in errors)


def test_a_type_overlay_problem_is_placed_at_the_type_once(site):
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('point = "temp"\nmap = "heat"\nrange = [0, 100]', 'point = "temp"'))
    errors = problems_of(site, "error")
    assert errors == [f"error: {site.resolve() / 'site.toml'}: types.box.overlays[0]: a colour overlay needs map (with range), stops or states"]


def test_a_device_overlay_keeps_its_own_index(site):
    manifest = site / "site.toml"
    text = manifest.read_text().replace('id = "B-0-0"\ntype = "box"', 'id = "B-0-0"\ntype = "box"\noverlays = [{ kind = "color", point = "temp" }]')
    manifest.write_text(text)
    errors = problems_of(site, "error")
    assert len(errors) == 1 and "devices[0] (B-0-0).overlays[0]: a colour overlay needs map" in errors[0], errors


def test_scenery_globs_silence_the_unbound_warning(tmp_path):
    root = nested_site(tmp_path / "nest")
    warnings = problems_of(root, "warning")
    assert any("bound to no device: Yard" in w and "scenery" in w for w in warnings), warnings
    manifest = root / "site.toml"
    manifest.write_text('scenery = ["Ya*"]\n' + manifest.read_text())
    assert problems_of(root, "warning") == []
    manifest.write_text(manifest.read_text().replace('scenery = ["Ya*"]\n', "").replace('model = "model.glb"', 'model = "model.glb"\nscenery = ["Yard", "Fence*"]'))
    warnings = problems_of(root, "warning")
    assert len(warnings) == 1 and "scenery[1]: pattern 'Fence*' matches no node in the model" in warnings[0], warnings


def test_a_site_with_no_devices_warns_and_names_the_unclaimed_geometry(tmp_path):
    root = nested_site(tmp_path / "empty")
    manifest = root / "site.toml"
    manifest.write_text(manifest.read_text().split("[[devices]]")[0])
    result = subprocess.run([sys.executable, "-m", "twinview.cli", "check", str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "devices: the site has no devices" in result.stdout
    assert "5 model node(s) with geometry are bound to no device: Line, Motor1, Pump1, Pump2, Yard" in result.stdout
    loaded = open_site(root)
    assert loaded.site.devices == ()
    assert len(loaded.warnings) == 2


def test_scenery_must_be_a_list_of_patterns(site):
    manifest = site / "site.toml"
    manifest.write_text(manifest.read_text().replace('topic_prefix = "grid"', 'topic_prefix = "grid"\nscenery = "Yard"'))
    errors = problems_of(site, "error")
    assert len(errors) == 1 and "site.scenery: expected a list of strings" in errors[0], errors
