"""Models nobody here made: a broken file is one clear line and a non-zero exit from every entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gltfgen import TRIANGLE, glb_bytes, triangle_doc, write_site

from twinview.site import ModelError, check_site, open_site

CYCLE = [{"name": "A", "mesh": 0, "children": [1]}, {"name": "B", "children": [0]}]


def twinview(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, RENDERCANVAS_FORCE_OFFSCREEN="1", PYGFX_DEFAULT_PPAA="none")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "twinview.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def cycle_site(tmp_path) -> Path:
    return write_site(tmp_path / "cycle", triangle_doc(CYCLE, [0]))


def test_check_site_reports_a_cycle_without_raising(cycle_site):
    problems = check_site(cycle_site)
    assert [p.severity for p in problems] == ["error"]
    assert "node graph has a cycle" in problems[0].message
    with pytest.raises(ModelError, match="cycle"):
        open_site(cycle_site)


@pytest.mark.parametrize("entry", ["check", "render", "open", "serve", "export-xr"])
def test_every_entry_point_says_one_line_for_a_cycle(cycle_site, tmp_path, entry):
    extra = {"render": ["--out", str(tmp_path / "x.png")], "export-xr": [str(tmp_path / "bundle")],
             "open": ["--screenshot", str(tmp_path / "x.png")], "serve": ["--port", "0"]}.get(entry, [])  # fmt: skip
    result = twinview(entry, str(cycle_site), *extra)
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    assert "node 0 ('A') is its own ancestor: the node graph has a cycle" in errors[0]
    if entry != "check":  # check adds its summary line; the others say exactly one thing
        assert out.strip().splitlines() == errors, out


def test_a_lying_accessor_count_is_said_in_the_files_terms(tmp_path):
    site = write_site(tmp_path / "huge", triangle_doc([{"name": "A", "mesh": 0}], [0], count=2_000_000_000))
    result = twinview("check", str(site))
    assert result.returncode == 3
    assert "accessor 0 claims 2000000000 vertices (VEC3 float, 24000000000 bytes) but its bufferView 0 holds 36 bytes" in result.stdout
    assert "reshape" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "doc, message",
    [
        (triangle_doc([{"name": "A", "mesh": 0, "children": [0]}], [0]), "node 0 ('A') is its own child"),
        (triangle_doc([{"name": "A", "mesh": 0, "children": [2]}, {"name": "B", "children": [2]}, {"name": "C"}], [0, 1]),
         "node 2 ('C') is a child of both node 0 ('A') and node 1 ('B')"),
        (triangle_doc([{"name": "A", "mesh": 0, "children": [7]}], [0]), "node 0 ('A') child is 7, expected a whole number from 0 to 0"),
        (triangle_doc([{"name": "A", "mesh": 0, "children": [1]}, {"name": "B", "mesh": 0}], [0, 1]),
         "scene 0 lists node 1 ('B') as a root, but it is a child of node 0 ('A')"),
        (triangle_doc([{"name": "A", "mesh": 3}], [0]), "node 0 ('A') mesh is 3"),
        (triangle_doc([{"name": "A", "mesh": 0}], [0], declared=4096), "buffer 0 declares 4096 bytes but holds 36"),
    ],
    ids=["self-child", "two-parents", "bad-child", "root-is-child", "bad-mesh", "short-buffer"],
)
def test_inconsistent_structure_is_refused_before_parsing(tmp_path, doc, message):
    problems = check_site(write_site(tmp_path / "s", doc))
    assert len(problems) == 1 and problems[0].severity == "error", problems
    assert message in problems[0].message


def test_glb_accessor_is_checked_against_its_binary_chunk(tmp_path):
    doc = triangle_doc([{"name": "A", "mesh": 0}], [0], count=100)
    doc["buffers"] = [{"byteLength": 36}]
    site = write_site(tmp_path / "glb", glb_bytes(doc, TRIANGLE), name="model.glb")
    problems = check_site(site)
    assert "accessor 0 claims 100 vertices (VEC3 float, 1200 bytes) but its bufferView 0 holds 36 bytes" in problems[0].message
    doc["accessors"][0]["count"] = 3
    (site / "model.glb").write_bytes(glb_bytes(doc, TRIANGLE))
    assert [p for p in check_site(site) if p.severity == "error"] == []


def test_a_cycle_the_scene_never_reaches_is_refused(tmp_path):
    doc = triangle_doc([{"name": "A", "mesh": 0}, {"name": "B", "children": [2]}, {"name": "C", "mesh": 0, "children": [1]}], [0])
    problems = check_site(write_site(tmp_path / "s", doc))
    assert len(problems) == 1 and "node 1 ('B') is its own ancestor: the node graph has a cycle" in problems[0].message


@pytest.mark.parametrize("where", ["manifest", "model"])
def test_nesting_too_deep_to_read_is_one_line(tmp_path, where):
    deep = "[" * 100_000 + "]" * 100_000
    site = write_site(tmp_path / "deep", triangle_doc([{"name": "A", "mesh": 0}], [0]))
    if where == "manifest":
        (site / "site.toml").write_text(f"a = {deep}\n")
    else:
        (site / "model.gltf").write_text('{"asset": ' + deep + "}")
    result = twinview("check", str(site))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nested too deeply to read" in errors[0], result.stdout


def test_a_sparse_accessor_that_claims_more_than_it_holds_is_refused(tmp_path):
    doc = triangle_doc([{"name": "A", "mesh": 0}], [0])
    doc["accessors"][0]["sparse"] = {"count": 1_000_000, "indices": {"bufferView": 0, "componentType": 5125},
                                     "values": {"bufferView": 0}}  # fmt: skip
    problems = check_site(write_site(tmp_path / "s", doc))
    assert len(problems) == 1 and "accessor 0 replaces 1000000 elements sparsely but has only 3" in problems[0].message
    doc["accessors"][0]["sparse"]["count"] = 3
    doc["accessors"][0]["count"] = 3
    doc["bufferViews"][0]["byteLength"] = 36
    doc["accessors"][0]["sparse"]["count"] = 2
    doc["accessors"][0]["sparse"]["indices"]["byteOffset"] = 30
    problems = check_site(write_site(tmp_path / "t", doc))
    assert len(problems) == 1 and "sparse indices claim 2 elements but bufferView 0 holds 36 bytes" in problems[0].message


def test_a_node_chain_thousands_deep_is_refused_before_the_parser_crawls(tmp_path):
    """trimesh takes minutes on a 20,000-deep chain (its path search per node is quadratic)."""
    import time

    n = 20_000
    nodes = [{"name": f"N{i}", "mesh": 0, "children": [i + 1]} for i in range(n - 1)] + [{"name": "last", "mesh": 0}]
    t0 = time.monotonic()
    problems = check_site(write_site(tmp_path / "chain", triangle_doc(nodes, [0])))
    assert time.monotonic() - t0 < 30
    assert len(problems) == 1 and "node 257 ('N257') is nested 257 levels deep; at most 256 levels are read" in problems[0].message
