"""A sliding-window request limiter: a provider's "N requests per window" kept on our side.

One limiter per client serves sends, polls and everything else, so a fleet broadcast and a poll
cycle together never exceed the provider's limit (a 429 would cost a back-off, and on a send
the user's time).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress


class SlidingWindowLimiter:
    """At most `limit` requests in any `window` seconds, as the provider counts them.

    A request counts from the moment it starts until `window` after it finished: the provider
    sees it arrive somewhere in between, so its count can never exceed ours.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Create an idle limiter."""
        self.limit = limit
        self.window = window
        self._clock = clock
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, hold it for one request."""
        async with self._changed:
            while True:
                now = self._clock()
                while self._finished and self._finished[0] <= now - self.window:
                    self._finished.popleft()
                if len(self._finished) + self._in_flight < self.limit:
                    self._in_flight += 1
                    break
                wait = self._finished[0] + self.window - now if self._finished else None
                # Woken by a finished request, or when the oldest one leaves the window.
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._finished.append(self._clock())
                self._changed.notify()
