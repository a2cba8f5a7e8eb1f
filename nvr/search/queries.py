"""Keyset-paginated reads of the search index (blocking: call from worker threads).

Every page continues after a ``(time_us, id)`` position, so a page costs the same at the start
and at the end of a day, nothing is returned twice and rows inserted behind the position are
never seen twice. Which index serves a page depends on the scope (migration 0003):

* a few recordings in scope — one index range scan per recording on
  ``(recording_id, time_us, id)``, merged by ``UNION ALL`` + ``ORDER BY`` + ``LIMIT``;
* else a few topics in the filter — the same per topic on ``(topic_id, time_us, id)``;
* else one scan of ``(time_us, id)`` with the scope as a row filter.

A merge of ``k`` arms reads at most ``k * limit`` index entries, so the arms are capped
(``MAX_ARMS``); past that the global scan wins anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, or_, select, union_all, update
from sqlalchemy.orm import Session

from nvr.db.models import Event, EventTopic, PtzPosition, Recording, Run, Track
from nvr.search.types import EventRow, Keyset, PtzBox, PtzRow
from nvr.store.types import TrackInfo

MAX_ARMS: Final = 24

_EVENT_COLUMNS: Final = (
    Event.id,
    Event.recording_id,
    Event.track_id,
    Event.time_us,
    Event.topic_id,
    Event.is_property,
    Event.property_operation,
    Event.source,
    Event.data,
    Event.message_xml,
)
_PTZ_COLUMNS: Final = (
    PtzPosition.id,
    PtzPosition.recording_id,
    PtzPosition.track_id,
    PtzPosition.time_us,
    PtzPosition.pan,
    PtzPosition.tilt,
    PtzPosition.zoom,
    PtzPosition.pan_tilt_space,
    PtzPosition.zoom_space,
)


# ---- topics and tokens -------------------------------------------------------------------------


def load_topics(s: Session) -> dict[int, str]:
    return {tid: topic for tid, topic in s.execute(select(EventTopic.id, EventTopic.topic))}


def ensure_topics(s: Session, topics: Iterable[str]) -> dict[str, int]:
    """Ids of ``topics``, adding the unknown ones (concurrent adders are harmless)."""
    wanted = set(topics)
    known = {t: i for i, t in load_topics(s).items() if t in wanted}
    missing = sorted(wanted - set(known))
    if missing:
        s.execute(_insert_ignoring_duplicates(s, EventTopic), [{"topic": t} for t in missing])
        known.update({t: i for i, t in load_topics(s).items() if t in wanted})
    return known


def _insert_ignoring_duplicates(s: Session, table: type[Any]) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


def topics_for(s: Session, topics: dict[int, str], rows: Sequence[Any]) -> None:
    """Reload the (tiny) topic table when ``rows`` use topics indexed after ``topics`` was."""
    if any(r.topic_id not in topics for r in rows):
        topics.update(load_topics(s))


def recording_tokens(s: Session, ids: Sequence[int] | None) -> dict[int, str]:
    query = select(Recording.id, Recording.token)
    if ids is not None:
        query = query.where(Recording.id.in_(ids))
    return dict(s.execute(query.order_by(Recording.id)).all())


# ---- keyset pages ------------------------------------------------------------------------------


def _after(time_col: Any, id_col: Any, after: Keyset | None, forward: bool) -> list[Any]:
    """Rows strictly after ``after`` in walking order, written so the time bound is a range
    condition of the index (``time >= t AND (time > t OR id > i)``)."""
    if after is None:
        return []
    t, i = after
    if forward:
        return [time_col >= t, or_(time_col > t, id_col > i)]
    return [time_col <= t, or_(time_col < t, id_col < i)]


def _ordered(query: Select[Any], time_col: Any, id_col: Any, forward: bool) -> Select[Any]:
    if forward:
        return query.order_by(time_col, id_col)
    return query.order_by(time_col.desc(), id_col.desc())


def _merged(arms: Sequence[Select[Any]], forward: bool, limit: int) -> Select[Any]:
    """The arms (several: ``UNION ALL`` of the limited arms) re-ordered and limited, with the
    recording and track tokens joined to the at most ``limit`` rows that remain."""
    merged = (
        arms[0] if len(arms) == 1 else union_all(*(select(arm.subquery()) for arm in arms))
    ).subquery()
    query = (
        select(merged, Recording.token.label("recording_token"), Track.token.label("track_token"))
        .join(Recording, Recording.id == merged.c.recording_id)
        .outerjoin(Track, Track.id == merged.c.track_id)
    )
    return _ordered(query, merged.c.time_us, merged.c.id, forward).limit(limit)


def _arms(
    columns: Sequence[Any],
    table_time: Any,
    table_id: Any,
    base: list[ColumnElement[bool]],
    partitions: list[list[ColumnElement[bool]]],
    forward: bool,
    limit: int,
) -> Select[Any]:
    arms = [
        _ordered(select(*columns).where(*base, *extra), table_time, table_id, forward).limit(limit)
        for extra in partitions
    ]
    return _merged(arms, forward, limit)


def events_page(
    s: Session,
    *,
    lo: int,
    hi: int,
    forward: bool,
    after: Keyset | None,
    limit: int,
    recordings: Sequence[int] | None = None,
    topics: Sequence[int] | None = None,
) -> list[Any]:
    """The next ``limit`` index rows in walking order (raw rows: see :func:`event_row`)."""
    if (recordings is not None and not recordings) or (topics is not None and not topics):
        return []
    base: list[ColumnElement[bool]] = [Event.time_us >= lo, Event.time_us <= hi]
    base += _after(Event.time_us, Event.id, after, forward)
    by_recording = recordings is not None and len(recordings) <= MAX_ARMS
    by_topic = topics is not None and len(topics) <= MAX_ARMS
    if by_recording and (not by_topic or len(recordings or ()) <= len(topics or ())):
        assert recordings is not None
        if topics is not None:
            base.append(Event.topic_id.in_(topics))
        partitions = [[Event.recording_id == r] for r in recordings]
    elif by_topic:
        assert topics is not None
        if recordings is not None:
            base.append(Event.recording_id.in_(recordings))
        partitions = [[Event.topic_id == t] for t in topics]
    else:
        if recordings is not None:
            base.append(Event.recording_id.in_(recordings))
        if topics is not None:
            base.append(Event.topic_id.in_(topics))
        partitions = [[]]
    query = _arms(_EVENT_COLUMNS, Event.time_us, Event.id, base, partitions, forward, limit)
    return list(s.execute(query).all())


def _items(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, dict):
        return tuple(value.items())
    if isinstance(value, list):  # [[name, value], ...] keeps repeated names
        return tuple((str(k), str(v)) for k, v in value)
    return ()


def event_row(row: Any, topics: dict[int, str]) -> EventRow:
    """A row of :func:`events_page` or :func:`latest_events` as a result."""
    return EventRow(
        recording_token=row.recording_token,
        track_token=row.track_token or "",
        time_us=row.time_us,
        topic=topics.get(row.topic_id, ""),
        is_property=bool(row.is_property),
        property_operation=row.property_operation,
        source=_items(row.source),
        data=_items(row.data),
        message_xml=row.message_xml,
    )


def ptz_page(
    s: Session,
    *,
    lo: int,
    hi: int,
    forward: bool,
    after: Keyset | None,
    limit: int,
    recordings: Sequence[int] | None = None,
    box: PtzBox | None = None,
) -> list[Any]:
    """The next PTZ positions in walking order; with ``box`` only those inside it."""
    if recordings is not None and not recordings:
        return []
    P = PtzPosition
    base: list[ColumnElement[bool]] = [P.time_us >= lo, P.time_us <= hi]
    base += _after(P.time_us, P.id, after, forward)
    if box is not None:
        for column, bounds in ((P.pan, box.pan), (P.tilt, box.tilt), (P.zoom, box.zoom)):
            if bounds is not None:
                base.append(column.between(*bounds))
    if recordings is not None and len(recordings) <= MAX_ARMS:
        partitions = [[P.recording_id == r] for r in recordings]
    else:
        if recordings is not None:
            base.append(P.recording_id.in_(recordings))
        partitions = [[]]
    query = _arms(_PTZ_COLUMNS, P.time_us, P.id, base, partitions, forward, limit)
    return list(s.execute(query).all())


def ptz_row(row: Any) -> PtzRow:
    return PtzRow(
        recording_token=row.recording_token,
        track_token=row.track_token or "",
        time_us=row.time_us,
        pan=row.pan,
        tilt=row.tilt,
        zoom=row.zoom,
        pan_tilt_space=row.pan_tilt_space,
        zoom_space=row.zoom_space,
    )


# ---- state at an instant (virtual start-state events) -------------------------------------------


def data_present(s: Session, track_ids: Sequence[int], time_us: int) -> set[int]:
    """The tracks among ``track_ids`` with data at ``time_us`` (a run covers it)."""
    if not track_ids:
        return set()
    rows = s.execute(
        select(Run.track_id)
        .where(Run.track_id.in_(track_ids), Run.start_us <= time_us, Run.end_us >= time_us)
        .distinct()
    )
    return {track_id for (track_id,) in rows}


def tracks_of(s: Session, recording_ids: Sequence[int]) -> list[TrackInfo]:
    rows = s.execute(
        select(Track, Recording.token)
        .join(Recording, Recording.id == Track.recording_id)
        .where(Track.recording_id.in_(recording_ids))
        .order_by(Track.recording_id, Track.id)
    ).all()
    return [
        TrackInfo(t.id, t.recording_id, token, t.token, t.kind, t.description, t.created_us)
        for t, token in rows
    ]


def latest_events(
    s: Session, recording_id: int, topic_id: int, time_us: int, limit: int
) -> list[Any]:
    """The newest ``limit`` rows of one topic of one recording at or before ``time_us``."""
    query = (
        select(*_EVENT_COLUMNS)
        .where(
            Event.recording_id == recording_id,
            Event.topic_id == topic_id,
            Event.time_us <= time_us,
        )
        .order_by(Event.time_us.desc(), Event.id.desc())
        .limit(limit)
    )
    return list(s.execute(_merged([query], False, limit)).all())


def property_topics(s: Session) -> set[int]:
    """Topics that have had property events (the candidates for start states)."""
    return set(s.scalars(select(EventTopic.id).where(EventTopic.is_property.is_(True))))


def mark_property_topics(s: Session, topic_ids: Iterable[int]) -> None:
    ids = sorted(set(topic_ids))
    if ids:
        s.execute(
            update(EventTopic)
            .where(EventTopic.id.in_(ids), EventTopic.is_property.is_(False))
            .values(is_property=True)
        )
