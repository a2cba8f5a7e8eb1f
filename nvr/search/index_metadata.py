"""Indexing recorded metadata documents: events and PTZ positions, as data is recorded.

Why a periodic scan with a high-water mark per track, not a hook on the ingest path or a store
listener: the index then depends only on what the store has *committed* — the same frames
replay and export see — so it can never index a document a crash later takes back; the mark
lives in the database (``metadata_index_marks``) and moves in the transaction that writes the
rows, so after a restart, a database outage or a slow pass the scan resumes exactly where it
stopped, without duplicates and without holding up the writer thread. The cost is a short
lag: documents become searchable one checkpoint plus one pass (``search.index_interval_seconds``)
after capture. Finding work is one grouped query over the runs of metadata tracks; a track is
read only when its data ends past its mark.

Frame times (the recording's timeline) are the rows' times, not the documents' own UtcTime:
results must point at the media they describe, and the camera's clock may be off.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Event, MetadataIndexMark, PtzPosition, Recording, Run, Track
from nvr.search.metadata import Contents, parse_document, spaces_of
from nvr.search.queries import ensure_topics, mark_property_topics
from nvr.store import Store
from nvr.store.types import Frame

log = logging.getLogger("nvr.search")

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class _Pending:
    track_id: int
    recording_id: int
    recording_token: str
    track_token: str
    until_us: int | None


@dataclass(slots=True)
class _Batch:
    """Rows of one track's documents, written in one transaction with the new mark."""

    events: list[dict[str, Any]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    until_us: int | None = None
    has_ptz: bool = False
    has_analytics: bool = False
    has_events: bool = False
    spaces: set[str] = field(default_factory=set)
    documents: int = 0


def _document_bytes(frame: Frame) -> bytes:
    data = frame.data
    if data[:2] == _GZIP_MAGIC:  # a +gzip stream stored as received
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


class MetadataScanner:
    """Reads new documents of every metadata track and indexes them (one thread at a time)."""

    def __init__(self, sessions: sessionmaker[Session], store: Callable[[], Store | None]) -> None:
        self._sessions = sessions
        self._store = store
        self._warned: set[int] = set()

    def pending(self) -> list[_Pending]:
        """Metadata tracks whose data ends past their mark."""
        with self._sessions() as s:
            ends = (
                select(Run.track_id, func.max(Run.end_us).label("end_us"))
                .join(Track, Track.id == Run.track_id)
                .where(Track.kind == "Metadata")
                .group_by(Run.track_id)
                .subquery()
            )
            rows = s.execute(
                select(
                    Track.id,
                    Track.recording_id,
                    Recording.token,
                    Track.token,
                    MetadataIndexMark.until_us,
                )
                .join(ends, ends.c.track_id == Track.id)
                .join(Recording, Recording.id == Track.recording_id)
                .outerjoin(MetadataIndexMark, MetadataIndexMark.track_id == Track.id)
                .where(
                    (MetadataIndexMark.track_id.is_(None))
                    | (ends.c.end_us > MetadataIndexMark.until_us)
                )
                .order_by(Track.id)
            ).all()
        return [
            _Pending(track_id, recording_id, recording_token, track_token, until_us)
            for track_id, recording_id, recording_token, track_token, until_us in rows
        ]

    def scan(self, budget: int) -> tuple[int, bool]:
        """Index up to ``budget`` documents; returns (documents, whether more are waiting)."""
        store = self._store()
        if store is None:
            return 0, False
        done = 0
        more = False
        for track in self.pending():
            if done >= budget:
                return done, True
            batch = self._read(store, track, budget - done)
            if batch.until_us is None:
                continue
            self._write(track, batch)
            done += batch.documents
            more = more or done >= budget
        return done, more

    def _read(self, store: Store, track: _Pending, budget: int) -> _Batch:
        batch = _Batch()
        reader = store.reader_for(store.catalog.track_by_id(track.track_id))
        start = track.until_us if track.until_us is not None else 0
        for frame in reader.frames(start, batch=min(budget, 256)):
            if frame.time_us < start:
                continue
            if batch.documents >= budget:
                break
            batch.documents += 1
            batch.until_us = frame.time_us + frame.duration_us
            try:
                contents = parse_document(_document_bytes(frame))
            except ValueError as exc:
                if track.track_id not in self._warned:
                    self._warned.add(track.track_id)
                    log.warning(
                        "metadata track %s/%s: document at %d skipped: %s",
                        track.recording_token,
                        track.track_token,
                        frame.time_us,
                        exc,
                    )
                continue
            self._collect(batch, track, frame.time_us, contents)
        return batch

    @staticmethod
    def _collect(batch: _Batch, track: _Pending, time_us: int, contents: Contents) -> None:
        batch.has_analytics |= contents.has_analytics
        for note in contents.notifications:
            batch.has_events = True
            batch.topics.append(note.topic)
            batch.events.append(
                {
                    "recording_id": track.recording_id,
                    "track_id": track.track_id,
                    "time_us": time_us,
                    "topic": note.topic,
                    "is_property": note.is_property,
                    "property_operation": note.property_operation,
                    "source": dict(note.source),
                    "data": dict(note.data),
                    "message_xml": note.message_xml,
                }
            )
        for position in contents.positions:
            batch.has_ptz = True
            batch.spaces |= spaces_of(position)
            batch.positions.append(
                {
                    "recording_id": track.recording_id,
                    "track_id": track.track_id,
                    "time_us": time_us,
                    "pan": position.pan,
                    "tilt": position.tilt,
                    "zoom": position.zoom,
                    "pan_tilt_space": position.pan_tilt_space,
                    "zoom_space": position.zoom_space,
                }
            )

    def _write(self, track: _Pending, batch: _Batch) -> None:
        assert batch.until_us is not None
        with self._sessions.begin() as s:
            ids = ensure_topics(s, batch.topics)
            for row in batch.events:
                row["topic_id"] = ids[row.pop("topic")]
            if batch.events:
                s.execute(insert(Event), batch.events)
                mark_property_topics(s, (r["topic_id"] for r in batch.events if r["is_property"]))
            if batch.positions:
                s.execute(insert(PtzPosition), batch.positions)
            mark = s.get(MetadataIndexMark, track.track_id)
            if mark is None:
                mark = MetadataIndexMark(track_id=track.track_id, until_us=batch.until_us)
                mark.has_ptz = mark.has_analytics = mark.has_events = False
                mark.ptz_spaces = ""
                s.add(mark)
            mark.until_us = batch.until_us
            mark.has_ptz = bool(mark.has_ptz) or batch.has_ptz
            mark.has_analytics = bool(mark.has_analytics) or batch.has_analytics
            mark.has_events = bool(mark.has_events) or batch.has_events
            spaces = set(mark.ptz_spaces.split()) | batch.spaces
            mark.ptz_spaces = " ".join(sorted(spaces))
