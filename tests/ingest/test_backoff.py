"""Reconnect back-off: exponential growth, cap, jitter bounds, floor, reset after uptime."""

from __future__ import annotations

import asyncio
import random

import pytest

from nvr.ingest.backoff import Backoff, BackoffPolicy


def test_windows_grow_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(BackoffPolicy(initial=1, maximum=10, factor=2, jitter=0, minimum=0))
    assert backoff.delay() == 0  # no failure yet
    assert [backoff.failed() for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_inside_the_window_and_above_the_floor() -> None:
    policy = BackoffPolicy(initial=0.2, maximum=30, jitter=0.5, minimum=0.3)
    backoff = Backoff(policy, rng=random.Random(7))
    for attempt in range(1, 200):
        delay = backoff.failed()
        window = min(30, 0.2 * 2 ** (attempt - 1))
        assert max(0.3, window / 2) <= delay <= max(0.3, window)


def test_jitter_spreads_peers_apart() -> None:
    delays = {Backoff(rng=random.Random(seed)).failed() for seed in range(20)}
    assert len(delays) == 20


def test_long_uptime_resets_and_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(BackoffPolicy(initial=1, maximum=60, jitter=0, reset_after=30))
    for _ in range(5000):
        backoff.failed(uptime=1)
    assert backoff.delay() == 60
    assert backoff.failed(uptime=31) == 1  # the camera was healthy for a while
    backoff.reset()
    assert backoff.attempts == 0


def test_sleep_waits_the_delay() -> None:
    backoff = Backoff(BackoffPolicy(initial=0.01, maximum=0.01, minimum=0.01))
    backoff.failed()
    assert asyncio.run(backoff.sleep()) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 5, "maximum": 1}, {"factor": 0.5}, {"jitter": 2}, {"minimum": -1}],
)
def test_policy_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)
