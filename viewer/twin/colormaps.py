"""The named colour maps a manifest may use, as small lookup tables with interpolation."""

from __future__ import annotations

import numpy as np

RGBA = tuple[float, float, float, float]
LUT_SIZE = 256

# Control points (position 0..1, r, g, b); tables are linearly interpolated between them.
_CONTROL: dict[str, list[tuple[float, float, float, float]]] = {
    "viridis": [
        (0.000, 0.267, 0.005, 0.329),
        (0.125, 0.283, 0.141, 0.458),
        (0.250, 0.254, 0.265, 0.530),
        (0.375, 0.207, 0.372, 0.553),
        (0.500, 0.164, 0.471, 0.558),
        (0.625, 0.128, 0.567, 0.551),
        (0.750, 0.135, 0.659, 0.518),
        (0.875, 0.267, 0.749, 0.441),
        (1.000, 0.993, 0.906, 0.144),
    ],
    "coolwarm": [
        (0.00, 0.230, 0.299, 0.754),
        (0.25, 0.552, 0.690, 0.996),
        (0.50, 0.865, 0.865, 0.865),
        (0.75, 0.958, 0.604, 0.482),
        (1.00, 0.706, 0.016, 0.150),
    ],
    "heat": [
        (0.00, 0.10, 0.00, 0.00),
        (0.35, 0.80, 0.10, 0.00),
        (0.65, 1.00, 0.60, 0.00),
        (0.90, 1.00, 0.95, 0.40),
        (1.00, 1.00, 1.00, 0.90),
    ],
    "blues": [
        (0.00, 0.969, 0.984, 1.000),
        (0.25, 0.776, 0.859, 0.937),
        (0.50, 0.420, 0.682, 0.839),
        (0.75, 0.129, 0.443, 0.710),
        (1.00, 0.031, 0.188, 0.420),
    ],
    "traffic": [
        (0.00, 0.180, 0.700, 0.250),
        (0.50, 0.980, 0.800, 0.100),
        (1.00, 0.880, 0.150, 0.120),
    ],
}

NAMES = tuple(_CONTROL)


def _build(control: list[tuple[float, float, float, float]]) -> np.ndarray:
    pts = np.asarray(control, dtype=np.float64)
    x = np.linspace(0.0, 1.0, LUT_SIZE)
    lut = np.ones((LUT_SIZE, 4), dtype=np.float32)
    for c in range(3):
        lut[:, c] = np.interp(x, pts[:, 0], pts[:, c + 1])
    return lut


LUTS: dict[str, np.ndarray] = {name: _build(c) for name, c in _CONTROL.items()}
_ROWS: dict[str, list[list[float]]] = {name: table.tolist() for name, table in LUTS.items()}  # fast scalar path


def lut(name: str) -> np.ndarray:
    """(256, 4) float32 RGBA table of a named map; KeyError for unknown names."""
    return LUTS[name]


def sample(name: str, t: float) -> RGBA:
    """Colour at position t in 0..1 (clamped), interpolated between table entries."""
    rows = _ROWS[name]
    t = (0.0 if t < 0.0 else 1.0 if t > 1.0 else float(t)) * (LUT_SIZE - 1)
    i = int(t)
    if i >= LUT_SIZE - 1:
        r, g, b, a = rows[-1]
        return (r, g, b, a)
    f = t - i
    (r0, g0, b0, a0), (r1, g1, b1, a1) = rows[i], rows[i + 1]
    return (r0 + (r1 - r0) * f, g0 + (g1 - g0) * f, b0 + (b1 - b0) * f, a0 + (a1 - a0) * f)


def sample_many(name: str, t: np.ndarray) -> np.ndarray:
    """Vectorised sample(): (n,) positions -> (n, 4) float32 colours."""
    table = LUTS[name]
    x = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0) * (LUT_SIZE - 1)
    i = np.minimum(x.astype(np.int64), LUT_SIZE - 2)
    f = (x - i)[:, None]
    return (table[i] * (1.0 - f) + table[i + 1] * f).astype(np.float32)
