"""Capped exponential back-off with jitter, for reconnecting to cameras.

Hundreds of receivers may lose their cameras at once (a switch reboots); without jitter they
would all retry in lock-step and hammer the cameras and the event loop together. The policy is
"full jitter" over an exponentially growing, capped window, with a floor so that a camera that
refuses instantly is not retried in a tight loop. The helper is sans-IO apart from the optional
:meth:`Backoff.sleep`, so the receiver engine can also use the delays with its own scheduler.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Parameters of the delay sequence (seconds).

    ``initial`` is the window of the first retry, growing by ``factor`` per failure up to
    ``maximum``; the actual delay is drawn uniformly from ``[window * (1 - jitter), window]``
    and is never below ``minimum``. A connection that stayed up for ``reset_after`` seconds
    counts as healthy: the next failure starts again from ``initial``.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5
    minimum: float = 0.5
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("back-off needs 0 < initial <= maximum")
        if self.factor < 1:
            raise ValueError("back-off factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("back-off jitter must be in 0..1")
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError("back-off minimum must be in 0..maximum")


class Backoff:
    """The state of one reconnecting peer: how many failures in a row, and the next delay.

    Typical use::

        backoff = Backoff()
        while running:
            started = loop.time()
            try:
                await run_one_connection()
            except RtspClientError:
                backoff.failed(loop.time() - started)
                await backoff.sleep()
    """

    __slots__ = ("_rng", "attempts", "policy")

    def __init__(self, policy: BackoffPolicy | None = None, *, rng: random.Random | None = None):
        self.policy = policy or BackoffPolicy()
        self._rng = rng or random.Random()
        self.attempts = 0  # consecutive failures

    def reset(self) -> None:
        """Forget past failures (the peer is healthy again)."""
        self.attempts = 0

    def failed(self, uptime: float = 0.0) -> float:
        """Record a failure after ``uptime`` seconds of service; return the delay to wait."""
        if uptime >= self.policy.reset_after:
            self.attempts = 0
        self.attempts += 1
        return self.delay()

    def window(self) -> float:
        """Upper bound of the current delay (no jitter)."""
        p = self.policy
        if self.attempts <= 0:
            return 0.0
        # Cap the exponent so huge attempt counts cannot overflow the float.
        exponent = min(self.attempts - 1, 64)
        return min(p.maximum, p.initial * p.factor**exponent)

    def delay(self) -> float:
        """A jittered delay for the current attempt count (0 before any failure)."""
        window = self.window()
        if window <= 0:
            return 0.0
        p = self.policy
        low = window * (1.0 - p.jitter)
        return max(p.minimum, self._rng.uniform(low, window))

    async def sleep(self) -> float:
        """Sleep for :meth:`delay` seconds; returns how long it slept."""
        seconds = self.delay()
        if seconds > 0:
            await asyncio.sleep(seconds)
        return seconds
