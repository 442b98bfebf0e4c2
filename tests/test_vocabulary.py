"""One vocabulary: flags, qualities and command states are defined once and every copy is pinned to it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from twinview.twin import vocabulary
from twinview.twin.vocabulary import CommandState, DeviceFlag, Quality

ROOT = Path(__file__).resolve().parent.parent


def test_generated_copies_match_the_definitions():
    files = vocabulary.generated_files()
    assert {p.name for p in files} == {"vocabulary.wgsl", "vocabulary.js"}
    for path, text in files.items():
        assert path.read_text() == text, f"{path} is out of date: run python -m twinview.twin.vocabulary --write"
    assert vocabulary.main([]) == 0


def test_a_changed_definition_is_caught(monkeypatch, tmp_path):
    monkeypatch.setattr(vocabulary, "wgsl", lambda: "const FLAG_SELECTED: u32 = 2u;\n")
    assert vocabulary.main([]) == 1  # the check the test above relies on does fail when a copy disagrees


def test_shader_and_page_use_the_generated_names_only():
    shader = (ROOT / "shaders" / "site.wgsl").read_text()
    assert "const FLAG_" not in shader and "FLAG_STALE" in shader  # uses the names, defines none
    for js in (ROOT / "viewer" / "web" / "static").glob("*.js"):
        if js.name == "vocabulary.js":
            continue
        text = js.read_text()
        assert "SELECTED: 1" not in text and "PENDING: 64" not in text, f"{js.name} defines flags of its own"
    looks = (ROOT / "viewer" / "web" / "static" / "looks.js").read_text()
    assert "from './vocabulary.js'" in looks


def test_the_page_reads_the_same_numbers_as_python():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    module = (ROOT / "viewer" / "web" / "static" / "vocabulary.js").as_uri()
    script = f"import('{module}').then(m => console.log(JSON.stringify({{flags: m.FLAGS, quality: m.QUALITY, " \
             "labels: m.QUALITY_LABELS, states: m.COMMAND_STATES, final: [...m.FINAL_COMMAND_STATES]})))"
    out = json.loads(subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)
    assert out["flags"] == {f.name: int(f) for f in DeviceFlag}
    assert out["quality"] == {q.name: int(q) for q in Quality}
    assert out["labels"] == [q.label for q in Quality]
    assert out["states"] == {s.name: s.value for s in CommandState}
    assert set(out["final"]) == {s.value for s in vocabulary.FINAL_COMMAND_STATES}


def test_no_data_is_one_word_everywhere():
    assert Quality.NONE.label == "no data"
    panels = (ROOT / "viewer" / "app" / "live_panels.py").read_text()
    assert '"none"' not in panels  # the status panel counts the same key the twin produces


def test_the_desktop_colours_every_command_state():
    pytest.importorskip("imgui_bundle")
    from twinview.app.command_panel import STATE_COLORS

    missing = [s.value for s in CommandState if s.value not in STATE_COLORS]
    assert not missing, f"the command panel has no colour for {missing}"
    assert STATE_COLORS["unverified"] not in (STATE_COLORS["confirmed"], STATE_COLORS["failed"])


def test_the_page_glows_an_alarm_with_the_desktop_shaders_severity_colour():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    shader = (ROOT / "shaders" / "site.wgsl").read_text()
    module = (ROOT / "viewer" / "web" / "static" / "looks.js").as_uri()
    a, u = int(DeviceFlag.ALARM), int(DeviceFlag.ALARM_UNACK)
    shift = vocabulary.ALARM_SEVERITY_SHIFT
    cases = {"critical_unack": (a | u | 3 << shift, 0.1), "high_acked": (a | 2 << shift, 0.1),
             "medium_unack_off": (a | u | 1 << shift, 0.5), "low_returned": (u, 0.1), "none": (0, 0.1)}  # fmt: skip
    script = (f"import('{module}').then(m => console.log(JSON.stringify(Object.fromEntries("
              f"Object.entries({json.dumps(cases)}).map(([k, [f, t]]) => {{ const g = m.alarmGlow(f, t);"
              " return [k, g && [g.color.r, g.color.g, g.color.b, g.strength]]; })))))")
    run = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                         cwd=ROOT / "viewer" / "web")  # fmt: skip
    if run.returncode and "Cannot find package 'three'" in run.stderr:
        pytest.skip("three.js is not installed (npm ci in viewer/web)")
    out = json.loads(run.stdout)
    assert out["none"] is None
    assert out["critical_unack"] == pytest.approx([1.0, 0.0123, 0.007, 0.6])  # blinking, on
    assert out["high_acked"] == pytest.approx([1.0, 0.216, 0.0, 0.45])  # steady
    assert out["medium_unack_off"][3] == 0  # the blink's off half
    assert out["low_returned"] == pytest.approx([0.0, 0.6, 0.9, 0.25])  # returned, not acknowledged: faint
    for r, g, b, _ in (out["critical_unack"], out["high_acked"], out["low_returned"]):
        assert f"{r:.1f}" in shader and (f"{g:g}" in shader or g in (0.0, 1.0))  # the same numbers as the desktop
