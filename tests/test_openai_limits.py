"""The AIMD concurrency limit and the per-minute budgets the openai backend passes through (the endpoint pool that
admits calls under the limit: tests/test_endpoints.py)."""
from __future__ import annotations

import asyncio
import time

import pytest

from wafersage.models.limits import AdaptiveLimiter, MinuteBudget


def test_halves_on_rate_limit_and_grows_by_one_per_success():
    limiter = AdaptiveLimiter(16, cooldown_s=0)
    limiter.on_rate_limited()
    assert limiter.limit == 8
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    assert limiter.limit == 1  # never below min_limit
    for _ in range(30):
        limiter.on_success()
    assert limiter.limit == 16 and limiter.decreases == 5


def test_one_burst_of_429s_halves_once():
    limiter = AdaptiveLimiter(64, cooldown_s=60)
    for _ in range(20):
        limiter.on_rate_limited()
    assert limiter.limit == 32 and limiter.decreases == 1


def test_invalid_bounds():
    with pytest.raises(ValueError, match="min_limit"):
        AdaptiveLimiter(0)


def test_minute_budget_waits_for_refill():
    budget = MinuteBudget(600)  # 10 per second

    async def main() -> float:
        await budget.take(600)  # empties the bucket
        started = time.monotonic()
        await budget.take(2)
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.15  # two units refill in 0.2 s; a lower bound, not a speed target


def test_minute_budget_caps_one_oversize_take():
    budget = MinuteBudget(60)
    asyncio.run(asyncio.wait_for(budget.take(10_000), timeout=5))  # a full bucket admits it at once


def test_minute_budget_positive():
    with pytest.raises(ValueError, match="positive"):
        MinuteBudget(0)
