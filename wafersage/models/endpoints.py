"""Replicas of one model behind several base URLs: routing, per-endpoint limits, back-off and health.

An :class:`EndpointPool` admits each attempt to the endpoint with the fewest requests in flight among those that
may take one: under its own AIMD concurrency limit (:class:`~.limits.AdaptiveLimiter`: halved on a 429, +1 per
success), not resting after a 429 (for its Retry-After, else the back-off), and in service. An endpoint is taken
out when a connection to it fails, or after :data:`DOWN_AFTER` failed attempts in a row (5xx, timeouts); while
another one is in service it then gets a single probe attempt once its pause is over (1 s, doubling up to 30 s)
and is back on any answer. With no endpoint in service, every endpoint takes attempts again as a lone server
would, so a run against dead servers ends each request with its reason instead of waiting for one to return.

What an attempt means for the request (re-sent elsewhere, retried, given up) is the backend's decision; the pool
only hears the outcome (:meth:`EndpointPool.finish`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from .config import redact
from .limits import AdaptiveLimiter

log = logging.getLogger(__name__)

#: failed attempts in a row (5xx, timeouts) that take an endpoint out
DOWN_AFTER = 3
FIRST_PROBE_S = 1.0
MAX_PROBE_S = 30.0

#: ``ok``: a completion; ``answered``: an answer that says nothing about health (a 4xx, a malformed body);
#: ``rate_limited``: a 429; ``failed``: a 5xx, 408, 409 or timeout; ``unreachable``: no connection
Outcome = Literal["ok", "answered", "rate_limited", "failed", "unreachable"]


def chat_completions_url(base_url: str) -> str:
    """``BASE/chat/completions``, keeping base_url's query (sent with every request), without its fragment."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions", fragment=""))


class Endpoint:
    """One base URL with its limit, its rest after a 429, its health and its counts."""

    def __init__(self, base_url: str, max_concurrency: int):
        self.label = redact(base_url)
        self.chat_url = chat_completions_url(base_url)
        self.limiter = AdaptiveLimiter(max_concurrency)
        self.in_flight = 0
        self.rest_until = 0.0  # monotonic time before which it takes no new attempt (429)
        self.down = False
        self.probe_at = 0.0  # while down: when it may get its next probe
        self.taken_out_at = 0.0  # monotonic time of the last take-out
        self.probe_gap = FIRST_PROBE_S
        self.failures = 0  # failed attempts in a row
        self.sent = 0
        self.completed = 0

    def __repr__(self) -> str:
        state = "out" if self.down else "in service"
        return f"Endpoint({self.label!r}, {state}, {self.in_flight}/{self.limiter.limit} in flight)"


