"""Plain values shared by the store's modules and its callers (ingest, replay, search, export).

Times are integer microseconds since the Unix epoch (UTC); durations are in the track's RTP
clock units. Nothing here touches the database or the disk.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import time
from dataclasses import dataclass, fields, make_dataclass
from typing import Protocol

TRACK_KINDS = ("Video", "Audio", "Metadata", "Extended")
"""tt:TrackType values."""


class StoreError(Exception):
    """Base of the store's errors that callers are expected to handle."""


class NoRecording(StoreError, LookupError):
    """No recording has this token (ONVIF ter:NoRecording)."""


class NoTrack(StoreError, LookupError):
    """The recording has no track with this token (ONVIF ter:NoTrack)."""


class TokenInUse(StoreError, ValueError):
    """A recording or track with this token already exists."""


class InvalidToken(StoreError, ValueError):
    """A token is empty or longer than a tt:ReferenceToken may be."""


class TrackBusy(StoreError):
    """A writer is already open for this track."""


@dataclass(frozen=True, slots=True)
class SampleEntrySpec:
    """What a decoder needs to know about a track's frames; a change starts a new segment.

    Ingest should reuse one instance while the parameters do not change: the writer compares
    by identity first, so the per-frame check is one pointer comparison.
    """

    codec: str
    """H264, H265, JPEG, AAC, PCMU, PCMA or ONVIF-METADATA."""
    clock_rate: int
    parameters: bytes = b""
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def digest(self) -> str:
        """Stable identity of the parameters: equal specs share one SampleEntry row."""
        h = hashlib.sha256()
        h.update(self.codec.encode())
        for value in (self.clock_rate, self.width, self.height, self.sample_rate, self.channels):
            h.update(struct.pack(">q", -1 if value is None else value))
        h.update(self.parameters)
        return h.hexdigest()


@dataclass(frozen=True, slots=True)
class SampleEntryInfo:
    """A stored sample entry: its row id and the parameters."""

    id: int
    spec: SampleEntrySpec


@dataclass(frozen=True, slots=True)
class TrackInfo:
    id: int
    recording_id: int
    recording_token: str
    token: str
    kind: str
    description: str
    created_us: int


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    id: int
    token: str
    source_id: str
    source_name: str
    source_location: str
    source_description: str
    source_address: str
    content: str
    max_retention_us: int
    created_us: int
    tracks: tuple[TrackInfo, ...] = ()

    def track(self, token: str) -> TrackInfo | None:
        return next((t for t in self.tracks if t.token == token), None)


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed time range ``[start_us, end_us]``."""

    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A block of contiguous data of one track; gaps lie between runs."""

    id: int
    start_us: int
    end_us: int
    open: bool
    """Still being written: its end moves with every checkpoint."""


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """An indexed segment, as listings see it (no frame index)."""

    id: int
    run_id: int
    start_us: int
    end_us: int
    clock_rate: int
    sample_entry_id: int
    storage_dir_id: int
    path: str
    frames: int
    bytes: int
    open: bool


@dataclass(frozen=True, slots=True)
class CleanPoint:
    """A key frame where decoding can start (replay.md B.6)."""

    time_us: int
    segment_id: int
    index: int
    """Frame number inside the segment."""
    run_id: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One stored access unit, as the reader hands it to replay and export."""

    data: bytes
    """A ``memoryview`` instead from a cursor opened with ``views`` (replay)."""
    time_us: int
    duration: int
    """In ``clock_rate`` units."""
    clock_rate: int
    key: bool
    sample_entry_id: int
    run_id: int
    segment_id: int
    index: int
    first_in_run: bool
    """First frame after a gap or at the start of footage (replay sets D)."""
    last_in_run: bool
    """Last frame before a gap or at the end of footage of a finished run (replay sets E)."""

    @property
    def duration_us(self) -> int:
        return self.duration * 1_000_000 // self.clock_rate


_FrameSlots = make_dataclass(
    "_FrameSlots", [(f.name, f.type) for f in fields(Frame)], slots=True, eq=False, repr=False
)
"""Frame's slot layout without the frozen ``__init__`` (one ``object.__setattr__`` call per
field, about 1 us a frame): :func:`new_frame` fills one of these, then makes it a Frame."""


def new_frame(
    data: bytes,
    time_us: int,
    duration: int,
    clock_rate: int,
    key: bool,
    sample_entry_id: int,
    run_id: int,
    segment_id: int,
    index: int,
    first_in_run: bool,
    last_in_run: bool,
) -> Frame:
    """``Frame(...)`` with positional arguments, several times cheaper (the reader makes
    millions): the same fields, a plain frozen Frame."""
    f = _FrameSlots(
        data,
        time_us,
        duration,
        clock_rate,
        key,
        sample_entry_id,
        run_id,
        segment_id,
        index,
        first_in_run,
        last_in_run,
    )
    f.__class__ = Frame  # same slots, so the layouts match; the result is a plain Frame
    return f  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class DeletedTrack:
    """The data a deletion removed from one track: search turns it into DeleteTrackData."""

    recording_token: str
    token: str
    kind: str
    intervals: tuple[Interval, ...]
    segments: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a delete operation removed; files still listed as garbage are retried later."""

    tracks: tuple[DeletedTrack, ...]
    files_unlinked: int
    files_pending: int
    recording_token: str | None = None
    """Set when the whole recording was deleted."""

    @property
    def segments(self) -> int:
        return sum(t.segments for t in self.tracks)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tracks)


