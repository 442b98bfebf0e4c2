"""Correlated signals of one centrifugal pump, with labelled faults, from a fixed seed.

Physics, sampled once a second: the speed follows set-points that change every
~40 minutes through a drive ramp; flow follows speed and a slowly wandering
valve; the head rise follows the affinity laws (n²) less the flow's share;
suction pressure follows a tank level; motor current follows hydraulic power;
vibration RMS grows with n²; motor and bearing temperatures lag their heat
sources (I², n²) toward an ambient temperature with a daily cycle. Sensors add
noise and quantisation. Nothing here knows the detector.

Faults, each labelled over its whole interval:
  step        a sensor's reading jumps by a fraction of its normal spread (calibration slip)
  drift       a sensor's bias grows linearly over 30-90 minutes
  spike       a burst of isolated wild readings (loose connection)
  stuck       a sensor repeats its last reading
  noise       a sensor's noise grows tenfold over the interval (failing cable, ADC)
  cavitation  vibration grows and gets rough, discharge pressure and flow sag and fluctuate
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

SENSORS = ["speed_rpm", "flow_m3h", "suction_bar", "discharge_bar", "current_a", "vibration_mms", "motor_temp_c",
           "bearing_temp_c"]
NOISE = np.array([3.0, 0.8, 0.01, 0.03, 0.25, 0.08, 0.15, 0.12])
QUANTUM = np.array([1.0, 0.1, 0.001, 0.001, 0.01, 0.01, 0.1, 0.1])
KINDS = ("step", "drift", "spike", "stuck", "noise", "cavitation")


@dataclass
class Fault:
    kind: str
    sensor: int  # -1: the whole pump (cavitation)
    start: int
    end: int  # exclusive
    size: float


def _lag(x: np.ndarray, tau: float, x0: float | None = None) -> np.ndarray:
    a = 1.0 / tau
    y0 = x[0] if x0 is None else x0
    y, _ = lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * y0])
    return y


def _ou(rng: np.random.Generator, n: int, tau: float, sd: float) -> np.ndarray:
    a = 1.0 / tau
    e = rng.normal(0.0, sd * np.sqrt(2 * a), n)
    y, _ = lfilter([1.0], [1.0, a - 1.0], e, zi=[0.0])
    return y


def physics(n: int, rng: np.random.Generator, t0: float = 0.0) -> np.ndarray:
    """True values (n x 8), no sensor noise."""
    t = t0 + np.arange(n, dtype=float)
    # Set-points: a new one every ~40 minutes, through a 20 s drive ramp.
    sp = np.empty(n)
    i = 0
    while i < n:
        d = int(rng.exponential(2400)) + 300
        sp[i : i + d] = rng.uniform(1150, 1750)
        i += d
    speed = _lag(sp, 20.0)
    nr = speed / 1500.0
    valve = np.clip(0.8 + _ou(rng, n, 1800.0, 0.08), 0.5, 1.0)
    level = np.clip(0.6 + _ou(rng, n, 3600.0, 0.12), 0.1, 1.0)
    ambient = 20.0 + 4.0 * np.sin(2 * np.pi * (t / 86400.0 - 0.25)) + _ou(rng, n, 3600.0, 0.5)
    qn = nr * np.sqrt(valve)  # flow / nominal
    flow = 120.0 * qn
    suction = 0.8 + 0.35 * level
    discharge = suction + 4.2 * nr**2 - 1.1 * qn**2
    power = 0.35 + 0.65 * qn * (4.2 * nr**2 - 1.1 * qn**2) / 3.1  # / nominal
    current = 42.0 * power + 6.0
    vibration = 0.9 + 1.6 * nr**2 * np.exp(_ou(rng, n, 600.0, 0.04))
    motor = _lag(ambient + 38.0 * (current / 48.0) ** 2, 900.0)
    bearing = _lag(ambient + 22.0 * nr**2 + 3.0 * (vibration - 2.5), 1200.0)
    return np.stack([speed, flow, suction, discharge, current, vibration, motor, bearing], axis=1)


def measure(true: np.ndarray, rng: np.random.Generator, noise_scale: np.ndarray | None = None) -> np.ndarray:
    scale = NOISE if noise_scale is None else NOISE * noise_scale
    x = true + rng.normal(size=true.shape) * scale
    return np.round(x / QUANTUM) * QUANTUM


def normal_recording(seconds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return measure(physics(seconds, rng), rng)


def faulty_recording(seconds: int, seed: int, faults_per_kind: int = 6) -> tuple[np.ndarray, np.ndarray, list[Fault]]:
    """Measurements (n x 8), labels (n,) and the faults, spread over the recording with normal gaps."""
    rng = np.random.default_rng(seed)
    true = physics(seconds, rng, t0=float(rng.uniform(0, 86400)))
    spread = np.std(true, axis=0) + NOISE
    kinds = [k for k in KINDS for _ in range(faults_per_kind)]
    rng.shuffle(kinds)
    slot = seconds // (len(kinds) + 1)
    faults: list[Fault] = []
    for j, kind in enumerate(kinds):
        dur = {"step": rng.uniform(600, 1800), "drift": rng.uniform(1800, 5400), "spike": rng.uniform(120, 300),
               "stuck": rng.uniform(600, 2400), "noise": rng.uniform(600, 1800),
               "cavitation": rng.uniform(900, 2400)}[kind]
        dur = int(min(dur, slot * 0.6))
        start = (j + 1) * slot - dur // 2 + int(rng.uniform(-0.1, 0.1) * slot)
        sensor = -1 if kind == "cavitation" else int(rng.integers(0, len(SENSORS)))
        size = {"step": rng.uniform(0.3, 1.0), "drift": rng.uniform(0.8, 2.0), "spike": rng.uniform(3.0, 8.0),
                "stuck": 0.0, "noise": rng.uniform(6.0, 15.0), "cavitation": rng.uniform(0.5, 1.5)}[kind]
        faults.append(Fault(kind, sensor, start, start + dur, float(size)))
    # Physical faults change the truth; sensor faults change the readings.
    for f in faults:
        if f.kind == "cavitation":
            k = np.arange(f.end - f.start) / (f.end - f.start)
            sev = f.size * k**1.5
            burst = np.abs(rng.normal(size=len(k)))
            sl = slice(f.start, f.end)
            true[sl, 5] += sev * (1.5 + 1.5 * burst)
            true[sl, 3] -= sev * (0.25 + 0.2 * rng.normal(size=len(k)))
            true[sl, 1] *= 1.0 - 0.06 * sev * (1 + 0.5 * rng.normal(size=len(k)))
            true[sl, 4] += sev * 1.2 * rng.normal(size=len(k))
    noise_scale = np.ones_like(true)
    for f in faults:
        if f.kind == "noise":
            k = np.arange(f.end - f.start) / (f.end - f.start)
            noise_scale[f.start : f.end, f.sensor] = 1.0 + (f.size - 1.0) * k
    x = measure(true, rng, noise_scale)
    for f in faults:
        sl, j = slice(f.start, f.end), f.sensor
        n = f.end - f.start
        if f.kind == "step":
            x[sl, j] += f.size * spread[j] * rng.choice([-1.0, 1.0])
        elif f.kind == "drift":
            x[sl, j] += f.size * spread[j] * rng.choice([-1.0, 1.0]) * np.arange(n) / n
        elif f.kind == "spike":
            hit = rng.random(n) < 0.1
            hit[0] = True
            x[sl, j] += np.where(hit, f.size * spread[j] * rng.choice([-1.0, 1.0], n), 0.0)
        elif f.kind == "stuck":
            x[sl, j] = x[f.start - 1, j]
    labels = np.zeros(seconds, np.int8)
    for f in faults:
        labels[f.start : f.end] = 1
    return x, labels, faults
