"""Recordings and tracks: create, look up, change, delete (with their data).

Deleting moves every media file of the deleted tracks onto the garbage list in the same
transaction that deletes the rows, then unlinks the files and clears their garbage rows; a
crash in between leaves garbage rows that recovery finishes, never a file nobody owns nor a row
pointing at nothing.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import TOKEN_LEN, Garbage, Recording, Run, Segment, Track
from nvr.store.garbage import collect
from nvr.store.storage_dirs import StorageDirs
from nvr.store.types import (
    TRACK_KINDS,
    Deleted,
    DeletedTrack,
    Interval,
    InvalidToken,
    NoRecording,
    NoTrack,
    RecordingInfo,
    TokenInUse,
    TrackInfo,
    now_us,
)

log = logging.getLogger(__name__)

DEFAULT_TRACKS: tuple[tuple[str, str], ...] = (
    ("VIDEO001", "Video"),
    ("AUDIO001", "Audio"),
    ("META001", "Metadata"),
)
"""The tracks CreateRecording makes (recording.md 4.2): (token, kind)."""

_KIND_PREFIX = {"Video": "VIDEO", "Audio": "AUDIO", "Metadata": "META", "Extended": "EXT"}

RECORDING_FIELDS = (
    "source_id",
    "source_name",
    "source_location",
    "source_description",
    "source_address",
    "content",
    "max_retention_us",
)


def check_token(token: str) -> str:
    if not token or len(token) > TOKEN_LEN:
        raise InvalidToken(f"token must be 1 to {TOKEN_LEN} characters: {token!r}")
    return token


def new_token() -> str:
    """A locally generated token: 36 characters, so a VMS can prefix it within 64."""
    return str(uuid.uuid4())


def _recording_info(row: Recording, tracks: Sequence[Track]) -> RecordingInfo:
    return RecordingInfo(
        id=row.id,
        token=row.token,
        source_id=row.source_id,
        source_name=row.source_name,
        source_location=row.source_location,
        source_description=row.source_description,
        source_address=row.source_address,
        content=row.content,
        max_retention_us=row.max_retention_us,
        created_us=row.created_us,
        tracks=tuple(_track_info(t, row.token) for t in tracks),
    )


def _track_info(row: Track, recording_token: str) -> TrackInfo:
    return TrackInfo(
        id=row.id,
        recording_id=row.recording_id,
        recording_token=recording_token,
        token=row.token,
        kind=row.kind,
        description=row.description,
        created_us=row.created_us,
    )


class Catalog:
    """Recording and track rows, and the data that goes with them."""

    def __init__(self, sessions: sessionmaker[Session], dirs: StorageDirs) -> None:
        self._sessions = sessions
        self._dirs = dirs

    # ---- recordings -------------------------------------------------------------------------

    def create_recording(
        self,
        token: str | None = None,
        *,
        tracks: Iterable[tuple[str, str]] = DEFAULT_TRACKS,
        **fields: Any,
    ) -> RecordingInfo:
        """Create a recording and its tracks ((token, kind) pairs; default VIDEO001, AUDIO001,
        META001). ``fields`` are the Recording columns in :data:`RECORDING_FIELDS`."""
        token = check_token(token or new_token())
        unknown = set(fields) - set(RECORDING_FIELDS)
        if unknown:
            raise TypeError(f"unknown recording fields {sorted(unknown)}")
        track_list = list(tracks)
        for track_token, kind in track_list:
            check_token(track_token)
            _check_kind(kind)
        if len({t for t, _ in track_list}) != len(track_list):
            raise TokenInUse("duplicate track tokens")
        now = now_us()
        try:
            with self._sessions.begin() as s:
                row = Recording(token=token, created_us=now, **fields)
                s.add(row)
                s.flush()
                rows = [
                    Track(recording_id=row.id, token=t, kind=k, description="", created_us=now)
                    for t, k in track_list
                ]
                s.add_all(rows)
                s.flush()
                return _recording_info(row, rows)
        except IntegrityError:
            raise TokenInUse(f"recording {token!r} already exists") from None

    def get_recording(self, token: str) -> RecordingInfo:
        with self._sessions() as s:
            row = s.scalars(select(Recording).where(Recording.token == token)).first()
            if row is None:
                raise NoRecording(token)
            tracks = s.scalars(
                select(Track).where(Track.recording_id == row.id).order_by(Track.id)
            ).all()
            return _recording_info(row, tracks)

    def recordings(self) -> list[RecordingInfo]:
        with self._sessions() as s:
            rows = s.scalars(select(Recording).order_by(Recording.id)).all()
            tracks = s.scalars(select(Track).order_by(Track.id)).all()
        by_rec: dict[int, list[Track]] = {}
        for t in tracks:
            by_rec.setdefault(t.recording_id, []).append(t)
        return [_recording_info(r, by_rec.get(r.id, [])) for r in rows]

    def update_recording(self, token: str, **fields: Any) -> RecordingInfo:
        unknown = set(fields) - set(RECORDING_FIELDS)
        if unknown:
            raise TypeError(f"unknown recording fields {sorted(unknown)}")
        with self._sessions.begin() as s:
            row = s.scalars(select(Recording).where(Recording.token == token)).first()
            if row is None:
                raise NoRecording(token)
            for name, value in fields.items():
                setattr(row, name, value)
        return self.get_recording(token)

    def delete_recording(self, token: str) -> Deleted:
        """Delete a recording, its tracks and all their data."""
        with self._sessions.begin() as s:
            rec = s.scalars(select(Recording).where(Recording.token == token)).first()
            if rec is None:
                raise NoRecording(token)
            tracks = s.scalars(select(Track).where(Track.recording_id == rec.id)).all()
            deleted, garbage_ids = self._garbage_tracks(s, tracks, token)
            s.execute(delete(Recording).where(Recording.id == rec.id))
        return self._collect(deleted, garbage_ids, token)

    # ---- tracks -----------------------------------------------------------------------------

    def create_track(
        self, recording_token: str, kind: str, token: str | None = None, description: str = ""
    ) -> TrackInfo:
        """Add a track; without a token the next free one of the ONVIF style (VIDEO002 …)."""
        _check_kind(kind)
        try:
            with self._sessions.begin() as s:
                rec = self._recording_row(s, recording_token)
                if token is None:
                    token = self._next_track_token(s, rec.id, kind)
                check_token(token)
                row = Track(
                    recording_id=rec.id,
                    token=token,
                    kind=kind,
                    description=description,
                    created_us=now_us(),
                )
                s.add(row)
                s.flush()
                return _track_info(row, recording_token)
        except IntegrityError:
            raise TokenInUse(f"track {token!r} exists in {recording_token!r}") from None

    def get_track(self, recording_token: str, track_token: str) -> TrackInfo:
        with self._sessions() as s:
            row = s.execute(
                select(Track)
                .join(Recording, Recording.id == Track.recording_id)
                .where(Recording.token == recording_token, Track.token == track_token)
            ).scalar_one_or_none()
            if row is None:
                self._recording_row(s, recording_token)
                raise NoTrack(f"{recording_token}/{track_token}")
            return _track_info(row, recording_token)

    def track_by_id(self, track_id: int) -> TrackInfo:
        with self._sessions() as s:
            found = s.execute(
                select(Track, Recording.token)
                .join(Recording, Recording.id == Track.recording_id)
                .where(Track.id == track_id)
            ).first()
        if found is None:
            raise NoTrack(f"track id {track_id}")
        return _track_info(found[0], found[1])

    def update_track(self, recording_token: str, track_token: str, description: str) -> TrackInfo:
        info = self.get_track(recording_token, track_token)
        with self._sessions.begin() as s:
            row = s.get(Track, info.id)
            if row is None:
                raise NoTrack(f"{recording_token}/{track_token}")
            row.description = description
        return self.get_track(recording_token, track_token)

    def delete_track(self, recording_token: str, track_token: str) -> Deleted:
        """Delete one track and all its data."""
        info = self.get_track(recording_token, track_token)
        with self._sessions.begin() as s:
            row = s.get(Track, info.id)
            if row is None:
                raise NoTrack(f"{recording_token}/{track_token}")
            deleted, garbage_ids = self._garbage_tracks(s, [row], recording_token)
            s.execute(delete(Track).where(Track.id == row.id))
        return self._collect(deleted, garbage_ids, None)

    def data_ranges(self, recording_token: str) -> dict[str, Interval]:
        """Oldest and newest data per track token (tt:TrackInformation DataFrom/DataTo);
        tracks without data are absent."""
        with self._sessions() as s:
            rows = s.execute(
                select(Track.token, func.min(Run.start_us), func.max(Run.end_us))
                .join(Recording, Recording.id == Track.recording_id)
                .join(Run, Run.track_id == Track.id)
                .where(Recording.token == recording_token)
                .group_by(Track.token)
            ).all()
        return {token: Interval(int(lo), int(hi)) for token, lo, hi in rows}

    # ---- deletion -----------------------------------------------------------------------------

    def _collect(
        self, deleted: tuple[DeletedTrack, ...], garbage_ids: list[int], recording: str | None
    ) -> Deleted:
        """Unlink the listed files (``garbage.collect``: files of unavailable directories stay
        listed for recovery) and tell the storage directories what was freed."""
        roots = {h.id: h.root for h in self._dirs.handles() if h.available}
        done = collect(self._sessions, garbage_ids, roots)
        return Deleted(deleted, done.files, done.failed, recording_token=recording)

    def _garbage_tracks(
        self, s: Session, tracks: Sequence[Track], recording_token: str
    ) -> tuple[tuple[DeletedTrack, ...], list[int]]:
        """List the tracks' files as garbage in the transaction that deletes their rows;
        returns what is deleted and the garbage ids."""
        if not tracks:
            return (), []
        ids = [t.id for t in tracks]
        segs = s.execute(
            select(Segment.track_id, Segment.storage_dir_id, Segment.path, Segment.bytes).where(
                Segment.track_id.in_(ids)
            )
        ).all()
        runs = s.execute(
            select(Run.track_id, Run.start_us, Run.end_us)
            .where(Run.track_id.in_(ids))
            .order_by(Run.start_us)
        ).all()
        now = now_us()
        garbage_ids: list[int] = []
        if segs:
            garbage_ids = list(
                s.scalars(
                    insert(Garbage).returning(Garbage.id),
                    [{"storage_dir_id": d, "path": p, "created_us": now} for _, d, p, _ in segs],
                )
            )
        freed: dict[int, int] = {}
        for _, dir_id, _, nbytes in segs:
            freed[dir_id] = freed.get(dir_id, 0) + nbytes
        for dir_id, nbytes in freed.items():
            self._dirs.note_freed(dir_id, nbytes)
        result = []
        for t in tracks:
            mine = [seg for seg in segs if seg[0] == t.id]
            result.append(
                DeletedTrack(
                    recording_token=recording_token,
                    token=t.token,
                    kind=t.kind,
                    intervals=tuple(Interval(a, b) for tid, a, b in runs if tid == t.id),
                    segments=len(mine),
                    bytes=sum(seg[3] for seg in mine),
                )
            )
        return tuple(result), garbage_ids

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _recording_row(s: Session, token: str) -> Recording:
        row = s.scalars(select(Recording).where(Recording.token == token)).first()
        if row is None:
            raise NoRecording(token)
        return row

    @staticmethod
    def _next_track_token(s: Session, recording_id: int, kind: str) -> str:
        prefix = _KIND_PREFIX[kind]
        taken = set(s.scalars(select(Track.token).where(Track.recording_id == recording_id)))
        pattern = re.compile(rf"^{prefix}(\d+)$")
        numbers = [int(m.group(1)) for t in taken if (m := pattern.match(t))]
        n = max(numbers, default=0) + 1
        while f"{prefix}{n:03d}" in taken:
            n += 1
        return f"{prefix}{n:03d}"


def _check_kind(kind: str) -> None:
    if kind not in TRACK_KINDS:
        raise ValueError(f"track kind must be one of {TRACK_KINDS}, not {kind!r}")
