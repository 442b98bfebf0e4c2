"""What connectors hand the twin: decoded samples, device availability and link state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded value for one point. `error` is set (and value None) for bad input."""

    device: str
    point: str
    value: float | bool | str | None
    recv_ts: float  # receive time, time.time()
    source_ts: float | None = None  # the device's own timestamp, if the payload had one
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    """A device said it is online or offline (e.g. its MQTT last will fired)."""

    device: str
    online: bool
    recv_ts: float


@dataclass(frozen=True, slots=True)
class LinkState:
    """The connector's own connection changed: up, down, reconnecting."""

    connector: str
    state: str  # "connecting" | "up" | "down"
    detail: str = ""
    recv_ts: float = 0.0




@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Many good samples at once, already in the twin's terms: point indices and float values.

    A columnar source (the simulator, a recording played back, a store) hands
    these over instead of one Sample object per value. `points` index the site's
    points in manifest order (see twinview.twin.points.PointTable); values are
    numbers, 0/1 for bools and the state index for enums; `source_ts` is NaN
    where the device sent no timestamp.
    """

    points: "np.ndarray"  # int32
    values: "np.ndarray"  # float64
    recv_ts: "np.ndarray"  # float64
    source_ts: "np.ndarray"  # float64, NaN: none
    connector: str = ""

    def __len__(self) -> int:
        return int(self.points.shape[0])


Event = Sample | SampleBatch | Availability | LinkState
