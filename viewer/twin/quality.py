"""How far a point's shown value can be trusted."""

from __future__ import annotations

from enum import IntEnum


class Quality(IntEnum):
    """Quality of a point's value. A larger number is worse; `worst()` picks the max.

    GOOD     fresh, decoded, in range.
    NONE     never received since the viewer started: nothing to show.
    STALE    had a value, but it is older than period * stale_factor, the link to
             the broker is down, or the device is back online and has not reported yet.
    BAD      the latest message for the point could not be trusted (did not decode,
             wrong type, out of physical range).
    OFFLINE  the device itself said it is gone (availability "offline" / last will).
    """

    GOOD = 0
    NONE = 1
    STALE = 2
    BAD = 3
    OFFLINE = 4

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def current(self) -> bool:
        """True only when the value may be shown as current."""
        return self is Quality.GOOD


_LABELS = {
    Quality.GOOD: "good",
    Quality.NONE: "no data",
    Quality.STALE: "stale",
    Quality.BAD: "bad",
    Quality.OFFLINE: "offline",
}


def worst(*qualities: Quality) -> Quality:
    """The worst of the given qualities (NONE when none are given)."""
    return max(qualities, default=Quality.NONE)
