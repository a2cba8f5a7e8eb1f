"""Synthetic streams and store fixtures shared by the store tests and the benchmarks.

The generators yield :class:`SynthFrame` values with exact integer timing, like an ingest
pipeline would hand them to the writer: H.264-like video (length-prefixed NAL units, a key
frame every ``gop`` frames, random sizes), G.711-like audio (every frame a key frame) and ONVIF
metadata XML documents. Payloads are deterministic for a seed and carry their frame number,
so read-back tests can compare bytes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from nvr.store import Store
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.types import SampleEntrySpec, TrackRef
from nvr.store.writer import StoreWriter, TrackWriter

T0 = 1_750_000_000_000_000
"""2025-06-15T15:06:40Z in microseconds: a round start time for synthetic streams."""

H264_ENTRY = SampleEntrySpec(
    codec="H264",
    clock_rate=90_000,
    parameters=b"\x00\x00\x00\x08\x67\x64\x00\x28\xac\xd9\x40\x78\x00\x00\x00\x04\x68\xeb\xe3\xcb",
    width=1920,
    height=1080,
)
PCMU_ENTRY = SampleEntrySpec(codec="PCMU", clock_rate=8_000, sample_rate=8_000, channels=1)
JPEG_ENTRY = SampleEntrySpec(codec="JPEG", clock_rate=90_000, width=640, height=480)
METADATA_ENTRY = SampleEntrySpec(codec="ONVIF-METADATA", clock_rate=90_000)


@dataclass(frozen=True, slots=True)
class SynthFrame:
    data: bytes
    capture_us: int
    duration: int
    key: bool
    entry: SampleEntrySpec

    @property
    def args(self) -> tuple[bytes, int, int, bool, SampleEntrySpec]:
        """Positional arguments of ``TrackWriter.append`` / ``TrackHandle.submit``."""
        return (self.data, self.capture_us, self.duration, self.key, self.entry)


def _payload(rng: random.Random, number: int, size: int) -> bytes:
    head = struct.pack(">Q", number)
    return head + rng.randbytes(max(0, size - len(head)))


def video_frames(
    count: int,
    *,
    start_us: int = T0,
    fps: float = 25,
    gop: int = 25,
    clock_rate: int = 90_000,
    mean_size: int = 2_000,
    seed: int = 1,
    entry: SampleEntrySpec = H264_ENTRY,
    first: int = 0,
    clock_ppm: int = 0,
) -> Iterator[SynthFrame]:
    """H.264-like access units: one length-prefixed NAL unit each (IDR every ``gop`` frames,
    5x the mean size). ``fps`` may be fractional (29.97: durations alternate so the RTP clock
    stays exact). ``clock_ppm`` makes the capture clock run fast (+) or slow (-) against the
    RTP clock. Frame numbers start at ``first``; ``start_us`` is frame ``first``'s time."""
    rng = random.Random(seed * 1_000_003 + first)
    num, den = _ratio(fps)

    def pts(n: int) -> int:
        return n * clock_rate * den // num

    base = pts(first)
    for n in range(first, first + count):
        key = n % gop == 0
        size = max(16, int(rng.expovariate(1 / mean_size) * (5 if key else 1)))
        nal = bytes([0x65 if key else 0x41])
        body = nal + _payload(rng, n, size - 5)
        rel_us = (pts(n) - base) * 1_000_000 // clock_rate
        capture = start_us + rel_us + rel_us * clock_ppm // 1_000_000
        yield SynthFrame(
            struct.pack(">I", len(body)) + body,
            capture,
            pts(n + 1) - pts(n),
            key,
            entry,
        )


def audio_frames(
    count: int,
    *,
    start_us: int = T0,
    samples: int = 160,
    seed: int = 2,
    entry: SampleEntrySpec = PCMU_ENTRY,
    first: int = 0,
) -> Iterator[SynthFrame]:
    """G.711-like audio: ``samples`` bytes a frame (20 ms at 8 kHz), every frame a key frame."""
    rng = random.Random(seed * 1_000_003 + first)
    rate = entry.clock_rate
    for n in range(first, first + count):
        rel = (n - first) * samples
        yield SynthFrame(
            _payload(rng, n, samples),
            start_us + rel * 1_000_000 // rate,
            samples,
            True,
            entry,
        )


