"""Failed-login throttling per client address.

After ``max_failures`` failed logins within ``window`` seconds an address is locked out, first
for 2 s, doubling with every further failure up to ``max_lockout``. A locked-out address gets
an immediate refusal without any password check, so guessing costs the attacker time and us
nothing; no thread ever sleeps for it. Memory is bounded: the least recently seen addresses
are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Record:
    first: float
    failures: int
    locked_until: float


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 60.0,
        max_lockout: float = 300.0,
        capacity: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_lockout = max_lockout
        self._capacity = capacity
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0 when it may now)."""
        with self._lock:
            record = self._records.get(address)
            if record is None:
                return 0.0
            return max(0.0, record.locked_until - self._clock())

    def failure(self, address: str) -> float:
        """Count a failed login; returns the lockout it now triggers (0 for none)."""
        now = self._clock()
        with self._lock:
            record = self._records.get(address)
            if record is None or (now - record.first > self.window and now >= record.locked_until):
                record = _Record(first=now, failures=0, locked_until=0.0)
            record.failures += 1
            excess = record.failures - self.max_failures
            lockout = 0.0
            if excess > 0:
                lockout = min(self.max_lockout, 2.0 ** min(excess, 30))
                record.locked_until = now + lockout
            self._records[address] = record
            self._records.move_to_end(address)
            while len(self._records) > self._capacity:
                self._records.popitem(last=False)
            return lockout
