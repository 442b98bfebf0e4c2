"""SceneBinding: a SiteView subscribed to a runtime.

The runtime says which devices changed; the binding copies those rows of the
runtime's look columns into the view's GPU buffers (one indexed write), moves
the parts whose motion target changed, and refreshes the text of labels that
are on screen. The cost follows the change, never the size of the site.
"""

from __future__ import annotations

import numpy as np

from twinview.twin.events import AlarmsChanged, DevicesChanged, StateReset
from twinview.twin.runtime import Runtime

from .view import SiteView


class SceneBinding:
    """Keeps one SiteView showing one runtime's twin."""

    def __init__(self, runtime: Runtime, view: SiteView):
        self.runtime = runtime
        self.view = view
        looks = runtime.looks
        view.bind_motions(looks.motion_start)
        if view.labels is not None:
            view.labels.text_of = looks.label
            # Labels of devices that are offline, bad, in alarm or stale are the last to yield.
            view.labels.flags_of = lambda devices: looks.flags[devices]
        runtime.events.subscribe(DevicesChanged, self._on_changed, owner=self)
        runtime.events.subscribe(StateReset, self._on_reset, owner=self)
        runtime.events.subscribe(AlarmsChanged, self._on_alarms, owner=self)
        self.paint(np.arange(len(runtime.site.devices)))
        self._on_alarms(None)

    def paint(self, devices: np.ndarray, motions: np.ndarray | None = None) -> None:
        """Write the looks of `devices` (and the given motion entries; default: all) to the view."""
        looks = self.runtime.looks
        view = self.view
        if not devices.size:
            return
        view.set_looks(devices, looks.rgba[devices], looks.flags[devices])
        if motions is None:
            motions = np.arange(len(looks.motion_target))
        if motions.size:
            view.set_motion_targets(motions, looks.motion_target[motions])
        if view.labels is not None:
            view.labels.refresh(devices)

    def _on_changed(self, event: DevicesChanged) -> None:
        self.paint(event.devices, event.motions)

    def _on_alarms(self, event: AlarmsChanged | None) -> None:
        engine = self.runtime.alarms
        if engine is not None:
            self.view.badges.set_counts(engine.area_counts())

    def _on_reset(self, event: StateReset) -> None:
        self.paint(np.arange(len(self.runtime.site.devices)))

    def close(self) -> None:
        self.runtime.events.release(self)