@dataclass(frozen=True, slots=True)
class StorageDirStatus:
    id: int | None
    path: str
    available: bool
    writable: bool
    """Configured and available: new segments may go here."""
    error: str | None
    free_bytes: int
    used_bytes: int
    max_bytes: int | None
    min_free_bytes: int


class WriterState(enum.Enum):
    IDLE = "idle"
    """No run: not started, waiting for a key frame, or closed."""
    RECORDING = "recording"
    ERROR = "error"
    """Cannot write (disk full, no usable storage directory): frames are dropped and counted."""


@dataclass(frozen=True, slots=True)
class TrackStatus:
    """A snapshot of one track writer, for status pages and the ONVIF job state."""

    track_id: int
    state: WriterState
    error: str | None
    frames_written: int
    bytes_written: int
    dropped_before_key: int
    """Frames dropped because a run must start at a key frame."""
    dropped_error: int
    """Frames dropped in the error state (disk full, no storage)."""
    dropped_overlap: int
    """Frames dropped because their time lies before data already stored for the track."""
    dropped_queue: int
    """Frames the writer service refused because its queue was full."""
    runs_started: int
    segments_closed: int
    last_time_us: int | None


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """The index committer: is the database keeping up?"""

    database_ok: bool
    pending_segments: int
    checkpoints: int
    failures: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class TrackRef:
    """Which track a listener callback is about."""

    track_id: int
    recording_token: str = ""
    track_token: str = ""


@dataclass(frozen=True, slots=True)
class ClosedSegment:
    start_us: int
    end_us: int
    frames: int
    bytes: int
    sha256: str
    storage_dir_id: int
    path: str


class StoreListener(Protocol):
    """Writer events for the search layer (RecordingHistory) and monitoring.

    Called on the writer thread: implementations must be quick and must not block (queue the
    work). Exceptions are logged and ignored.
    """

    def run_started(self, track: TrackRef, start_us: int) -> None: ...

    def run_ended(self, track: TrackRef, end_us: int) -> None: ...

    def sample_entry_changed(
        self, track: TrackRef, time_us: int, spec: SampleEntrySpec
    ) -> None: ...

    def segment_closed(self, track: TrackRef, segment: ClosedSegment) -> None: ...

    def writer_error(self, track: TrackRef, error: str) -> None: ...

    def writer_recovered(self, track: TrackRef) -> None: ...


class NullListener:
    """A listener that ignores everything; subclass it to handle only some events."""

    def run_started(self, track: TrackRef, start_us: int) -> None:
        pass

    def run_ended(self, track: TrackRef, end_us: int) -> None:
        pass

    def sample_entry_changed(self, track: TrackRef, time_us: int, spec: SampleEntrySpec) -> None:
        pass

    def segment_closed(self, track: TrackRef, segment: ClosedSegment) -> None:
        pass

    def writer_error(self, track: TrackRef, error: str) -> None:
        pass

    def writer_recovered(self, track: TrackRef) -> None:
        pass


def now_us() -> int:
    """Wall-clock time in integer microseconds since the Unix epoch."""
    return time.time_ns() // 1000
