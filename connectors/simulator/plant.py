"""The embedded plant simulator: plausible values for every point of a site, and commands that act.

Devices are grouped by type and simulated as numpy arrays, so a 20,000-device
site costs a few vector operations per step plus one Sample per published value.
Known types (pump, tank, valve, fan, hvac, conveyor, sensor) have simple physics;
points are bound to it by name (e.g. "speed", "motor_temp", "state"), and any
point or type the simulator does not know gets a mean-reverting random walk
inside its range (bool: rare flips; enum: rare state changes).

Physics works in fractions 0..1 of each point's range (or the command argument's
min..max, or 0..100 when neither is given), so any manifest's units fit.

Faults keep a demo honest: now and then a running pump trips to "fault" for a
while, a device falls silent (its points go stale) or reports itself offline.
`fault_interval` is the mean number of seconds between such events site-wide.

step(now) is deterministic for a given seed and sequence of `now`; start(sink)
runs it on a thread. `rate` multiplies how often points publish (1.0: once per
point period).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from typing import Any, Callable

import numpy as np

from twinview.site.manifest import Device, PointSpec, Site
from twinview.connectors.base import Availability, Connector, Event, LinkState, Sample, Sink
from twinview.twin.points import PointTable
from twinview.twin.samples import SampleBatch

DEFAULT_RANGE = (0.0, 100.0)
_TOKEN = re.compile(r"[^a-z0-9]+")

# Model state name -> words a manifest may use for it.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "stopped": ("stopped", "stop", "off", "idle", "standby", "halted", "ready"),
    "running": ("running", "run", "on", "started", "active", "operating", "auto"),
    "fault": ("fault", "faulted", "error", "alarm", "trip", "tripped", "failed", "failure"),
    "closed": ("closed", "close", "shut"),
    "open": ("open", "opened"),
    "moving": ("moving", "travel", "travelling", "partial", "intermediate", "opening", "closing"),
}


def _tokens(name: str) -> list[str]:
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return [t for t in _TOKEN.split(name.lower()) if t]


def _matches(name: str, keywords: tuple[str, ...]) -> bool:
    for token in _tokens(name):
        for kw in keywords:
            if token == kw or (len(kw) >= 3 and token.startswith(kw)):
                return True
    return False


def _range(spec: PointSpec | None) -> tuple[float, float]:
    if spec is not None and spec.range is not None:
        return spec.range
    return DEFAULT_RANGE


# --- models -------------------------------------------------------------------------


class _Model:
    """Devices of one type, simulated together. Subclasses add physics and bindings."""

    kind = "generic"
    NUMERIC: tuple[tuple[tuple[str, ...], str], ...] = ()
    BOOL: tuple[tuple[tuple[str, ...], str], ...] = ()
    ENUM: tuple[tuple[tuple[str, ...], str], ...] = ()
    STATE_NAMES: tuple[str, ...] = ()
    ABS: frozenset[str] = frozenset()  # channels in absolute units, not fractions
    WRAP: frozenset[str] = frozenset()  # absolute counters that wrap around at the top of the range
    CELSIUS: frozenset[str] = frozenset()  # absolute channels in °C (converted for °F points)

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        self.devices = devices
        self.n = len(devices)
        self.rng = rng
        self.ranges: dict[str, list[tuple[float, float] | None]] = {}
        self.noise = np.zeros(self.n)

    def bind(self, spec: PointSpec) -> tuple[str, str] | None:
        """(mode, channel) for a point, or None to leave it to the generic walk."""
        table = {"number": self.NUMERIC, "bool": self.BOOL, "enum": self.ENUM}[spec.kind]
        for keywords, channel in table:
            if _matches(spec.id, keywords):
                mode = {"number": "abs" if channel in self.ABS else "frac", "bool": "bool", "enum": "enum"}[spec.kind]
                return mode, channel
        return None

    def get(self, channel: str, idx: np.ndarray) -> np.ndarray:
        return getattr(self, "ch_" + channel)(idx)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        self.noise = self.rng.normal(0.0, 0.01, self.n)

    def command(self, j: int, name: str, args: dict) -> tuple[bool, str] | None:
        return None

    # helpers for subclasses
    def _frac_arg(self, j: int, channel: str, args: dict, names: tuple[str, ...], command: str) -> float | str:
        """A command argument as a fraction of the channel's range, or an error text."""
        value = _number_arg(args, names)
        if value is None:
            return "needs a numeric argument"
        lo, hi = self._range_for(j, channel, command, names)
        frac = (value - lo) / (hi - lo)
        if not -1e-9 <= frac <= 1 + 1e-9:
            return f"{value:g} is outside {lo:g}..{hi:g}"
        return min(1.0, max(0.0, frac))

    def _range_for(self, j: int, channel: str, command: str, names: tuple[str, ...]) -> tuple[float, float]:
        bound = self.ranges.get(channel)
        if bound is not None and bound[j] is not None:
            return bound[j]  # type: ignore[return-value]
        for spec in self.devices[j].commands:
            if spec.name == command:
                for arg in spec.args:
                    if arg.min is not None and arg.max is not None and arg.max > arg.min:
                        return (arg.min, arg.max)
        return DEFAULT_RANGE


def _ramp(x: np.ndarray, target: np.ndarray, rate: float, dt: float) -> None:
    """Move x toward target by at most rate*dt (in place): reaches it exactly."""
    x += np.clip(target - x, -rate * dt, rate * dt)


def _relax(x: np.ndarray, target: np.ndarray, tau: float, dt: float) -> None:
    x += (target - x) * (1.0 - math.exp(-dt / tau))


def _number_arg(args: dict, names: tuple[str, ...]) -> float | None:
    for name in names:
        v = args.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    for v in args.values():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


_START = ("start", "run", "on", "turn_on", "switch_on", "enable", "fan_on", "start_fan")
_STOP = ("stop", "off", "turn_off", "switch_off", "disable", "fan_off", "stop_fan")
_SPEED_ARGS = ("speed", "rpm", "value", "setpoint", "percent")


