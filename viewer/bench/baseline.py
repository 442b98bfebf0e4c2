"""The per-device path, kept as the pipeline benchmark's baseline.

This is how a frame was painted before the runtime went columnar: for each
changed device, read its points as objects, evaluate its overlays one value at
a time, and write its look, motion and label to the view one device at a time.
It reads the same twin state and writes the same view as the runtime, so the
two are timed on equal terms in one run.
"""

from __future__ import annotations

import numpy as np

from twinview.twin.overlays import color_for, label_text, motion_target
from twinview.twin.vocabulary import DeviceFlag, Quality


class PerDevicePath:
    """Evaluate and paint devices one by one."""

    def __init__(self, runtime, view):
        self.runtime = runtime
        self.view = view

    def look(self, i: int):
        state = self.runtime.state
        device = state.devices[i]
        recs = state.point_map(i)
        offline = state.device_offline(i)
        flags = DeviceFlag.OFFLINE if offline else 0
        for r in recs.values():
            if r.quality is not Quality.GOOD and not offline:
                flags |= DeviceFlag.BAD if r.quality is Quality.BAD else DeviceFlag.STALE
            if r.alarm:  # the simple band rule looks like an unacknowledged critical alarm
                flags |= DeviceFlag.ALARM | DeviceFlag.ALARM_UNACK | DeviceFlag.ALARM_SEV_LO | DeviceFlag.ALARM_SEV_HI
        rgba = None
        if device.color is not None and device.color.point in recs:
            rec = recs[device.color.point]
            rgba = color_for(device.color, rec.spec, rec.good_value)
        motions = tuple(motion_target(m, recs[m.point]) for m in device.motions if m.point in recs)
        label = label_text(device, state, i) if device.label is not None else ""
        return rgba, int(flags), motions, label

    def paint(self, devices: np.ndarray) -> None:
        looks = self.runtime.looks
        for i in devices.tolist():
            rgba, flags, motions, label = self.look(i)
            self.view.set_looks(np.asarray([i]), np.asarray([rgba or (0, 0, 0, 0)], np.float32), np.asarray([flags]))
            start = int(looks.motion_start[i])
            if motions:
                entries = np.arange(start, start + len(motions))
                self.view.set_motion_targets(entries, np.asarray([np.nan if m is None else m for m in motions]))
            if label and self.view.labels is not None:
                self.view.labels.set_text(i, label)
