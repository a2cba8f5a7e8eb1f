"""One export: plan the range, hold it against retention, stream it into a signed file.

Plan: the tracks asked for (default: all) that have data in the range; the file starts at
the key frame at or before ``start`` (the earliest over the video tracks), which becomes the
origin of every track's timeline; audio and metadata frames before it are left out. Every
distinct set of codec parameters inside the range becomes a sample entry of its track.
Run: frames of all tracks merged by capture time through :class:`TrackTimeline` into
:class:`ExportFileWriter`; progress is the fraction of the range's media time written;
:meth:`ExportJob.cancel` stops within 64 frames and removes the partial file. A hold keeps
retention off the range from before planning until the job ends, whatever the outcome.
"""

from __future__ import annotations

import enum
import heapq
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path

from nvr.export.boxes import Location, SourceEntry
from nvr.export.device_identity import SigningIdentity
from nvr.export.hold import ExportHold
from nvr.export.onvif_file import ExportFileWriter, ExportHeader, ExportTrack, ExportUnit
from nvr.export.sample_entries import UnsupportedCodec, has_inband_parameter_sets, mp4_entry
from nvr.export.timeline import TrackTimeline, UnplannedSampleEntry
from nvr.store import Store
from nvr.store.types import Frame, RecordingInfo, StoreError, TrackInfo, now_us

log = logging.getLogger(__name__)

_KIND_ORDER = {"Video": 0, "Audio": 1, "Metadata": 2}
_NAL_CODECS = ("H264", "H265")
PROGRESS_STEP = 0.001


class ExportError(Exception):
    """The export cannot be made; the message says why."""


class ExportCancelled(ExportError):
    """The export was stopped; its partial file is gone."""


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export. Times are Unix microseconds (UTC); None = from the start / to the end
    of the recorded data. ``tracks`` are track tokens; empty = every track with data."""

    recording: str
    start_us: int | None
    end_us: int | None
    output: Path
    tracks: tuple[str, ...] = ()
    operator: str = ""
    location: Location | None = None
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class PlannedTrack:
    info: TrackInfo
    track_id: int
    """Track ID in the file."""
    entry_ids: tuple[int, ...]
    """Stored sample entries met in the range, in order: stsd entries 1, 2, ..."""
    data_end_us: int


@dataclass(frozen=True, slots=True)
class ExportPlan:
    recording: RecordingInfo
    tracks: tuple[PlannedTrack, ...]
    start_us: int
    """Clean start: the origin of the file's timelines."""
    end_us: int
    """Frames at or after this are not exported."""
    skipped: tuple[str, ...] = ()
    """Tracks asked for that have no data in the range."""

    @property
    def data_end_us(self) -> int:
        return min(self.end_us, max(t.data_end_us for t in self.tracks))


@dataclass(frozen=True, slots=True)
class TrackResult:
    token: str
    track_id: int
    codecs: tuple[str, ...]
    samples: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    size: int
    start_us: int
    end_us: int
    """End of the last exported sample."""
    tracks: tuple[TrackResult, ...]
    fingerprint: str
    """SHA-256 fingerprint of the signing certificate."""
    digest: bytes
    skipped: tuple[str, ...] = field(default=())