class _Motor(_Model):
    """Something that runs at a speed: shared by pumps, fans and conveyors."""

    STATE_NAMES = ("stopped", "running", "fault")
    RAMP = 0.25  # fraction of full speed per second
    SPEED_CMDS = ("set_speed", "speed", "set_rpm", "setpoint", "set_setpoint", "set_frequency")

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        n = self.n
        self.running = rng.random(n) < 0.85
        self.fault = np.zeros(n, bool)
        self.fault_until = np.zeros(n)
        self.setpoint = rng.uniform(0.55, 0.8, n)
        self.speed = np.where(self.running, self.setpoint, 0.0)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        cleared = self.fault & (self.fault_until <= now)
        self.fault[cleared] = False  # a field operator reset it; it restarts if it was running
        target = np.where(self.running & ~self.fault, self.setpoint, 0.0)
        _ramp(self.speed, target, self.RAMP, dt)

    def trip(self, j: int, now: float, duration: float) -> None:
        self.fault[j] = True
        self.fault_until[j] = now + duration

    def ch_state(self, idx: np.ndarray) -> np.ndarray:
        return np.where(self.fault[idx], 2, np.where(self.running[idx], 1, 0))

    def ch_running(self, idx: np.ndarray) -> np.ndarray:
        return self.running[idx] & ~self.fault[idx]

    def ch_fault(self, idx: np.ndarray) -> np.ndarray:
        return self.fault[idx]

    def ch_speed(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.speed[idx] + np.where(self.speed[idx] > 0.01, self.noise[idx] * 0.3, 0.0), 0, 1)

    def ch_setpoint(self, idx: np.ndarray) -> np.ndarray:
        return self.setpoint[idx]

    def ch_load(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.speed[idx] ** 2 * 0.9 + np.abs(self.noise[idx]), 0, 1)

    def command(self, j: int, name: str, args: dict) -> tuple[bool, str] | None:
        if name in _START:
            if self.fault[j]:
                return False, "device is in fault; reset it first"
            self.running[j] = True
            return True, "starting"
        if name in _STOP:
            self.running[j] = False
            return True, "stopping"
        if name in ("reset", "reset_fault", "acknowledge", "ack"):
            if not self.fault[j]:
                return True, "no fault to reset"
            self.fault[j] = False
            return True, "fault reset"
        if name in self.SPEED_CMDS:
            frac = self._frac_arg(j, "speed", args, _SPEED_ARGS, name)
            if isinstance(frac, str):
                return False, frac
            self.setpoint[j] = frac
            return True, "speed setpoint changed"
        return None


class _Pump(_Motor):
    kind = "pump"
    NUMERIC = (
        (("speed", "rpm", "frequency", "freq", "hz"), "speed"),
        (("pressure", "head", "discharge"), "pressure"),
        (("temp", "temperature"), "temp"),
        (("flow", "current", "power", "load", "amps"), "load"),
        (("setpoint", "target"), "setpoint"),
    )
    BOOL = ((("fault", "trip", "tripped", "alarm", "failure"), "fault"), (("running", "run", "on", "active"), "running"))
    ENUM = ((("state", "status", "mode"), "state"),)

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        self.temp = np.where(self.running, 0.25 + 0.4 * self.speed, 0.2) + rng.uniform(0, 0.05, self.n)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        _relax(self.temp, 0.2 + 0.4 * self.speed + 0.35 * self.fault, 40.0, dt)

    def ch_pressure(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.speed[idx] ** 2 * 0.85 + self.noise[idx], 0, 1)

    def ch_temp(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.temp[idx] + self.noise[idx] * 0.3, 0, 1)


class _Fan(_Motor):
    kind = "fan"
    RAMP = 0.3
    NUMERIC = (
        (("speed", "rpm", "frequency", "freq", "hz"), "speed"),
        (("current", "power", "load", "amps", "airflow", "flow"), "load"),
        (("setpoint", "target"), "setpoint"),
    )
    BOOL = ((("fault", "trip", "alarm"), "fault"), (("running", "run", "on", "active"), "running"))
    ENUM = ((("state", "status", "mode"), "state"),)


class _Conveyor(_Motor):
    kind = "conveyor"
    RAMP = 0.4
    ITEMS_PER_SECOND = 2.0  # at full speed
    NUMERIC = (
        (("speed", "velocity", "rate"), "speed"),
        (("items", "count", "parts", "pieces", "total", "throughput"), "items"),
        (("current", "power", "load", "amps"), "load"),
        (("setpoint", "target"), "setpoint"),
    )
    BOOL = ((("fault", "jam", "jammed", "trip", "alarm"), "fault"), (("running", "run", "on", "active"), "running"))
    ENUM = ((("state", "status", "mode"), "state"),)
    ABS = frozenset({"items"})
    WRAP = frozenset({"items"})

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        self.items = np.floor(rng.uniform(0, 500, self.n))
        self._acc = np.zeros(self.n)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        self._acc += self.speed * self.ITEMS_PER_SECOND * dt
        whole = np.floor(self._acc)
        self.items += whole
        self._acc -= whole

    def ch_items(self, idx: np.ndarray) -> np.ndarray:
        return self.items[idx]


