"""The one thread boundary: I/O threads put events, the render loop drains them."""

from __future__ import annotations

from collections import deque
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A lock-free (deque-based) multi-producer, single-consumer queue with a wake-up hook.

    put() is safe from any thread and never blocks; drain() is called by the
    render loop. `on_put` lets the desktop app request a redraw when data
    arrives, so an idle scene costs nothing.
    """

    def __init__(self, maxlen: int | None = None, on_put: Callable[[], None] | None = None):
        self._items: deque[T] = deque(maxlen=maxlen)
        self.on_put = on_put
        self.dropped = 0
        self._maxlen = maxlen

    def put(self, item: T) -> None:
        if self._maxlen is not None and len(self._items) >= self._maxlen:
            self.dropped += 1
        self._items.append(item)
        hook = self.on_put
        if hook is not None:
            hook()

    def drain(self, limit: int | None = None) -> list[T]:
        """Everything queued so far (or at most `limit` items), oldest first."""
        out: list[T] = []
        pop = self._items.popleft
        n = len(self._items) if limit is None else min(limit, len(self._items))
        for _ in range(n):
            out.append(pop())
        return out

    def __len__(self) -> int:
        return len(self._items)
