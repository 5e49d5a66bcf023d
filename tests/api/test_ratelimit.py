"""The token bucket behind the anonymous-feedback limit, on a clock the test moves."""

from __future__ import annotations

import math

import pytest

from digitlab.api import ratelimit
from digitlab.api.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval_per_address() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # one every 10 s after a burst of 6
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == pytest.approx(10.0)
    assert limiter.take("b") == 0.0  # another address has its own bucket
    clock.now += 5
    assert limiter.take("a") == pytest.approx(5.0)  # half a token back: not yet
    clock.now += 5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(10.0)


def test_zero_per_minute_refuses_everyone() -> None:
    assert RateLimiter(0).take("a") == math.inf


def test_idle_addresses_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_EVERY", 10)
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    for k in range(11):
        limiter.take(f"10.0.0.{k}")
    clock.now += 60  # every bucket is full again
    limiter.take("10.0.1.1")
    assert len(limiter._buckets) == 1
