"""Shared fixtures: a small plant site (real manifest parsing), the demo site when present,
a real mosquitto broker, and a render-loop stand-in that drains an Inbox into a TwinState."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/broker.py

from broker import LocalBroker, require_mosquitto  # noqa: E402

from twinview.site.manifest import Site, load_manifest  # noqa: E402
from twinview.twin.events import DevicesChanged  # noqa: E402
from twinview.twin.runtime import Runtime  # noqa: E402

DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo"

PLANT_TOML = """
[site]
name = "Test plant"
model = "plant.glb"
topic_prefix = "plant"
stale_factor = 3.0

[types.pump]
points = [
  { id = "state", kind = "enum", states = ["stopped", "running", "fault"], alarm_states = ["fault"], period = 1 },
  { id = "speed", unit = "rpm", range = [0, 3000], period = 1 },
  { id = "pressure", unit = "bar", range = [0, 10], alarm = [0, 8], period = 1 },
  { id = "motor_temp", unit = "°C", range = [0, 150], alarm = [0, 95], period = 2 },
]
overlays = [
  { kind = "color", point = "state", states = { stopped = "#808080", running = "#22cc44", fault = "#ee2222" } },
  { kind = "rotate", point = "speed", node = "rotor", range = [0, 3000], to = [0, 5] },
  { kind = "label", points = ["speed", "pressure"] },
]
commands = [
  { name = "start", success = { point = "state", equals = "running" } },
  { name = "stop", success = { point = "state", equals = "stopped" } },
  { name = "set_speed", args = [{ name = "speed", min = 0, max = 3000 }], success = { point = "speed", equals = "$speed", tolerance = 50 } },
]

[types.tank]
points = [
  { id = "level", unit = "%", range = [0, 100], alarm = [5, 95], period = 2 },
  { id = "temperature", unit = "°C", range = [0, 100], period = 5 },
  { id = "drain", kind = "bool", period = 2 },
]
overlays = [
  { kind = "color", point = "level", map = "blues", range = [0, 100] },
  { kind = "scale", point = "level", node = "fill", range = [0, 100], to = [0, 1] },
  { kind = "label", points = ["level"], format = "{level:.0f} %" },
]
commands = [
  { name = "open_drain", success = { point = "drain", equals = true } },
  { name = "close_drain", success = { point = "drain", equals = false } },
]

[types.valve]
points = [{ id = "position", unit = "%", range = [0, 100], period = 1 }]
overlays = [{ kind = "color", point = "position", stops = [[0, "#cc3333"], [50, "#33cc33"]] }]
commands = [
  { name = "open", success = { point = "position", equals = 100, tolerance = 1 } },
  { name = "close", success = { point = "position", equals = 0, tolerance = 1 } },
  { name = "set_position", args = [{ name = "position", min = 0, max = 100 }], success = { point = "position", equals = "$position", tolerance = 1 } },
]

[types.fan]
points = [
  { id = "running", kind = "bool", period = 1 },
  { id = "speed", unit = "rpm", range = [0, 1500], period = 1 },
]
overlays = [{ kind = "color", point = "running", states = { "true" = "#22cc44", "false" = "#808080" } }]
commands = [
  { name = "start", success = { point = "running", equals = true } },
  { name = "stop", success = { point = "running", equals = false } },
  { name = "set_speed", args = [{ name = "speed", min = 0, max = 1500 }], success = { point = "speed", equals = "$speed", tolerance = 30 } },
]

[types.hvac]
points = [
  { id = "supply_temp", unit = "°C", range = [5, 40], period = 2 },
  { id = "return_temp", unit = "°C", range = [5, 40], period = 2 },
  { id = "fan_running", kind = "bool", period = 2 },
]
overlays = [{ kind = "color", point = "supply_temp", map = "coolwarm", range = [10, 30] }]