class _Tank(_Model):
    kind = "tank"
    NUMERIC = (
        (("level", "volume", "fill", "height"), "level"),
        (("temp", "temperature"), "temp"),
    )
    BOOL = (
        (("drain", "outlet", "discharge"), "drain"),
        (("high", "overflow", "full"), "high"),
        (("low", "empty"), "low"),
    )

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        n = self.n
        self.level = rng.uniform(0.35, 0.65, n)
        self.temp = rng.uniform(0.3, 0.5, n)
        self.temp_mean = self.temp.copy()
        self.drain = np.zeros(n, bool)
        self.pumps: _Pump | None = None
        self.pump_tank = np.zeros(0, np.int64)  # tank index per pump, -1: feeds no tank
        self.feeders = np.zeros(n)
        self.phase = rng.uniform(0, 2 * math.pi, n)

    def connect(self, pumps: _Pump | None) -> None:
        """Decide which pumps fill which tank: meta feeds/target/tank, else the same area, else round robin."""
        self.pumps = pumps
        if pumps is None or self.n == 0:
            return
        index = {d.id: k for k, d in enumerate(self.devices)}
        by_area: dict[str, list[int]] = {}
        for k, d in enumerate(self.devices):
            by_area.setdefault(d.area, []).append(k)
        assign = np.full(pumps.n, -1, np.int64)
        counters: dict[str, int] = {}
        for j, p in enumerate(pumps.devices):
            target = next((p.meta[k] for k in ("feeds", "target", "tank", "to", "outlet") if p.meta.get(k) in index), None)
            if target is not None:
                assign[j] = index[target]
                continue
            pool = by_area.get(p.area) or list(range(self.n))
            c = counters.get(p.area, 0)
            assign[j] = pool[c % len(pool)]
            counters[p.area] = c + 1
        self.pump_tank = assign
        self.feeders = np.bincount(assign[assign >= 0], minlength=self.n).astype(float)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        if self.pumps is not None and self.pumps.n:
            fed = self.pump_tank >= 0
            inflow = np.bincount(self.pump_tank[fed], weights=self.pumps.speed[fed], minlength=self.n)
            inflow = np.where(self.feeders > 0, inflow / np.maximum(self.feeders, 1), 0.0)
        else:
            inflow = np.zeros(self.n)
        unfed = self.feeders == 0
        inflow = np.where(unfed, 0.75 + 0.2 * np.sin(now / 90.0 + self.phase), inflow)
        drain_factor = np.where(self.drain, 2.5, 1.0)
        self.level += (0.75 * inflow - self.level * drain_factor) / 45.0 * dt
        np.clip(self.level, 0.0, 1.0, out=self.level)
        _relax(self.temp, self.temp_mean, 30.0, dt)
        self.temp += self.rng.normal(0.0, 0.004, self.n) * math.sqrt(max(dt, 1e-6))
        np.clip(self.temp, 0.0, 1.0, out=self.temp)

    def ch_level(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.level[idx] + self.noise[idx] * 0.2, 0, 1)

    def ch_temp(self, idx: np.ndarray) -> np.ndarray:
        return self.temp[idx]

    def ch_drain(self, idx: np.ndarray) -> np.ndarray:
        return self.drain[idx]

    def ch_high(self, idx: np.ndarray) -> np.ndarray:
        return self.level[idx] > 0.9

    def ch_low(self, idx: np.ndarray) -> np.ndarray:
        return self.level[idx] < 0.1

    def command(self, j: int, name: str, args: dict) -> tuple[bool, str] | None:
        if name in ("open_drain", "drain_open", "start_drain", "drain"):
            wanted = args.get("open", args.get("value", True))
            self.drain[j] = bool(wanted)
            return True, "drain opening" if self.drain[j] else "drain closing"
        if name in ("close_drain", "drain_close", "stop_drain"):
            self.drain[j] = False
            return True, "drain closing"
        return None


