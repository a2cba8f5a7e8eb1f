"""What the Search service says about recordings: RecordingInformation, the summary and the
media attributes, read from the store's catalog tables (blocking: call from threads).

RecordingStatus is derived, since no table holds it: ``Recording`` while the bus says
``IsRecording=true`` or a run is still open, ``Stopped`` once there is data, ``Initiated``
before. Tracks without data are left out of RecordingInformation (search.md §3), so an
XPath filter on ``//Track`` only sees tracks that recorded something.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape

from lxml import etree
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import MetadataIndexMark, Recording, Run, SampleEntry, Segment, Track
from nvr.events import EventBus
from nvr.ingest.history import RECORDING_STATE
from nvr.onvif.namespaces import TT
from nvr.search.timefmt import format_us
from nvr.search.types import RecordingView, TrackView
from nvr.store.types import Interval, NoRecording, RecordingInfo, TrackInfo

RecordingStates = Callable[[], Mapping[str, bool]]
"""Recording token → IsRecording, as the recording engine last published it."""

VIDEO_ENCODINGS: Final = {"H264": "H264", "H265": "H265", "JPEG": "JPEG", "MP4V-ES": "MPV4-ES"}
AUDIO_ENCODINGS: Final = {"PCMU": "G711", "PCMA": "G711", "AAC": "AAC"}


def bus_recording_states(bus: EventBus) -> RecordingStates:
    def states() -> dict[str, bool]:
        return {
            dict(e.source).get("RecordingToken", ""): dict(e.data).get("IsRecording") == "true"
            for e in bus.current_properties()
            if e.topic == RECORDING_STATE
        }

    return states


_RECORDING_COLUMNS: Final = (
    Recording.id,
    Recording.token,
    Recording.source_id,
    Recording.source_name,
    Recording.source_location,
    Recording.source_description,
    Recording.source_address,
    Recording.content,
    Recording.max_retention_us,
    Recording.created_us,
)
"""In the order of :class:`RecordingInfo`'s fields (plain rows: pages build no ORM objects)."""
_TRACK_COLUMNS: Final = (
    Track.id,
    Track.recording_id,
    Track.token,
    Track.kind,
    Track.description,
    Track.created_us,
)


class RecordingViews:
    def __init__(self, sessions: sessionmaker[Session], states: RecordingStates) -> None:
        self._sessions = sessions
        self._states = states

    def page(
        self, after_id: int, limit: int, ids: Sequence[int] | None = None
    ) -> list[RecordingView]:
        """Recordings with ``id > after_id`` in id order (keyset), at most ``limit``."""
        query = select(*_RECORDING_COLUMNS).where(Recording.id > after_id)
        if ids is not None:
            query = query.where(Recording.id.in_(ids))
        with self._sessions() as s:
            rows = s.execute(query.order_by(Recording.id).limit(limit)).all()
            return self._views(s, rows)

    def one(self, token: str) -> RecordingView:
        with self._sessions() as s:
            row = s.execute(select(*_RECORDING_COLUMNS).where(Recording.token == token)).first()
            if row is None:
                raise NoRecording(token)
            return self._views(s, [row])[0]

    def _views(self, s: Session, rows: Sequence[Any]) -> list[RecordingView]:
        if not rows:
            return []
        tokens = {r.id: r.token for r in rows}
        # pages are id ranges: a range condition keeps the statements constant (an IN list
        # of a page's ids would be a new statement to parse and plan every time)
        span = Track.recording_id.between(min(tokens), max(tokens))
        by_recording: dict[int, list[TrackInfo]] = {}
        tracks = s.execute(select(*_TRACK_COLUMNS).where(span).order_by(Track.id))
        for tid, rid, token, kind, description, created in tracks:
            if rid in tokens:
                info = TrackInfo(tid, rid, tokens[rid], token, kind, description, created)
                by_recording.setdefault(rid, []).append(info)
        data: dict[int, tuple[Interval, bool]] = {}
        ranges = s.execute(
            select(
                Run.track_id,
                func.min(Run.start_us),
                func.max(Run.end_us),
                func.max(case((Run.open, 1), else_=0)),
            )
            .join(Track, Track.id == Run.track_id)
            .where(span)
            .group_by(Run.track_id)
        )
        for track_id, lo, hi, is_open in ranges:
            data[track_id] = (Interval(int(lo), int(hi)), bool(is_open))
        states = self._states()
        views = []
        for row in rows:
            infos = by_recording.get(row.id, [])
            with_data = [TrackView(t, data[t.id][0]) for t in infos if t.id in data]
            open_run = any(data[t.id][1] for t in infos if t.id in data)
            if states.get(row.token) or open_run:
                status = "Recording"
            else:
                status = "Stopped" if with_data else "Initiated"
            info = RecordingInfo(*row, tracks=tuple(infos))
            views.append(RecordingView(info, tuple(with_data), status))
        return views

    def summary(self) -> tuple[int | None, int | None, int]:
        """(DataFrom, DataUntil, NumberRecordings) of the whole device."""
        with self._sessions() as s:
            lo, hi = s.execute(select(func.min(Run.start_us), func.max(Run.end_us))).one()
            count = s.scalar(select(func.count(Recording.id))) or 0
        return lo, hi, int(count)


_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True)
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    """Text content: escaped, characters XML cannot hold dropped."""
    return escape(_NOT_XML.sub("", text))


