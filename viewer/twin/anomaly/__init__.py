"""Online anomaly scores per device: a model of each device's normal behaviour, updated as samples arrive.

`Detector` scores one device (a matrix of sensors, row by row or in blocks);
`FleetDetector` scores many devices with the same number of sensors at once,
one row per changed device per frame. Both run the same code.
"""

from .detector import DetectorConfig, Detector, FleetDetector, Scores, TooLittleData

__all__ = ["DetectorConfig", "Detector", "FleetDetector", "Scores", "TooLittleData"]