[types.conveyor]
points = [
  { id = "running", kind = "bool", period = 1 },
  { id = "speed", unit = "m/s", range = [0, 2], period = 1 },
  { id = "items", range = [0, 100000], period = 2 },
]

[types.sensor]
points = [
  { id = "flow", unit = "m³/h", range = [0, 200], period = 1 },
  { id = "pressure", unit = "bar", range = [0, 16], alarm = [1, 12], period = 1 },
  { id = "temperature", unit = "°C", range = [-20, 120], period = 2 },
  { id = "vibration", unit = "mm/s", range = [0, 50], alarm = [0, 20], period = 1 },
]
overlays = [{ kind = "color", point = "vibration", map = "traffic", range = [0, 25] }]

[types.mixer]
points = [
  { id = "rpm", range = [0, 600], period = 1 },
  { id = "mode", kind = "enum", states = ["auto", "manual", "blocked"], alarm_states = ["blocked"], period = 2 },
  { id = "enabled", kind = "bool", period = 2 },
]

[[devices]]
id = "P-101"
type = "pump"
area = "water"

[[devices]]
id = "P-102"
type = "pump"
area = "water"

[[devices]]
id = "T-101"
type = "tank"
area = "water"

[[devices]]
id = "V-101"
type = "valve"

[[devices]]
id = "F-201"
type = "fan"

[[devices]]
id = "H-301"
type = "hvac"

[[devices]]
id = "C-401"
type = "conveyor"

[[devices]]
id = "S-501"
type = "sensor"

[[devices]]
id = "X-601"
type = "mixer"

[[devices]]
id = "S-502"
type = "sensor"
points = [
  { id = "flow", unit = "m³/h", range = [0, 200], period = 1, topic = "custom/line1/telemetry", json_value = "data.flow", json_time = "data.t" },
  { id = "pressure", unit = "bar", range = [0, 16], period = 1, topic = "custom/line1/telemetry", json_value = "data.pressure", json_time = "data.t" },
]
"""
# Every command has a success block: the manifest parser (viewer/site/manifest.py) currently
# raises KeyError for a command without one.


def load_plant(root: Path) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.toml").write_text(PLANT_TOML, encoding="utf-8")
    site, _warnings = load_manifest(root)
    return site


@pytest.fixture(scope="session")
def plant(tmp_path_factory) -> Site:
    """A small site with one device of every demo type plus an unknown type and custom topics."""
    return load_plant(tmp_path_factory.mktemp("plant"))


@pytest.fixture(scope="session")
def demo_site(plant) -> Site:
    """The shipped demo site when it exists, else the small test plant."""
    if (DEMO_DIR / "site.toml").is_file():
        site, _ = load_manifest(DEMO_DIR)
        return site
    return plant


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on 127.0.0.1 (free port, persistence on); killed at the end."""
    require_mosquitto()
    b = LocalBroker(workdir=tmp_path / "broker").start()
    yield b
    b.close()


class _Sink:
    """What a connector under test is started with: keeps every event, hands it to the runtime."""

    def __init__(self, loop: "Loop"):
        self.loop = loop

    def put(self, event) -> None:
        self.loop.events.append(event)
        self.loop.runtime.submit(event, "test")


class Loop:
    """The tests' host: a runtime stepped by hand, frame by frame, with a sink for connectors."""

    def __init__(self, site: Site, **state_options):
        self.runtime = Runtime(site, **state_options)
        self.inbox = _Sink(self)
        self.events: list = []
        self.changed: set[int] = set()
        self.runtime.events.subscribe(DevicesChanged, lambda e: self.changed.update(e.devices.tolist()))

    @property
    def state(self):
        return self.runtime.state

    def frame(self, now: float | None = None) -> set[int]:
        return set(self.runtime.step(time.time() if now is None else now).tolist())

    def run_until(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.frame()
            if predicate():
                return True
            time.sleep(0.01)
        self.frame()
        return bool(predicate())


@pytest.fixture
def make_loop():
    return Loop