def jpeg_frames(
    count: int, *, start_us: int = T0, fps: int = 10, seed: int = 3
) -> Iterator[SynthFrame]:
    """Intra-only video: every frame a key frame."""
    return video_frames(
        count, start_us=start_us, fps=fps, gop=1, seed=seed, entry=JPEG_ENTRY, mean_size=1_000
    )


def metadata_frames(
    count: int, *, start_us: int = T0, interval_us: int = 1_000_000
) -> Iterator[SynthFrame]:
    """ONVIF metadata documents, one every ``interval_us`` (each a key frame)."""
    rate = METADATA_ENTRY.clock_rate
    for n in range(count):
        utc = start_us + n * interval_us
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
            f'<tt:VideoAnalytics><tt:Frame UtcTime="{utc}" Number="{n}"/></tt:VideoAnalytics>'
            "</tt:MetadataStream>"
        ).encode()
        yield SynthFrame(doc, utc, interval_us * rate // 1_000_000, True, METADATA_ENTRY)


def _ratio(fps: float) -> tuple[int, int]:
    if fps == int(fps):
        return int(fps), 1
    if abs(fps - 29.97) < 1e-6:
        return 30_000, 1_001
    if abs(fps - 59.94) < 1e-6:
        return 60_000, 1_001
    raise ValueError(f"unsupported frame rate {fps}")


def append_all(writer: TrackWriter, frames: Iterable[SynthFrame]) -> int:
    """Append frames synchronously; returns how many were stored."""
    return sum(writer.append(*f.args) for f in frames)


# ---- stores -----------------------------------------------------------------------------------


def make_settings(root: Path, *, dirs: int = 1, **kw: Any) -> StoreSettings:
    kw.setdefault("segment_seconds", 60.0)
    kw.setdefault("checkpoint_seconds", 0.05)
    return StoreSettings(
        dirs=tuple(
            StorageDirSettings(path=root / f"media{i}", min_free_bytes=0) for i in range(dirs)
        ),
        **kw,
    )


def make_store(engine: Engine, root: Path, **kw: Any) -> Store:
    """An opened store over ``engine`` with storage directories under ``root``."""
    store = Store(engine, make_settings(root, **kw))
    store.open()
    return store


# ---- database trouble ---------------------------------------------------------------------------


class FlakyDatabase:
    """Make an engine's statements (and new connections) fail like an unreachable server
    while :attr:`down` is set."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.down = False
        self.failures = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "do_connect", self._connect)

    def _fail(self, what: str) -> None:
        self.failures += 1
        raise OperationalError(what, {}, ConnectionRefusedError("simulated: database down"))

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.down:
            self._fail(statement)

    def _connect(self, *args: Any) -> None:
        if self.down:
            self._fail("connect")

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "do_connect", self._connect)


class CommitCounter:
    """Counts committed transactions on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        event.listen(engine, "commit", self._commit)

    def _commit(self, conn: Any) -> None:
        self.count += 1

    def remove(self) -> None:
        event.remove(self.engine, "commit", self._commit)


def sync_writer(
    store: Store, recording_token: str, track_token: str = "VIDEO001", **kw: Any
) -> tuple[StoreWriter, TrackWriter]:
    """A synchronous writer (no threads) for one track of ``store``: tests drive checkpoints
    themselves with ``StoreWriter.checkpoint()``."""
    writer = StoreWriter(
        store.sessions, store.dirs, store.settings, live=store.live, listener=store.listener
    )
    track = store.get_track(recording_token, track_token)
    return writer, writer.open_track(TrackRef(track.id, recording_token, track_token), **kw)


# ---- a faster database fixture ------------------------------------------------------------------

from tests.conftest import engine as store_engine  # noqa: E402,F401  (store tests' ``engine``)