class ExportJob:
    """An export that runs once (:meth:`run`, blocking: use a thread); thread-safe to poll
    (:attr:`state`, :attr:`progress`) and to :meth:`cancel` from elsewhere."""

    def __init__(
        self,
        store: Store,
        request: ExportRequest,
        identity: SigningIdentity,
        unit: ExportUnit,
        *,
        on_progress: Callable[[float], None] | None = None,
        durable: bool = True,
    ) -> None:
        self.store = store
        self.request = request
        self.identity = identity
        self.unit = unit
        self.on_progress = on_progress
        self.durable = durable
        self.state = JobState.PENDING
        self.progress = 0.0
        self.error: str | None = None
        self.result: ExportResult | None = None
        self.planned: ExportPlan | None = None
        self.hold: ExportHold | None = None
        self._cancel = threading.Event()

    @property
    def files(self) -> tuple[str, ...]:
        return (self.request.output.name,)

    def cancel(self) -> None:
        """Ask the job to stop; a running job removes its partial file and ends CANCELLED."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """:meth:`cancel` was called."""
        return self._cancel.is_set()

    # ---- planning -----------------------------------------------------------------------------

    def _select(self, rec: RecordingInfo) -> list[TrackInfo]:
        wanted = self.request.tracks
        if not wanted:
            tracks = [t for t in rec.tracks if t.kind in _KIND_ORDER]
        else:
            tracks = []
            for token in wanted:
                track = rec.track(token)
                if track is None:
                    raise ExportError(f"recording {rec.token} has no track {token!r}")
                if track.kind not in _KIND_ORDER:
                    raise ExportError(f"track {token} of kind {track.kind} cannot be exported")
                if track not in tracks:
                    tracks.append(track)
        return sorted(tracks, key=lambda t: _KIND_ORDER[t.kind])  # video first (stable)

    def plan(self) -> ExportPlan:
        """Work out tracks and range, taking the retention hold first. :meth:`run` calls this
        and releases the hold when it ends; a caller that only plans must release it."""
        req = self.request
        try:
            rec = self.store.get_recording(req.recording)
        except StoreError as exc:
            raise ExportError(str(exc)) from None
        tracks = self._select(rec)
        readers = {t.token: self.store.reader_for(t) for t in tracks}
        ranges = [r for r in (readers[t.token].data_range() for t in tracks) if r is not None]
        if not ranges:
            raise ExportError(f"recording {rec.token} has no data in the tracks asked for")
        start = req.start_us if req.start_us is not None else min(r.start_us for r in ranges)
        end = req.end_us if req.end_us is not None else max(r.end_us for r in ranges) + 1
        if end <= start:
            raise ExportError("the export range is empty: the end is not after the start")
        if self.hold is None:
            self.hold = ExportHold(
                self.store.sessions,
                rec.id,
                [t.id for t in tracks],
                start,
                end,
                f"export to {req.output.name}",
            )
            self.hold.acquire()
        clean = start
        videos = [t for t in tracks if t.kind == "Video"]
        points = [readers[t.token].clean_point(start) for t in videos]
        points = [p for p in points if p is not None and p.time_us < end]
        if points:
            clean = min(p.time_us for p in points)
        planned, skipped = [], []
        for track in tracks:
            # Segments holding a frame at or after the clean start, before the end.
            segments = readers[track.token].segments(clean + 1, end - 1)
            entry_ids = tuple(dict.fromkeys(s.sample_entry_id for s in segments))
            if not entry_ids:
                skipped.append(track.token)
                continue
            planned.append(
                PlannedTrack(track, len(planned) + 1, entry_ids, max(s.end_us for s in segments))
            )
        if not planned:
            raise ExportError(
                f"recording {rec.token} has no data between {start} and {end} (microseconds)"
            )
        self.hold.widen(clean)
        self.planned = ExportPlan(rec, tuple(planned), clean, end, tuple(skipped))
        return self.planned

    # ---- running ------------------------------------------------------------------------------

    def run(self) -> ExportResult:
        """Plan, write, sign. Raises :class:`ExportError` (or :class:`ExportCancelled`)."""
        self.state = JobState.RUNNING
        try:
            if self._cancel.is_set():
                raise ExportCancelled("the export was stopped before it started")
            out = self.request.output
            if out.exists() and not self.request.overwrite:
                raise ExportError(f"{out} already exists")
            if not out.parent.is_dir():
                raise ExportError(f"folder {out.parent} does not exist")
            plan = self.plan()
            self.result = self._write(plan)
        except ExportCancelled as exc:
            self.state, self.error = JobState.CANCELLED, str(exc)
            raise
        except ExportError as exc:
            self.state, self.error = JobState.FAILED, str(exc)
            raise
        except Exception as exc:
            self.state, self.error = JobState.FAILED, f"{type(exc).__name__}: {exc}"
            log.exception("export to %s failed", self.request.output)
            raise ExportError(self.error) from exc
        finally:
            if self.hold is not None:
                try:
                    self.hold.release()
                except Exception:
                    log.exception("could not release the hold of export %s", self.request.output)
        self.state = JobState.COMPLETED
        self._report(1.0)
        return self.result

    def _frames(self, plan: ExportPlan, track: PlannedTrack) -> Iterator[Frame]:
        frames = self.store.reader_for(track.info).frames(plan.start_us, plan.end_us, batch=128)
        if track.info.kind == "Video":  # starts at its clean point
            return frames
        return (f for f in frames if f.time_us >= plan.start_us)

    def _track(self, plan: ExportPlan, track: PlannedTrack, first: Frame | None) -> ExportTrack:
        """The file track: a sample entry per stored entry, the source from the recording."""
        specs = [self.store.sample_entry(i).spec for i in track.entry_ids]
        codec = specs[0].codec
        inband = len(specs) > 1 or (
            first is not None
            and codec in _NAL_CODECS
            and has_inband_parameter_sets(codec, first.data)
        )
        entries = []
        for entry_id, spec in zip(track.entry_ids, specs, strict=True):
            key = first.data if first is not None and first.sample_entry_id == entry_id else None
            try:
                entries.append(mp4_entry(spec, inband=inband, key_frame=key))
            except UnsupportedCodec as exc:
                raise ExportError(f"track {track.info.token}: {exc}") from None
        if len({e.handler for e in entries}) != 1:
            raise ExportError(f"track {track.info.token} changes media type inside the range")
        rec = plan.recording
        source = SourceEntry(
            track.track_id, name=rec.source_name or rec.token, url=rec.source_address
        )
        return ExportTrack(
            track.track_id, specs[0].clock_rate, tuple(entries), source, name=track.info.token
        )

    def _write(self, plan: ExportPlan) -> ExportResult:
        streams = [self._frames(plan, t) for t in plan.tracks]
        firsts = [next(s, None) for s in streams]
        tracks = [self._track(plan, t, f) for t, f in zip(plan.tracks, firsts, strict=True)]
        header = ExportHeader(
            unit=self.unit,
            export_time_us=now_us(),
            origin_us=plan.start_us,
            operator=self.request.operator,
            location=self.request.location or _recording_location(plan.recording),
        )
        with ExportFileWriter(
            self.request.output, tracks, header, self.identity, durable=self.durable
        ) as writer:
            timelines = [
                TrackTimeline(
                    t.track_id,
                    et.timescale,
                    plan.start_us,
                    {entry_id: n for n, entry_id in enumerate(t.entry_ids, start=1)},
                    writer.add,
                )
                for t, et in zip(plan.tracks, tracks, strict=True)
            ]
            pairs = [
                zip(chain((f,) if f else (), s), repeat(tl.push), strict=False)
                for f, s, tl in zip(firsts, streams, timelines, strict=True)
            ]
            merged = (
                pairs[0] if len(pairs) == 1 else heapq.merge(*pairs, key=lambda p: p[0].time_us)
            )
            try:
                self._pump(plan, merged)
                for timeline in timelines:
                    timeline.finish()
            except UnplannedSampleEntry as exc:
                raise ExportError(str(exc)) from None
            if not writer.samples:
                raise ExportError("no frames were found in the range")
            done = writer.close()
        end_us = max(plan.start_us + tl.end * 1_000_000 // tl.timescale for tl in timelines)
        return ExportResult(
            path=done.path,
            size=done.size,
            start_us=plan.start_us,
            end_us=end_us,
            tracks=tuple(
                TrackResult(
                    t.info.token,
                    t.track_id,
                    tuple(e.fourcc.decode("latin-1") for e in et.entries),
                    tl.samples,
                )
                for t, et, tl in zip(plan.tracks, tracks, timelines, strict=True)
            ),
            fingerprint=self.identity.fingerprint,
            digest=done.digest,
            skipped=plan.skipped,
        )

    def _pump(
        self, plan: ExportPlan, merged: Iterator[tuple[Frame, Callable[[Frame], None]]]
    ) -> None:
        """Every frame in capture-time order into its track's timeline; progress, the hold's
        lease and cancellation are looked at every 64 frames."""
        span = max(1, plan.data_end_us - plan.start_us)
        last_report = 0.0
        cancel = self._cancel
        hold = self.hold
        assert hold is not None
        for count, (frame, push) in enumerate(merged, start=1):
            push(frame)
            if not count & 63:
                if cancel.is_set():
                    raise ExportCancelled("the export was stopped")
                fraction = min(0.999, (frame.time_us - plan.start_us) / span)
                if fraction - last_report >= PROGRESS_STEP:
                    last_report = fraction
                    self._report(fraction)
                hold.renew()
        if cancel.is_set():
            raise ExportCancelled("the export was stopped")

    def _report(self, fraction: float) -> None:
        self.progress = fraction
        if self.on_progress is not None:
            try:
                self.on_progress(fraction)
            except Exception:
                log.exception("export progress callback failed")


def _recording_location(rec: RecordingInfo) -> Location | None:
    """A ``geo:lat,lon[,alt]`` URI (RFC 5870) in the recording's source location, if any."""
    text = rec.source_location.strip()
    if not text.lower().startswith("geo:"):
        return None
    coords = text[4:].split(";", 1)[0].split(",")
    if len(coords) not in (2, 3):
        return None
    try:
        return Location.from_degrees(*coords, name=rec.source_name)
    except ValueError:
        return None
