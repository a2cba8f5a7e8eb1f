"""The index forgets what the store deletes (blocking; the indexer thread calls it).

Two ways data goes, two ways the index follows:

* ``tns1:RecordingConfig/DeleteTrackData`` (retention, explicit deletes): the track's rows in
  ``[StartTime, EndTime]`` go — events of the track and PTZ positions;
* a front cut without such an event (another process deleted, the daemon was down): every
  prune pass compares each track's oldest data (``min(runs.start_us)``) with what it saw last
  time and drops the track's rows older than that. Recording-level rows (Recording/State, the
  RecordingConfig events) go once the recording's oldest data is a minute past them.

After a cut the ``Track/State`` events are made to agree with the runs again inside the cut
range — the runs are the truth — so ``IsDataPresent=true`` moves to the new first sample
(search.md §7), and a ``Recording/State IsRecording=true`` in force at a cut is carried to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from nvr.db.models import Event, PtzPosition, Recording, Run, Track
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE

RECORDING_SLACK_US = 60_000_000
"""Recording-level rows this long before the oldest data stay: Recording/State true is
published when a job starts, a little before its first frame is stored."""
_PRESENT = "IsDataPresent"
_RECORDING = "IsRecording"


@dataclass(frozen=True, slots=True)
class TrackKey:
    recording_id: int
    track_id: int
    recording_token: str
    track_token: str


def delete_track_range(
    s: Session, key: TrackKey, lo: int, hi: int, topic_ids: Mapping[str, int]
) -> int:
    """Forget ``[lo, hi]`` of one track, then re-derive its Track/State events there."""
    removed = s.execute(
        delete(Event).where(Event.track_id == key.track_id, Event.time_us.between(lo, hi))
    ).rowcount
    s.execute(
        delete(PtzPosition).where(
            PtzPosition.track_id == key.track_id, PtzPosition.time_us.between(lo, hi)
        )
    )
    resync_track_state(s, key, lo, hi, topic_ids)
    return int(removed or 0)


def resync_track_state(
    s: Session, key: TrackKey, lo: int, hi: int, topic_ids: Mapping[str, int]
) -> None:
    """Make the Track/State events in ``[lo, hi]`` say what the runs say."""
    topic_id = topic_ids[TRACK_STATE]
    runs = s.execute(
        select(Run.start_us, Run.end_us, Run.open).where(
            Run.track_id == key.track_id, Run.end_us >= lo, Run.start_us <= hi
        )
    ).all()
    wanted: set[tuple[int, str]] = set()
    for start, end, is_open in runs:
        if lo <= start <= hi:
            wanted.add((start, "true"))
        if not is_open and lo <= end <= hi:
            wanted.add((end, "false"))
    existing = s.execute(
        select(Event.id, Event.time_us, Event.data).where(
            Event.track_id == key.track_id,
            Event.topic_id == topic_id,
            Event.time_us.between(lo, hi),
        )
    ).all()
    have: set[tuple[int, str]] = set()
    stale = []
    for event_id, time_us, data in existing:
        state = (time_us, str((data or {}).get(_PRESENT, "")))
        if state in wanted and state not in have:
            have.add(state)
        else:
            stale.append(event_id)
    if stale:
        s.execute(delete(Event).where(Event.id.in_(stale)))
    source = {"RecordingToken": key.recording_token, "Track": key.track_token}
    rows = [
        _state_row(key.recording_id, key.track_id, time_us, topic_id, source, {_PRESENT: value})
        for time_us, value in sorted(wanted - have)
    ]
    if rows:
        s.execute(insert(Event), rows)


def _state_row(
    recording_id: int,
    track_id: int | None,
    time_us: int,
    topic_id: int,
    source: dict[str, str],
    data: dict[str, str],
) -> dict[str, Any]:
    return {
        "recording_id": recording_id,
        "track_id": track_id,
        "time_us": time_us,
        "topic_id": topic_id,
        "is_property": True,
        "property_operation": "Changed",
        "source": source,
        "data": data,
        "message_xml": None,
    }


@dataclass(slots=True)
class Pruner:
    """Front cuts found by comparing each track's oldest data with the previous pass."""

    track_from: dict[int, int] = field(default_factory=dict)
    recording_from: dict[int, int] = field(default_factory=dict)

    def prune(self, s: Session, topic_ids: Mapping[str, int]) -> int:
        """One pass; returns how many tracks were cut."""
        rows = s.execute(
            select(
                Run.track_id,
                Track.recording_id,
                Recording.token,
                Track.token,
                func.min(Run.start_us),
            )
            .join(Track, Track.id == Run.track_id)
            .join(Recording, Recording.id == Track.recording_id)
            .group_by(Run.track_id, Track.recording_id, Recording.token, Track.token)
        ).all()
        cut = 0
        firsts: dict[int, tuple[int, str]] = {}
        for track_id, recording_id, recording_token, track_token, data_from in rows:
            key = TrackKey(recording_id, track_id, recording_token, track_token)
            previous = self.track_from.get(track_id)
            if previous is None or data_from > previous:
                cut += self._cut_track(s, key, data_from, topic_ids)
            self.track_from[track_id] = data_from
            first = firsts.get(recording_id)
            if first is None or data_from < first[0]:
                firsts[recording_id] = (data_from, recording_token)
        for recording_id, (data_from, token) in firsts.items():
            previous = self.recording_from.get(recording_id)
            if previous is None or data_from > previous:
                cut = data_from - RECORDING_SLACK_US
                self._cut_recording(s, recording_id, token, cut, topic_ids)
            self.recording_from[recording_id] = data_from
        return cut

    @staticmethod
    def _cut_track(s: Session, key: TrackKey, data_from: int, topic_ids: Mapping[str, int]) -> int:
        older = Event.track_id == key.track_id, Event.time_us < data_from
        if s.scalar(select(Event.id).where(*older).limit(1)) is None:
            return 0
        s.execute(delete(Event).where(*older))
        s.execute(
            delete(PtzPosition).where(
                PtzPosition.track_id == key.track_id, PtzPosition.time_us < data_from
            )
        )
        resync_track_state(s, key, data_from, data_from, topic_ids)
        return 1

    @staticmethod
    def _cut_recording(
        s: Session, recording_id: int, token: str, cut: int, topic_ids: Mapping[str, int]
    ) -> None:
        """Drop the recording-level rows before ``cut``; IsRecording=true in force there is
        carried to ``cut``."""
        older = (
            Event.recording_id == recording_id,
            Event.track_id.is_(None),
            Event.time_us < cut,
        )
        if s.scalar(select(Event.id).where(*older).limit(1)) is None:
            return
        topic_id = topic_ids[RECORDING_STATE]
        in_force = s.execute(
            select(Event.data)
            .where(*older, Event.topic_id == topic_id)
            .order_by(Event.time_us.desc(), Event.id.desc())
            .limit(1)
        ).scalar()
        s.execute(delete(Event).where(*older))
        if str((in_force or {}).get(_RECORDING)) == "true":
            source = {"RecordingToken": token}
            row = _state_row(recording_id, None, cut, topic_id, source, {_RECORDING: "true"})
            s.execute(insert(Event), [row])
