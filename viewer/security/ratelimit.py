"""Sign-in attempts limited per client address, so a token cannot be guessed by trying.

SignInLimiter keeps the times of recent failed sign-ins of each address. After
`limit` failures within `window` seconds, that address is refused without its
token even being checked until the oldest of those failures is `window` old.
A success clears the address's failures. Memory is bounded: at most
`max_addresses` addresses are tracked (the least recently seen is dropped).

Behind a reverse proxy every client has the proxy's address; the limit then
applies to all of them together (X-Forwarded-For is not trusted: anyone can send it).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Callable

FAILURES, WINDOW_S = 5, 60.0


class SignInLimiter:
    def __init__(self, limit: int = FAILURES, window: float = WINDOW_S, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = 10_000):  # fmt: skip
        self.limit = int(limit)
        self.window = float(window)
        self.clock = clock
        self.max_addresses = int(max_addresses)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # attempts refused while an address was locked out

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def retry_after(self, address: str) -> float:
        """Seconds until this address may try again; 0 when it may try now."""
        now = self.clock()
        times = self._recent(address, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window - now)

    def check(self, address: str) -> float:
        """Like retry_after, and counts a refused attempt when the address is locked out."""
        wait = self.retry_after(address)
        if wait > 0:
            self.refused += 1
        return wait

    def failed(self, address: str) -> bool:
        """Record a failure; True when this one locks the address out."""
        now = self.clock()
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return len(times) == self.limit

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def message(self, wait: float) -> str:
        return (f"too many failed sign-ins from this address ({self.limit} within {self.window:g} s): "
                f"try again in {max(1, round(wait))} s")  # fmt: skip
