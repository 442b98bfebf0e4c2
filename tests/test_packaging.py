"""The wheel ships every module, shader, demo asset and web file, and the layer contract holds on it.

Builds the wheel once (no build isolation, no network: a few seconds) from a
staged copy of the source with a few probe files added in nested folders, so the
package-data globs are tested even before the real data grows subfolders.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Source path -> where it must land in the wheel.
PROBES = {
    "viewer/shaders/probe_nested/probe.wgsl": "twinview/shaders/probe_nested/probe.wgsl",  # shaders/, through viewer/
    "viewer/assets/demo/probe_nested/deeper/probe.glb": "twinview/assets/demo/probe_nested/deeper/probe.glb",
    "viewer/web/static/probe_vendor/lib/probe.js": "twinview/web/static/probe_vendor/lib/probe.js",
}


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("twinview_build_wheel", ROOT / "packaging" / "build_wheel.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path, Path, set[str]]:
    """(builder module, staged source, wheel, names in the wheel)."""
    bw = _builder()
    tmp = tmp_path_factory.mktemp("wheel")
    (tmp / "src").mkdir()
    src = bw.stage_source(tmp / "src", ROOT, extra={p: b"probe" for p in PROBES})
    wheel = bw.build_wheel(tmp / "dist", root=src)
    return bw, src, wheel, bw.wheel_names(wheel)


def _lint_imports(site: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    exe_path = str(exe) if exe.exists() else shutil.which("lint-imports")
    assert exe_path, "lint-imports not found: install the test extra (pip install -e '.[test]')"
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [exe_path, "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_wheel_ships_every_module_and_data_file(built) -> None:
    bw, src, wheel, _ = built
    assert bw.problems(wheel, src) == []


def test_package_data_globs_reach_nested_folders(built) -> None:
    names = built[3]
    assert set(PROBES.values()) <= names


def test_wheel_holds_the_layers_and_the_real_data(built) -> None:
    names = built[3]
    for module in ("connectors/__init__.py", "connectors/base.py", "twin/__init__.py", "twin/inbox.py",
                   "site/manifest.py", "shaders/__init__.py", "assets/__init__.py"):
        assert f"twinview/{module}" in names
    shaders = sorted(p.name for p in (ROOT / "shaders").glob("*.wgsl"))
    assert shaders, "the source has no shader"
    assert all(f"twinview/shaders/{name}" in names for name in shaders)
    demo = ROOT / "assets" / "demo"
    for path in (p for p in demo.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        assert f"twinview/{path.relative_to(ROOT).as_posix()}" in names  # assets/ is twinview/assets/


def test_wheel_has_only_twinview_and_its_metadata(built) -> None:
    tops = {name.split("/")[0] for name in built[3]}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"twinview"}


def test_wheel_declares_the_console_script(built) -> None:
    wheel = built[2]
    with zipfile.ZipFile(wheel) as zf:
        entry = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(entry).decode()
    assert "twinview = twinview.cli:main" in text


@pytest.fixture(scope="module")
def installed_layout(built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(built[2]) as zf:
        zf.extractall(site)
    return site


def test_import_contract_holds(installed_layout: Path) -> None:
    result = _lint_imports(installed_layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_contract_catches_the_model_importing_the_view(installed_layout: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(installed_layout, site)
    (site / "twinview" / "twin" / "probe_view_import.py").write_text("import pygfx\n")
    result = _lint_imports(site)
    assert result.returncode != 0
    assert "twinview.twin.probe_view_import" in result.stdout
