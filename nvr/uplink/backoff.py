"""Reconnect back-off of an uplink (uplink.md A.3): ascending, capped, different per device.

A fleet that lost its cloud at the same moment must not come back in lock-step, so every
interval is scaled by a factor in [0.75, 1) derived from the device identity and the uplink's
address: stable for one device (predictable in its logs), spread across devices. Scaling down
keeps the cap a real upper bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

__all__ = ["delays", "spread"]


def spread(device: str, remote_address: str) -> float:
    """This device's factor for this uplink, in [0.75, 1)."""
    digest = hashlib.sha256(f"{device}\n{remote_address}".encode()).digest()
    return 0.75 + 0.25 * int.from_bytes(digest[:8], "big") / 2**64


def delays(factor: float, first: float = 2.0, cap: float = 30.0) -> Iterator[float]:
    """``first``, doubling, until ``cap`` (2, 4, 8, 16, 30, 30 … s by default), each × factor."""
    delay = first
    while True:
        yield min(delay, cap) * factor
        delay = min(delay * 2, cap)