class EndpointPool:
    """The endpoints of one model; :meth:`acquire` an endpoint for an attempt and :meth:`finish` it with the outcome.

    Bound to the event loop that uses it (a new loop starts with nothing in flight).
    """

    def __init__(self, base_urls: list[str], max_concurrency: int, name: str = "model"):
        if not base_urls:
            raise ValueError("an endpoint pool needs at least one base URL")
        self.endpoints = [Endpoint(url, max_concurrency) for url in base_urls]
        self.name = name
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn = 0  # where the search starts, so ties rotate

    @property
    def limit(self) -> int:
        """The sum of the endpoints' current limits."""
        return sum(endpoint.limiter.limit for endpoint in self.endpoints)

    def in_service(self, besides: Endpoint | None = None) -> bool:
        """Whether an endpoint (other than ``besides``) is in service."""
        return any(not e.down and e is not besides for e in self.endpoints)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._waiters = loop, deque()
            for endpoint in self.endpoints:
                endpoint.in_flight = 0
        return loop

    async def acquire(self, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next attempt (``avoid`` only when no other may take it), waiting for a free slot."""
        loop = self._bind()
        while True:
            now = time.monotonic()
            endpoint = self._pick(avoid, now)
            if endpoint is not None:
                endpoint.in_flight += 1
                endpoint.sent += 1
                return endpoint
            await self._wait(loop, self._next_change(now))

    def _pick(self, avoid: Endpoint | None, now: float) -> Endpoint | None:
        endpoints = self.endpoints
        count = len(endpoints)
        serving = count > 1 and self.in_service()
        best = fallback = None
        start = self._turn
        self._turn = (start + 1) % count
        for offset in range(count):
            endpoint = endpoints[(start + offset) % count]
            if endpoint.in_flight >= endpoint.limiter.limit or endpoint.rest_until > now:
                continue
            if endpoint.down and serving:  # taken out: one probe at a time, when due
                if endpoint.probe_at <= now and not endpoint.in_flight and endpoint is not avoid:
                    return endpoint
                continue
            if endpoint is avoid:
                fallback = endpoint
            elif best is None or endpoint.in_flight < best.in_flight:
                best = endpoint
        return best or fallback

    def _next_change(self, now: float) -> float | None:
        """Seconds until a resting endpoint may take attempts again or a probe is due (None: only a finish helps)."""
        serving = self.in_service()
        times = [e.rest_until for e in self.endpoints if e.rest_until > now]
        times += [e.probe_at for e in self.endpoints if e.down and serving and e.probe_at > now]
        return min(times) - now if times else None

    async def _wait(self, loop: asyncio.AbstractEventLoop, delay: float | None) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(delay, _resolve, waiter) if delay is not None else None
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake(1)  # woken but cancelled before it ran: hand the wake-up on
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _wake(self, count: int) -> None:
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def finish(self, endpoint: Endpoint, outcome: Outcome, rest_s: float = 0.0, sent_at: float | None = None) -> None:
        """An attempt on ``endpoint`` ended with ``outcome`` (``rest_s``: how long a 429 asks it to rest; ``sent_at``:
        the monotonic time it was sent, so that an answer to a request sent before a take-out, which a dying server
        may still finish, does not bring the endpoint back)."""
        endpoint.in_flight -= 1
        wake = 1
        stale = sent_at is not None and sent_at < endpoint.taken_out_at  # sent before its last take-out
        if outcome in ("ok", "answered", "rate_limited"):  # it answered: it is alive
            endpoint.failures = 0
            if endpoint.down and not stale:
                endpoint.down, endpoint.probe_gap = False, FIRST_PROBE_S
                log.warning("%s: endpoint %s answers again; back in service", self.name, endpoint.label)
                wake = len(self._waiters)
            if outcome == "ok":
                endpoint.completed += 1
                endpoint.limiter.on_success()
                wake += 1  # the limit may have grown
            elif outcome == "rate_limited":
                endpoint.limiter.on_rate_limited()
                endpoint.rest_until = max(endpoint.rest_until, time.monotonic() + rest_s)
                log.info("%s: HTTP 429 from %s, its limit now %d", self.name, endpoint.label, endpoint.limiter.limit)
        else:
            endpoint.failures += 1
            if (outcome == "unreachable" or endpoint.failures >= DOWN_AFTER or endpoint.down) and not (
                    endpoint.down and stale):  # a request sent before the take-out is no failed probe
                self._take_out(endpoint, outcome)
        self._wake(wake)

    def _take_out(self, endpoint: Endpoint, outcome: Outcome) -> None:
        if len(self.endpoints) == 1:  # a lone endpoint takes every attempt anyway
            return
        now = time.monotonic()
        if endpoint.down:  # a failed probe: wait longer before the next
            endpoint.probe_gap = min(2 * endpoint.probe_gap, MAX_PROBE_S)
        else:
            endpoint.down, endpoint.probe_gap, endpoint.taken_out_at = True, FIRST_PROBE_S, now
            why = "cannot connect" if outcome == "unreachable" else f"{endpoint.failures} failed attempts in a row"
            others = "its requests go to the others" if self.in_service() else "no endpoint is in service"
            log.warning("%s: endpoint %s taken out (%s); %s; probing it again in %g s", self.name,
                        endpoint.label, why, others, endpoint.probe_gap)
        endpoint.probe_at = now + endpoint.probe_gap


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