def information_element(view: RecordingView) -> etree._Element:
    """tt:RecordingInformation as XML: what a RecordingInformationFilter is evaluated on
    (written as text and parsed once: several times faster than element by element)."""
    info = view.recording
    parts = [
        f'<tt:RecordingInformation xmlns:tt="{TT}">',
        f"<tt:RecordingToken>{_x(info.token)}</tt:RecordingToken>",
        f"<tt:Source><tt:SourceId>{_x(info.source_id)}</tt:SourceId>",
        f"<tt:Name>{_x(info.source_name)}</tt:Name>",
        f"<tt:Location>{_x(info.source_location)}</tt:Location>",
        f"<tt:Description>{_x(info.source_description)}</tt:Description>",
        f"<tt:Address>{_x(info.source_address)}</tt:Address></tt:Source>",
    ]
    if view.earliest_us is not None and view.latest_us is not None:
        parts.append(f"<tt:EarliestRecording>{format_us(view.earliest_us)}</tt:EarliestRecording>")
        parts.append(f"<tt:LatestRecording>{format_us(view.latest_us)}</tt:LatestRecording>")
    parts.append(f"<tt:Content>{_x(info.content)}</tt:Content>")
    for track in view.tracks:
        parts.append(
            f"<tt:Track><tt:TrackToken>{_x(track.track.token)}</tt:TrackToken>"
            f"<tt:TrackType>{track.track.kind}</tt:TrackType>"
            f"<tt:Description>{_x(track.track.description)}</tt:Description>"
            f"<tt:DataFrom>{format_us(track.data.start_us)}</tt:DataFrom>"
            f"<tt:DataTo>{format_us(track.data.end_us)}</tt:DataTo></tt:Track>"
        )
    parts.append(f"<tt:RecordingStatus>{view.status}</tt:RecordingStatus>")
    parts.append("</tt:RecordingInformation>")
    return etree.fromstring("".join(parts).encode(), _PARSER)


# ---- media attributes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrackAttributes:
    track: TrackView
    codec: str
    width: int | None = None
    height: int | None = None
    framerate: float = 0.0
    bitrate_kbps: int | None = None
    sample_rate: int | None = None
    can_contain_ptz: bool = False
    can_contain_analytics: bool = False
    can_contain_notifications: bool = False
    ptz_spaces: str = ""

    @property
    def encoding(self) -> str:
        table = VIDEO_ENCODINGS if self.track.track.kind == "Video" else AUDIO_ENCODINGS
        return table.get(self.codec, self.codec)


@dataclass(frozen=True, slots=True)
class MediaAttributes:
    recording_token: str
    tracks: tuple[TrackAttributes, ...]
    from_us: int
    until_us: int


def _segment_at(s: Session, track_id: int, time_us: int) -> Any:
    return s.execute(
        select(
            Segment.sample_entry_id,
            Segment.frames,
            Segment.duration,
            Segment.bytes,
            Segment.clock_rate,
            SampleEntry.codec,
            SampleEntry.width,
            SampleEntry.height,
            SampleEntry.sample_rate,
        )
        .join(SampleEntry, SampleEntry.id == Segment.sample_entry_id)
        .where(Segment.track_id == track_id, Segment.start_us <= time_us, Segment.end_us >= time_us)
        .order_by(Segment.start_us.desc())
        .limit(1)
    ).first()


def _validity(s: Session, track: TrackView, entry_id: int, time_us: int) -> tuple[int, int]:
    """Where the sample entry in force at ``time_us`` began and ends (within the data)."""
    other = Segment.track_id == track.track.id, Segment.sample_entry_id != entry_id
    before = s.scalar(select(func.max(Segment.end_us)).where(*other, Segment.end_us <= time_us))
    after = s.scalar(select(func.min(Segment.start_us)).where(*other, Segment.start_us > time_us))
    return (
        track.data.start_us if before is None else int(before),
        track.data.end_us if after is None else int(after),
    )


def media_attributes(
    sessions: sessionmaker[Session], view: RecordingView, time_us: int
) -> MediaAttributes | None:
    """The attributes of the tracks with data at ``time_us``; None if no track has any."""
    found: list[TrackAttributes] = []
    lo, hi = view.earliest_us or time_us, view.latest_us or time_us
    with sessions() as s:
        marks = {
            m.track_id: m
            for m in s.scalars(
                select(MetadataIndexMark).where(
                    MetadataIndexMark.track_id.in_([t.track.id for t in view.tracks])
                )
            )
        }
        for track in view.tracks:
            seg = _segment_at(s, track.track.id, time_us)
            if seg is None:
                continue
            start, end = _validity(s, track, seg.sample_entry_id, time_us)
            lo, hi = max(lo, start), min(hi, end)
            seconds = seg.duration / seg.clock_rate if seg.clock_rate else 0.0
            mark = marks.get(track.track.id)
            found.append(
                TrackAttributes(
                    track=track,
                    codec=seg.codec,
                    width=seg.width,
                    height=seg.height,
                    framerate=round(seg.frames / seconds, 3) if seconds else 0.0,
                    bitrate_kbps=int(seg.bytes * 8 / seconds / 1000) if seconds else None,
                    sample_rate=seg.sample_rate,
                    can_contain_ptz=bool(mark and mark.has_ptz),
                    can_contain_analytics=bool(mark and mark.has_analytics),
                    can_contain_notifications=bool(mark and mark.has_events),
                    ptz_spaces=mark.ptz_spaces if mark else "",
                )
            )
    if not found:
        return None
    return MediaAttributes(view.recording.token, tuple(found), min(lo, time_us), max(hi, time_us))
