"""One rule for where a command's argument starts, on the desktop, the page and in the headset."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_commands_site import write_site

from twinview.twin.commands import initial_from, initial_value

ROOT = Path(__file__).resolve().parent.parent


def test_an_argument_starts_at_its_default_else_at_what_the_device_reports_else_nowhere(tmp_path):
    site = write_site(tmp_path / "site")
    pump = site.device("P-101")
    set_speed = next(c for c in pump.commands if c.name == "set_speed")
    mode = next(c for c in pump.commands if c.name == "mode")
    speed = set_speed.args[0]
    assert speed.default is None and initial_from(set_speed, speed) == set_speed.success_point
    assert initial_value(set_speed, speed, {set_speed.success_point: 1200.0}.get) == 1200.0
    assert initial_value(set_speed, speed, {}.get) is None  # never a silent 0 that would stop the pump
    assert initial_value(mode, mode.args[0], {}.get) == "auto"  # a declared default wins


def test_the_page_and_headset_follow_the_same_rule():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    module = (ROOT / "viewer" / "web" / "static" / "format.js").as_uri()
    cmd = {"name": "set_speed", "label": "Set speed", "args": [
        {"name": "speed", "kind": "number", "min": 0, "max": 3000, "states": [], "default": None, "from_point": "speed"}]}
    script = (f"import('{module}').then(m => console.log(JSON.stringify(["
              f"m.commandVariants({json.dumps(cmd)}, {{speed: {{v: 2750, q: 'good'}}}}),"
              f"m.commandVariants({json.dumps(cmd)}, {{}})])))")
    known, unknown = json.loads(subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                                               text=True, check=True, timeout=60).stdout)  # fmt: skip
    assert known[0]["args"] == {"speed": 2750} and known[0]["label"] == "Set speed (2750)"
    assert unknown[0]["disabled"] and "(0)" not in unknown[0]["label"]  # the headset offers no "Set speed (0)"
