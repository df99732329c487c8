"""Client-side limits: an AIMD concurrency limit and per-minute request/token budgets.

:class:`AdaptiveLimiter` holds an endpoint's limit on calls in flight: it halves on a 429 (at most once per
``cooldown_s``, so one burst of 429s counts once) and grows by one per success, up to ``max_limit``; the endpoint
pool (:mod:`.endpoints`) admits calls under it. :class:`MinuteBudget` is a token bucket refilled continuously
(``per_minute / 60`` per second); it binds to the event loop that uses it and starts fresh in a new one.
"""
from __future__ import annotations

import asyncio
import time


class AdaptiveLimiter:
    """The AIMD concurrency limit of one endpoint (:class:`~.endpoints.EndpointPool` admits at most :attr:`limit`
    requests to it at once)."""

    def __init__(self, max_limit: int, *, min_limit: int = 1, cooldown_s: float = 1.0):
        if max_limit < min_limit or min_limit < 1:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got min_limit={min_limit}, max_limit={max_limit}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.cooldown_s = cooldown_s
        self.limit = max_limit
        self.decreases = 0
        self._last_decrease = -float("inf")

    def on_rate_limited(self) -> None:
        """A 429 came back: halve the limit (once per cooldown)."""
        now = time.monotonic()
        if now - self._last_decrease < self.cooldown_s:
            return
        self._last_decrease = now
        self.limit = max(self.min_limit, self.limit // 2)
        self.decreases += 1

    def on_success(self) -> None:
        """A call succeeded: one more may run at once (up to ``max_limit``)."""
        self.limit = min(self.max_limit, self.limit + 1)


class MinuteBudget:
    """A token bucket holding at most ``per_minute`` units; :meth:`take` waits until ``amount`` are there."""

    def __init__(self, per_minute: float):
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self.per_minute = per_minute
        self._available = per_minute
        self._stamp = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._available = min(self.per_minute, self._available + (now - self._stamp) * self.per_minute / 60)
        self._stamp = now

    async def take(self, amount: float) -> None:
        """Take ``amount`` units (capped at the bucket size, so one oversize call still goes through)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock = loop, asyncio.Lock()
        assert self._lock is not None
        amount = min(amount, self.per_minute)
        async with self._lock:  # first come, first served
            self._refill()
            while self._available < amount:
                await asyncio.sleep((amount - self._available) * 60 / self.per_minute)
                self._refill()
            self._available -= amount
