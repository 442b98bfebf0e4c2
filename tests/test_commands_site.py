"""The small plant the command tests share (a pump and a tank), and checks of its command definitions."""

from __future__ import annotations

from pathlib import Path

from twinview.connectors.base import Sample
from twinview.site.manifest import Site, load_manifest
from twinview.twin.commands import TwinStateReader, check_command
from twinview.twin.state import TwinState

MANIFEST = """
[site]
name = "Command plant"
model = "model.glb"
topic_prefix = "plant"

[types.pump]
label = "Pump"

[[devices]]
id = "P-101"
type = "pump"
name = "Feed pump"

[[devices.points]]
id = "speed"
unit = "%"
range = [0, 100]
period = 0.5

[[devices.points]]
id = "setpoint"
unit = "%"
range = [0, 100]
period = 0.5

[[devices.points]]
id = "running"
kind = "bool"
period = 0.5

[[devices.points]]
id = "level"
unit = "%"
range = [0, 100]
period = 0.5

[[devices.commands]]
name = "set_speed"
label = "Set speed"
role = "operator"
interlock = "level > 10"
interlock_text = "the feed tank is too low"
timeout = 3
expiry = 5
[[devices.commands.args]]
name = "speed"
kind = "number"
min = 0
max = 100
[devices.commands.success]
point = "setpoint"
equals = "$speed"
tolerance = 0.5

[[devices.commands]]
name = "start"
confirm = true
timeout = 3
expiry = 5
[devices.commands.success]
point = "running"
equals = true

[[devices.commands]]
name = "stop"
timeout = 3
expiry = 5
[devices.commands.success]
point = "running"
equals = false

[[devices.commands]]
name = "reset"
role = "admin"
timeout = 3
expiry = 5

[[devices.commands]]
name = "mode"
timeout = 3
expiry = 2
[[devices.commands.args]]
name = "mode"
kind = "enum"
states = ["auto", "manual"]
default = "auto"
[[devices.commands.args]]
name = "ramp"
kind = "bool"
default = false
"""


def write_site(root: Path, manifest: str = MANIFEST) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.toml").write_text(manifest)
    site, _ = load_manifest(root)
    return site


class Plant:
    """A real TwinState for the site, fed with Samples as a connector would."""

    def __init__(self, site: Site):
        self.site = site
        self.state = TwinState(site)
        self.reader = TwinStateReader(self.state)

    def report(self, now: float, device: str = "P-101", **values) -> set[int]:
        """Apply reported values; returns the devices whose state changed (as the runtime tells the service)."""
        rows = self.state.apply([Sample(device, point, value, now) for point, value in values.items()])
        return set(self.state.table.device[rows].tolist())


def test_the_shared_site_has_valid_commands(tmp_path):
    site = write_site(tmp_path / "site")
    pump = site.device("P-101")
    assert [c.name for c in pump.commands] == ["set_speed", "start", "stop", "reset", "mode"]
    assert all(check_command(pump, c) == [] for c in pump.commands)


def test_check_command_reports_bad_interlocks_and_success_values(tmp_path):
    bad = MANIFEST.replace('interlock = "level > 10"', 'interlock = "levle > 10 or __import__(1)"').replace(
        'equals = "$speed"', 'equals = "$sped"'
    )
    site = write_site(tmp_path / "site", bad)
    pump = site.device("P-101")
    errors = check_command(pump, pump.commands[0])
    assert any("calls are not allowed" in e for e in errors)
    assert any("$sped" in e for e in errors)
    site2 = write_site(tmp_path / "site2", MANIFEST.replace('interlock = "level > 10"', 'interlock = "levle > 10"'))
    errors2 = check_command(site2.device("P-101"), site2.device("P-101").commands[0])
    assert errors2 == ["interlock: unknown point 'levle'"]
