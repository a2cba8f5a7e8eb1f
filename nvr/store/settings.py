"""Settings of the store, as plain values: ``nvr.config`` fills them from the TOML file,
environment and flags; tests and benchmarks build them directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StorageDirSettings:
    path: Path
    max_bytes: int | None = None
    """Size cap for our files in this directory; None = the disk is the limit."""
    min_free_bytes: int = 512 * 1024 * 1024
    """Free-space floor: below it the oldest unheld data is deleted."""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    dirs: tuple[StorageDirSettings, ...]
    segment_seconds: float = 60.0
    """Target segment length; segments are cut at the first key frame after it."""
    checkpoint_seconds: float = 2.0
    """At most this long between fsync+index commits: the most a crash can lose."""
    max_clock_step_us: int = 1_000_000
    """A capture time further than this from the run's timeline starts a new run."""
    max_slew_ppm: int = 500
    """How fast a run's timeline may be pulled towards the local clock."""
    retention_interval_seconds: float = 10.0
    extra: dict[str, object] = field(default_factory=dict)