class _Valve(_Model):
    kind = "valve"
    STATE_NAMES = ("closed", "open", "moving")
    RATE = 0.15  # fraction of full travel per second
    NUMERIC = (
        (("position", "pos", "opening", "percent", "stroke"), "position"),
        (("setpoint", "target", "command", "demand"), "setpoint"),
        (("flow",), "flow"),
    )
    BOOL = ((("closed", "shut"), "closed"), (("open", "opened"), "open"))
    ENUM = ((("state", "status", "mode"), "state"),)

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        self.setpoint = rng.choice([0.0, 1.0, 0.5, 1.0], self.n)
        self.position = self.setpoint.copy()

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        _ramp(self.position, self.setpoint, self.RATE, dt)

    def ch_position(self, idx: np.ndarray) -> np.ndarray:
        return self.position[idx]

    def ch_setpoint(self, idx: np.ndarray) -> np.ndarray:
        return self.setpoint[idx]

    def ch_flow(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(self.position[idx] * 0.9 + self.noise[idx], 0, 1)

    def ch_open(self, idx: np.ndarray) -> np.ndarray:
        return self.position[idx] > 0.5

    def ch_closed(self, idx: np.ndarray) -> np.ndarray:
        return self.position[idx] < 0.02

    def ch_state(self, idx: np.ndarray) -> np.ndarray:
        pos, sp = self.position[idx], self.setpoint[idx]
        return np.where(np.abs(sp - pos) > 0.005, 2, np.where(pos < 0.02, 0, 1))

    def command(self, j: int, name: str, args: dict) -> tuple[bool, str] | None:
        if name in ("open", "open_valve"):
            self.setpoint[j] = 1.0
            return True, "opening"
        if name in ("close", "close_valve", "shut"):
            self.setpoint[j] = 0.0
            return True, "closing"
        if name in ("set_position", "position", "set_opening", "setpoint", "set_setpoint"):
            frac = self._frac_arg(j, "position", args, ("position", "value", "percent", "opening", "setpoint"), name)
            if isinstance(frac, str):
                return False, frac
            self.setpoint[j] = frac
            return True, "moving"
        return None


class _Hvac(_Model):
    """An air handler, in degrees Celsius (converted for points whose unit ends in F)."""

    kind = "hvac"
    STATE_NAMES = ("stopped", "running", "fault")
    NUMERIC = (
        (("supply", "discharge", "outlet"), "supply"),
        (("return", "room", "zone", "inlet"), "ret"),
        (("setpoint", "target"), "setpoint"),
        (("fan_speed", "speed"), "fan_speed"),
        (("temp", "temperature"), "ret"),
    )
    BOOL = ((("fan", "running", "run", "on", "active"), "running"),)
    ENUM = ((("state", "status", "mode"), "state"),)
    ABS = frozenset({"supply", "ret", "setpoint"})
    CELSIUS = frozenset({"supply", "ret", "setpoint"})
    AMBIENT = 26.0  # what supply air drifts to with the fan off

    def __init__(self, devices: list[Device], rng: np.random.Generator):
        super().__init__(devices, rng)
        n = self.n
        self.running = rng.random(n) < 0.9
        self.setpoint = np.round(rng.uniform(14.0, 18.0, n) * 2) / 2
        self.supply = np.where(self.running, self.setpoint, self.AMBIENT)
        self.load = rng.uniform(5.0, 8.0, n)  # return is this much warmer than supply
        self.ret = self.supply + self.load
        self.fan = np.where(self.running, 0.8, 0.0)

    def advance(self, dt: float, now: float, faults: bool) -> None:
        super().advance(dt, now, faults)
        _ramp(self.fan, np.where(self.running, 0.8, 0.0), 0.3, dt)
        _relax(self.supply, np.where(self.running, self.setpoint, self.AMBIENT), 60.0, dt)
        _relax(self.ret, np.where(self.running, self.supply + self.load, self.AMBIENT + 1.0), 90.0, dt)

    def ch_supply(self, idx: np.ndarray) -> np.ndarray:
        return self.supply[idx] + self.noise[idx] * 5.0

    def ch_ret(self, idx: np.ndarray) -> np.ndarray:
        return self.ret[idx] + self.noise[idx] * 5.0

    def ch_setpoint(self, idx: np.ndarray) -> np.ndarray:
        return self.setpoint[idx]

    def ch_fan_speed(self, idx: np.ndarray) -> np.ndarray:
        return self.fan[idx]

    def ch_running(self, idx: np.ndarray) -> np.ndarray:
        return self.running[idx]

    def ch_state(self, idx: np.ndarray) -> np.ndarray:
        return np.where(self.running[idx], 1, 0)

    def command(self, j: int, name: str, args: dict) -> tuple[bool, str] | None:
        if name in _START:
            self.running[j] = True
            return True, "starting"
        if name in _STOP:
            self.running[j] = False
            return True, "stopping"
        if name in ("set_setpoint", "setpoint", "set_temperature", "set_temp", "set_supply"):
            value = _number_arg(args, ("setpoint", "temperature", "temp", "value"))
            if value is None:
                return False, "needs a numeric argument"
            spec = next((p for p in self.devices[j].points if p.kind == "number" and _matches(p.id, ("supply", "setpoint"))), None)
            if spec is not None and _fahrenheit(spec.unit):
                value = (value - 32.0) * 5.0 / 9.0
            if not 5.0 <= value <= 35.0:
                return False, f"{value:g} °C is not a sensible supply setpoint (5..35 °C)"
            self.setpoint[j] = value
            return True, "setpoint changed"
        return None


def _fahrenheit(unit: str) -> bool:
    u = unit.strip().upper()
    return u in ("°F", "F", "DEGF", "DEG F", "FAHRENHEIT")


class _Generic(_Model):
    """Types the simulator does not know (and sensors): every point is a generic walk."""

    kind = "generic"


MODELS: dict[str, type[_Model]] = {
    "pump": _Pump,
    "fan": _Fan,
    "conveyor": _Conveyor,
    "tank": _Tank,
    "valve": _Valve,
    "hvac": _Hvac,
    "ahu": _Hvac,
    "sensor": _Generic,
}


# --- columns: one point id of one model, for all its devices -------------------------


class _Column:
    __slots__ = (
        "model", "point", "kind", "mode", "channel", "local", "glob", "ids", "lo", "hi", "period",
        "next_due", "states", "state_map", "mean", "x", "band_lo", "band_hi", "flag", "choice", "alarm_idx", "decimals",
        "wrap", "fahrenheit", "rows", "high", "upper", "hold_value", "hold_until",
    )  # fmt: skip

    def __init__(self, model: _Model, point: str, kind: str, entries: list[tuple[int, int, Device, PointSpec]]):
        self.model = model
        self.point = point
        self.kind = kind
        self.local = np.array([e[0] for e in entries], np.int64)
        self.glob = np.array([e[1] for e in entries], np.int64)
        self.ids = [e[2].id for e in entries]
        specs = [e[3] for e in entries]
        ranges = [_range(s) for s in specs]
        self.lo = np.array([r[0] for r in ranges])
        self.hi = np.array([r[1] for r in ranges])
        self.period = np.array([s.period for s in specs])
        self.next_due = np.full(len(entries), -np.inf)
        self.states = specs[0].states
        span = max((r[1] - r[0] for r in ranges), default=100.0)
        self.decimals = int(min(6, max(0, 3 - math.floor(math.log10(span)) if span > 0 else 3)))
        bound = model.bind(specs[0])
        self.mode, self.channel = bound if bound is not None else ("generic", "")
        self.wrap = self.channel in model.WRAP
        self.fahrenheit = self.channel in model.CELSIUS and _fahrenheit(specs[0].unit)
        self.state_map = None
        if self.mode == "enum":
            self.state_map = _state_map(model.STATE_NAMES, self.states)
            if self.state_map is None:
                self.mode, self.channel = "generic", ""
        if self.mode in ("frac", "abs"):
            ch = model.ranges.setdefault(self.channel, [None] * model.n)
            for (j, _, _, s), r in zip(entries, ranges):
                if ch[j] is None:
                    ch[j] = r
        rng = model.rng
        n = len(entries)
        # state of the generic walk (used only by points no model binds)
        band = [_band(s, r) for s, r in zip(specs, ranges)]
        self.band_lo = np.array([b[0] for b in band])
        self.band_hi = np.array([b[1] for b in band])
        self.mean = rng.uniform(self.band_lo, self.band_hi) if n else np.zeros(0)
        self.x = self.mean.copy()
        self.flag = rng.random(n) < 0.7
        alarm = set(specs[0].alarm_states)
        normal = [k for k, s in enumerate(self.states) if s not in alarm] or list(range(len(self.states)))
        self.alarm_idx = np.array([k for k, s in enumerate(self.states) if s in alarm], np.int64)
        self.choice = np.array(normal, np.int64)
        self.choice = rng.choice(self.choice, n) if len(self.choice) and n else np.zeros(n, np.int64)
        # Alarm excursions: the lowest high limit of each entry (NaN: none) and how far above it a value may go.
        limits = [_high_limits(e[2], s) for e, s in zip(entries, specs)]
        self.high = np.array([lim[0] for lim in limits], np.float64).reshape(n)
        self.upper = np.array([min(lim[1], r[1]) for lim, r in zip(limits, ranges)], np.float64).reshape(n)
        self.hold_value = np.full(n, np.nan)
        self.hold_until = np.zeros(n)

    def held(self, idx: np.ndarray, values: np.ndarray, now: float) -> np.ndarray:
        """Values with the entries driven over a limit (an excursion) replaced by the excursion's value."""
        hold = self.hold_until[idx] > now
        if hold.any():
            values = np.where(hold, self.hold_value[idx], values)
        return values

    def advance_generic(self, dt: float, rng: np.random.Generator) -> None:
        n = len(self.ids)
        if self.mode != "generic" or n == 0:
            return
        if self.kind == "number":
            width = self.band_hi - self.band_lo
            self.mean += rng.normal(0.0, 0.01, n) * math.sqrt(dt) * width
            np.clip(self.mean, self.band_lo + 0.1 * width, self.band_hi - 0.1 * width, out=self.mean)
            self.x += 0.3 * (self.mean - self.x) * min(dt, 3.0) + rng.normal(0.0, 0.02, n) * math.sqrt(dt)
            np.clip(self.x, 0.0, 1.0, out=self.x)
        elif self.kind == "bool":
            flip = rng.random(n) < dt / (120.0 * self.period)
            self.flag ^= flip
        elif self.kind == "enum" and len(self.states) > 1:
            change = np.flatnonzero(rng.random(n) < dt / (180.0 * self.period))
            if change.size:
                normal = np.setdiff1d(np.arange(len(self.states)), self.alarm_idx)
                pool = normal if normal.size else np.arange(len(self.states))
                picks = rng.choice(pool, change.size)
                rare = rng.random(change.size) < 0.1
                if self.alarm_idx.size and rare.any():
                    picks[rare] = rng.choice(self.alarm_idx, int(rare.sum()))
                self.choice[change] = picks

    def floats(self, idx: np.ndarray) -> np.ndarray:
        """values() in the twin's float terms (0/1 for bools, the state index for enums), as one array."""
        if self.kind == "number":
            return np.asarray(self.values(idx), np.float64)
        if self.kind == "bool":
            flags = self.flag[idx] if self.mode == "generic" else self.model.get(self.channel, self.local[idx])
            return np.asarray(flags, bool).astype(np.float64)
        if self.mode == "generic":
            return self.choice[idx].astype(np.float64)
        raw = np.asarray(self.model.get(self.channel, self.local[idx]), np.int64)
        return np.asarray(self.state_map, np.float64)[raw]

    def values(self, idx: np.ndarray) -> list:
        mode = self.mode
        if mode == "generic":
            if self.kind == "number":
                lo, hi = self.lo[idx], self.hi[idx]
                return np.clip(np.round(lo + self.x[idx] * (hi - lo), self.decimals), lo, hi).tolist()
            if self.kind == "bool":
                return self.flag[idx].tolist()
            return [self.states[k] for k in self.choice[idx].tolist()]
        raw = self.model.get(self.channel, self.local[idx])
        if mode == "frac":
            lo, hi = self.lo[idx], self.hi[idx]
            return np.clip(np.round(lo + raw * (hi - lo), self.decimals), lo, hi).tolist()
        if mode == "abs":
            lo, hi = self.lo[idx], self.hi[idx]
            if self.fahrenheit:
                raw = raw * 1.8 + 32.0
            if self.wrap:
                span = np.where(hi > lo, hi - lo, 1.0)
                raw = np.where(raw > hi, lo + np.mod(raw - lo, span), raw)
            return np.clip(np.round(raw, self.decimals), lo, hi).tolist()
        if mode == "bool":
            return np.asarray(raw, bool).tolist()
        smap = self.state_map
        return [self.states[smap[k]] for k in np.asarray(raw, np.int64).tolist()]


def _high_limits(device: Device, spec: PointSpec) -> tuple[float, float]:
    """(high limit, the next limit above it or +inf) of a number point: its alarm rules, else `alarm = [lo, hi]`."""
    if spec.kind != "number":
        return math.nan, math.inf
    highs = {}
    for raw in device.alarms:
        if raw.get("point") == spec.id and raw.get("kind") in ("high", "high_high") and isinstance(raw.get("limit"), (int, float)):
            highs[raw["kind"]] = float(raw["limit"])
    if "high" in highs:
        return highs["high"], highs.get("high_high", math.inf)
    if "high_high" in highs:
        return highs["high_high"], math.inf
    if spec.alarm is not None and (spec.range is None or spec.alarm[1] < spec.range[1]):
        return spec.alarm[1], math.inf
    return math.nan, math.inf


def _band(spec: PointSpec, r: tuple[float, float]) -> tuple[float, float]:
    """The normal band (alarm band if any) as fractions of the range."""
    lo, hi = r
    if spec.alarm is None or hi <= lo:
        return 0.1, 0.9
    a = max(0.0, min(1.0, (spec.alarm[0] - lo) / (hi - lo)))
    b = max(0.0, min(1.0, (spec.alarm[1] - lo) / (hi - lo)))
    if b - a < 0.05:
        return 0.1, 0.9
    return a + 0.05 * (b - a), b - 0.05 * (b - a)


def _state_map(names: tuple[str, ...], states: tuple[str, ...]) -> np.ndarray | None:
    """Index into `states` for each model state name; None when fewer than two match."""
    if not names or not states:
        return None
    folded = [s.casefold() for s in states]
    out = []
    hits = 0
    for k, name in enumerate(names):
        found = next((folded.index(w) for w in SYNONYMS.get(name, (name,)) if w in folded), None)
        if found is None:
            found = min(k, len(states) - 1)
        else:
            hits += 1
        out.append(found)
    if hits < 2:
        return None
    return np.array(out, np.int64)


# --- the simulator ------------------------------------------------------------------------


class Simulator(Connector):
    """Plausible live values for a site; commands change the simulated devices."""

    name = "simulator"

    def __init__(
        self,
        site: Site,
        rate: float = 1.0,
        seed: int = 0,
        faults: bool = True,
        fault_interval: float = 120.0,
        tick: float = 0.1,
        batched: bool = False,
    ):
        super().__init__()
        self.batched = batched  # step() hands values over as one SampleBatch instead of Sample objects
        if not rate > 0:
            raise ValueError("rate must be > 0")
        self.site = site
        self.rate = float(rate)
        self.faults = faults
        self.fault_interval = fault_interval
        self.tick = tick
        self.rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last: float | None = None
        self.steps = 0
        self.published = 0
        self.fault_log: list[tuple[float, str, str]] = []  # (time, device, what) of simulated faults
        # Now and then a value is driven over its high alarm limit for half a minute, so that the alarm
        # list is at work within a minute of starting (own generator: the other faults' sequence is unchanged).
        self.excursion_every = (45.0, 120.0)
        self._excursion_rng = np.random.default_rng(seed + 7919)
        self._next_excursion: float | None = None
        self.on_response: Callable[[str, bytes], None] | None = None  # answers to publish()ed commands

        table = PointTable(site)
        groups: dict[str, list[tuple[int, Device]]] = {}
        for g, d in enumerate(site.devices):
            kind = d.type.lower() if d.type.lower() in MODELS else "generic"
            groups.setdefault(kind, []).append((g, d))
        self.models: dict[str, _Model] = {}
        self._where: dict[str, tuple[_Model, int]] = {}
        self.columns: list[_Column] = []
        self._dev_columns: dict[str, list[tuple[_Column, int]]] = {}
        for kind, members in groups.items():
            model = MODELS.get(kind, _Generic)([d for _, d in members], self.rng)
            self.models[kind] = model
            per_point: dict[tuple, list] = {}
            for j, (g, d) in enumerate(members):
                self._where[d.id] = (model, j)
                for p in d.points:
                    per_point.setdefault((p.id, p.kind, p.states), []).append((j, g, d, p))
            for (pid, pkind, _), entries in per_point.items():
                col = _Column(model, pid, pkind, entries)
                col.rows = np.array([table.index(e[2].id, pid) for e in entries], np.int64)
                self.columns.append(col)
                for k, e in enumerate(entries):
                    self._dev_columns.setdefault(e[2].id, []).append((col, k))
        tank = self.models.get("tank")
        if isinstance(tank, _Tank):
            pump = self.models.get("pump")
            tank.connect(pump if isinstance(pump, _Pump) else None)
        n = len(site.devices)
        self._ids = [d.id for d in site.devices]
        self._gindex = {d: g for g, d in enumerate(self._ids)}
        self.silent_until = np.zeros(n)
        self.offline_until = np.zeros(n)
        self._offline = np.zeros(n, bool)
        self._max_period = np.array([max((p.period for p in d.points), default=10.0) for d in site.devices])
        self._sensor = np.array([d.type.lower() == "sensor" for d in site.devices], bool)

    # --- stepping ------------------------------------------------------------------

    def step(self, now: float) -> list[Event]:
        """Advance the simulation to `now` and return the events due by then."""
        with self._lock:
            dt = 0.0 if self._last is None else min(max(now - self._last, 0.0), 5.0)
            self._last = now
            self.steps += 1
            out: list[Event] = []
            for model in self.models.values():
                model.advance(dt, now, self.faults)
            if self.faults and dt > 0:
                self._faults(now, dt, out)
            rng = self.rng
            mute = np.maximum(self.silent_until, self.offline_until) > now
            batch_rows: list[np.ndarray] = []
            batch_values: list[np.ndarray] = []
            for col in self.columns:
                col.advance_generic(dt, rng)
                due = col.next_due <= now
                if not due.any():
                    continue
                due &= ~mute[col.glob]
                idx = np.flatnonzero(due)
                if idx.size == 0:
                    continue
                p = col.period[idx] / self.rate
                old = col.next_due[idx]
                first = np.isneginf(old)
                nxt = old + p * rng.uniform(0.9, 1.1, idx.size)
                nxt = np.where(nxt > now, nxt, now + p)
                nxt = np.where(first, now + p * rng.uniform(0.05, 1.0, idx.size), nxt)
                col.next_due[idx] = nxt
                if self.batched:
                    batch_rows.append(col.rows[idx])
                    batch_values.append(col.held(idx, col.floats(idx), now) if col.kind == "number" else col.floats(idx))
                    continue
                ids, point = col.ids, col.point
                values = col.values(idx)
                if col.kind == "number":
                    values = col.held(idx, np.asarray(values, np.float64), now).tolist()
                for k, v in zip(idx.tolist(), values):
                    out.append(Sample(ids[k], point, v, now, now))
            if batch_rows:
                rows = np.concatenate(batch_rows)
                stamp = np.full(rows.size, now)
                out.append(SampleBatch(rows, np.concatenate(batch_values), stamp, stamp, self.name))
                self.published += int(rows.size)
            self.published += sum(1 for e in out if type(e) is Sample)
            return out

    def _excursion(self, now: float) -> None:
        """Drive one value over its high alarm limit for 20 to 45 s."""
        rng = self._excursion_rng
        if self._next_excursion is None:
            self._next_excursion = now + float(rng.uniform(15.0, 30.0))
        if now < self._next_excursion:
            return
        self._next_excursion = now + float(rng.uniform(*self.excursion_every))
        choices = [(col, k) for col in self.columns if col.kind == "number" for k in np.flatnonzero(np.isfinite(col.high)).tolist()]
        if not choices:
            return
        col, k = choices[int(rng.integers(len(choices)))]
        if self._offline[col.glob[k]]:
            return
        lo, hi = col.high[k], col.upper[k]
        col.hold_value[k] = round(float(lo + rng.uniform(0.25, 0.75) * (hi - lo)), col.decimals)
        col.hold_until[k] = now + float(rng.uniform(20.0, 45.0))
        col.next_due[k] = now
        self.fault_log.append((now, col.ids[k], f"{col.point} over its limit"))

    def _faults(self, now: float, dt: float, out: list[Event]) -> None:
        rng = self.rng
        n = len(self._ids)
        if n == 0:
            return
        self._excursion(now)
        # pumps trip
        pump = self.models.get("pump")
        if isinstance(pump, _Pump) and pump.n:
            p = dt / (self.fault_interval * pump.n)
            trip = np.flatnonzero(pump.running & ~pump.fault & (rng.random(pump.n) < p))
            for j in trip.tolist():
                pump.trip(j, now, float(rng.uniform(20.0, 60.0)))
                self.fault_log.append((now, pump.devices[j].id, "fault"))
        # devices fall silent (sensors three times as often)
        weight = np.where(self._sensor, 3.0, 1.0)
        p = dt * weight / (self.fault_interval * float(weight.sum()))
        quiet = np.flatnonzero((self.silent_until <= now) & (rng.random(n) < p))
        for g in quiet.tolist():
            hold = self._max_period[g] * self.site.stale_factor * 1.5 + float(rng.uniform(10.0, 30.0))
            self.silent_until[g] = now + hold
            self.fault_log.append((now, self._ids[g], "silent"))
        # devices report themselves offline, then come back
        p = dt / (2.0 * self.fault_interval * n)
        gone = np.flatnonzero(~self._offline & (rng.random(n) < p))
        for g in gone.tolist():
            self._offline[g] = True
            self.offline_until[g] = now + float(rng.uniform(20.0, 45.0))
            out.append(Availability(self._ids[g], False, now))
            self.fault_log.append((now, self._ids[g], "offline"))
        back = np.flatnonzero(self._offline & (self.offline_until <= now))
        for g in back.tolist():
            self._offline[g] = False
            out.append(Availability(self._ids[g], True, now))
            self.fault_log.append((now, self._ids[g], "online"))
            for col, k in self._dev_columns.get(self._ids[g], ()):
                col.next_due[k] = now  # report fresh values right away

    def report_all(self) -> None:
        """Report every point at the next step (a rebirth: a twin asked for the whole state at once)."""
        with self._lock:
            for col in self.columns:
                col.next_due[:] = np.minimum(col.next_due, self._last or 0.0)

    # --- commands ------------------------------------------------------------------

    def handle_command(self, device_id: str, command: str, args: dict | None = None) -> tuple[bool, str]:
        """Apply a command to the simulated device. Later reported values confirm it."""
        args = dict(args or {})
        with self._lock:
            where = self._where.get(device_id)
            if where is None:
                return False, f"unknown device {device_id!r}"
            if self._offline[self._gindex[device_id]]:
                return False, "device is offline"
            model, j = where
            name = command.strip().lower()
            result = model.command(j, name, args)
            if result is None:
                result = self._generic_command(device_id, name, args)
            if result[0]:
                for col, k in self._dev_columns.get(device_id, ()):
                    col.next_due[k] = min(col.next_due[k], (self._last or 0.0) + 0.5)  # report soon
            return result

    def execute(self, device_id: str, payload: bytes | str, now: float | None = None) -> dict:
        """Apply a command message in the device contract and return the device's answer.

        payload: {"id": ..., "command": ..., "args": {...}, "expires_at": epoch s} (JSON).
        Answer: {"id": ..., "status": "accepted" | "rejected", "reason": ...}.
        """
        now = time.time() if now is None else now
        try:
            text = payload.decode("utf-8") if isinstance(payload, (bytes, bytearray)) else payload
            body = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            return {"id": "", "status": "rejected", "reason": f"bad command payload: {str(exc)[:80]}"}
        cid = body.get("id") if isinstance(body.get("id"), str) else ""
        command = body.get("command")
        args = body.get("args") or {}
        if not isinstance(command, str) or not isinstance(args, dict):
            return {"id": cid, "status": "rejected", "reason": "command (string) and args (object) expected"}
        expires = body.get("expires_at")
        if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires < now:
            return {"id": cid, "status": "rejected", "reason": "expired before it arrived"}
        target = body.get("device", device_id)
        if target != device_id:
            return {"id": cid, "status": "rejected", "reason": f"addressed to {target!r}, not {device_id!r}"}
        ok, reason = self.handle_command(device_id, command, args)
        return {"id": cid, "status": "accepted" if ok else "rejected", "reason": reason}

    def publish(self, topic: str, payload: bytes, **options: Any) -> bool:
        """Commands in the MQTT device contract, in process: '{prefix}/{device}/cmd/{command}'.

        The answer goes to `on_response(topic, payload)` when set: options'
        response_topic, else '{prefix}/{device}/cmd_response'. Returns True (delivered).
        """
        parts = topic.rstrip("/").split("/")
        if len(parts) >= 3 and parts[-2] == "cmd":
            device_id, prefix = parts[-3], parts[:-3]
        elif len(parts) >= 2 and parts[-1] == "cmd":  # the command named only in the payload
            device_id, prefix = parts[-2], parts[:-2]
        else:
            raise ValueError(f"not a command topic: {topic!r}")
        answer = self.execute(device_id, payload)
        hook = self.on_response
        if hook is not None:
            fallback = "/".join([*prefix, device_id, "cmd_response"])
            hook(options.get("response_topic") or fallback, json.dumps(answer).encode())
        return True

    def _generic_command(self, device_id: str, name: str, args: dict) -> tuple[bool, str]:
        cols = self._dev_columns.get(device_id, ())
        on = name in _START or name in ("open",)
        off = name in _STOP or name in ("close",)
        if on or off:
            hit = False
            for col, k in cols:
                if col.mode == "generic" and col.kind == "bool" and _matches(
                    col.point, ("running", "run", "on", "enabled", "active", "open", "power")
                ):
                    col.flag[k] = on
                    hit = True
            if hit:
                return True, "switched on" if on else "switched off"
        if name.startswith("set_"):
            target = name[4:]
            for col, k in cols:
                if col.point == target and col.mode == "generic" and col.kind == "number":
                    value = _number_arg(args, (target, "value"))
                    if value is None:
                        return False, "needs a numeric argument"
                    lo, hi = col.lo[k], col.hi[k]
                    if not lo <= value <= hi:
                        return False, f"{value:g} is outside {lo:g}..{hi:g}"
                    frac = (value - lo) / (hi - lo)
                    col.mean[k] = col.x[k] = frac
                    return True, f"{target} set"
        return False, f"the simulator cannot {name!r} a {self._where[device_id][0].kind} device"

    # --- running on a thread ---------------------------------------------------------

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        sink(LinkState(self.name, "up", "embedded simulator", time.time()))
        self.stats.state = "up"
        self._thread = threading.Thread(target=self._run, args=(sink,), name="twinview-simulator", daemon=True)
        self._thread.start()

    def _run(self, sink: Sink) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                events = self.step(time.time())
                for ev in events:
                    sink(ev)
                self.stats.count(len(events))
            except Exception as exc:  # noqa: BLE001 - keep simulating; show what went wrong
                self.stats.count_bad("<simulator>", f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.tick - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2.0)
            self.stats.state = "stopped"


# --- synthetic sites for scale tests and benchmarks -----------------------------------------


def synthetic_site(n_devices: int, period: float = 1.0, prefix: str = "synth", stale_factor: float = 3.0) -> Site:
    """A site of n devices cycling through the demo types, each point publishing every `period` s."""
    from pathlib import Path

    from twinview.site.manifest import ColorOverlay, LabelOverlay, MotionOverlay

    def pt(dev: str, pid: str, **kw: Any) -> PointSpec:
        return PointSpec(id=pid, topic=f"{prefix}/{dev}/{pid}", period=period, **kw)

    pump_color = ColorOverlay("state", states={"stopped": (0.5, 0.5, 0.5, 1.0), "running": (0.2, 0.8, 0.3, 1.0), "fault": (0.9, 0.1, 0.1, 1.0)})
    pump_motion = (MotionOverlay("rotate", "speed", "rotor", range=(0.0, 3000.0), to=(0.0, 5.0)),)
    pump_label = LabelOverlay(("speed",))
    tank_color = ColorOverlay("level", map="blues", range=(0.0, 100.0))
    tank_label = LabelOverlay(("level",), "{level:.0f} %")
    valve_color = ColorOverlay("position", stops=((0.0, (0.8, 0.2, 0.2, 1.0)), (50.0, (0.2, 0.8, 0.2, 1.0))))
    sensor_color = ColorOverlay("temperature", map="coolwarm", range=(-20.0, 80.0))
    makers: list[Callable[[str], dict]] = [
        lambda d: dict(type="pump", points=(
            pt(d, "state", kind="enum", states=("stopped", "running", "fault"), alarm_states=("fault",)),
            pt(d, "speed", unit="rpm", range=(0.0, 3000.0)),
            pt(d, "motor_temp", unit="°C", range=(0.0, 150.0), alarm=(0.0, 95.0)),
        ), color=pump_color, motions=pump_motion, label=pump_label),
        lambda d: dict(type="tank", points=(
            pt(d, "level", unit="%", range=(0.0, 100.0), alarm=(5.0, 95.0)),
            pt(d, "temperature", unit="°C", range=(0.0, 100.0)),
        ), color=tank_color, label=tank_label),
        lambda d: dict(type="valve", points=(pt(d, "position", unit="%", range=(0.0, 100.0)),), color=valve_color),
        lambda d: dict(type="sensor", points=(
            pt(d, "temperature", unit="°C", range=(-20.0, 80.0), alarm=(0.0, 60.0)),
            pt(d, "vibration", unit="mm/s", range=(0.0, 50.0), alarm=(0.0, 20.0)),
        ), color=sensor_color),
    ]  # fmt: skip
    devices = []
    for i in range(n_devices):
        dev = f"D{i:05d}"
        spec = makers[i % len(makers)](dev)
        devices.append(
            Device(id=dev, name=dev, node=dev, area=f"area{i // 100}", availability_topic=f"{prefix}/{dev}/availability", **spec)
        )
    return Site(
        name=f"synthetic-{n_devices}", root=Path("."), model=Path("synthetic.glb"), devices=tuple(devices),
        topic_prefix=prefix, stale_factor=stale_factor,
    )  # fmt: skip


def run_as_mqtt_publisher(
    site: Site,
    url: str,
    rate: float = 1.0,
    stop_event: threading.Event | None = None,
    *,
    seed: int = 0,
    command_topic: str | None = "{prefix}/{device}/cmd/{command}",
    tick: float = 0.1,
    client_options: dict | None = None,
) -> dict:
    """Run the simulator as an external MQTT device fleet until stop_event is set; see connectors/sim_mqtt.py."""
    from twinview.connectors.simulator.fleet import run_publisher

    return run_publisher(site, url, rate, stop_event, seed=seed, command_topic=command_topic, tick=tick,
                         client_options=client_options)  # fmt: skip
