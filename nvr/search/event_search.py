"""FindEvents as a lazy producer: the index rows in time order, and the virtual start-state
events (search.md §5).

With IncludeStartState the search first reports, at StartPoint (backward searches: at both
ends), the value in force of every matching property for every recording in scope:
``Track/State`` from the runs (the store's truth, not the index), ``Recording/State`` from the
newest such event (else "some track had data"), and — the GeneralStartEvents capability —
any other property topic from its newest events per source item set. Virtual events carry
``PropertyOperation="Initialized"`` and ``StartStateEvent=true``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from lxml import etree
from sqlalchemy.orm import Session, sessionmaker

from nvr.events import Event
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE
from nvr.onvif.events_filter import EventFilter
from nvr.onvif.namespaces import TT, clark
from nvr.search import queries
from nvr.search.searches import TimeScan, now_us
from nvr.search.timefmt import format_us
from nvr.search.types import EventRow, TimeRange
from nvr.store.types import TrackInfo

STATE_EVENTS_PER_TOPIC: Final = 64
"""Newest events of a property topic looked at per recording for its start state (one per
source: a rule engine may report many sources under one topic)."""


def _element_names(message_xml: str | None) -> tuple[tuple[str, Any], ...]:
    if not message_xml:
        return ()
    root = etree.fromstring(message_xml.encode())
    return tuple(
        (e.get("Name", ""), None) for e in root.iter(clark(TT, "ElementItem"))
    )  # names only: what an ItemFilter can test


def _as_bus_event(row: EventRow) -> Event:
    return row.event(_element_names(row.message_xml))


class EventSearch(TimeScan):
    """FindEvents: index rows in time order (descending backward), with virtual start-state
    events first (forward) or at both ends (backward) when IncludeStartState is set."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rng: TimeRange,
        recordings: Sequence[int] | None,
        event_filter: EventFilter,
        include_start_state: bool,
        *,
        settle_us: int,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        super().__init__(sessions, rng, settle_us, clock_us)
        self._recordings = recordings
        self._filter = event_filter
        self._start_state = include_start_state
        self._names: dict[int, str] | None = None
        """Topic names by id (the event_topics table: tens of rows)."""
        self._topics: list[int] | None = None
        self._pending: list[EventRow] = []
        self._started = False
        self._ends_done = False

    @property
    def done(self) -> bool:
        return self._scanned and self._ends_done and not self._pending

    def _resolve(self, s: Session) -> dict[int, str]:
        names = queries.load_topics(s)
        self._names = names
        if self._filter.topics:
            matches = self._filter.matches_topic
            self._topics = [t for t, name in names.items() if matches(name)]
        return names

    def _page(self, s: Session, window: dict[str, Any]) -> list[Any]:
        return queries.events_page(s, **window, recordings=self._recordings, topics=self._topics)

    def fetch(self, limit: int) -> list[EventRow]:
        out: list[EventRow] = []
        with self._sessions() as s:
            names = self._names
            if names is None or self._waiting:  # live: new topics may have appeared
                names = self._resolve(s)
                if self._start_state and not self._started:
                    out += self._states(s, names, self.range.start_us)
                self._started = True
            if not self._scanned:
                page = self._walk(s, limit)
                queries.topics_for(s, names, page)
                for raw in page:
                    row = queries.event_row(raw, names)
                    if not self._filter.contents or self._filter.matches(_as_bus_event(row)):
                        out.append(row)
            if self._scanned and not self._ends_done:
                self._ends_done = True
                if self._start_state and not self.range.forward:
                    self._pending += self._states(s, names, self.range.end_us)
        out += self._pending
        self._pending = []
        return out

    # ---- virtual start-state events ---------------------------------------------------------

    def _states(self, s: Session, names: dict[int, str], time_us: int) -> list[EventRow]:
        """The value of every matching property at ``time_us``, per recording in scope."""
        tokens = queries.recording_tokens(s, self._recordings)
        tracks = queries.tracks_of(s, sorted(tokens))
        present = queries.data_present(s, [t.id for t in tracks], time_us)
        out: list[EventRow] = []
        if self._filter.matches_topic(TRACK_STATE):
            out += [
                _virtual(
                    t.recording_token,
                    t.token,
                    time_us,
                    TRACK_STATE,
                    (("RecordingToken", t.recording_token), ("Track", t.token)),
                    (("IsDataPresent", _flag(t.id in present)),),
                )
                for t in tracks
            ]
        ids = {name: tid for tid, name in names.items()}
        general = [
            topic_id
            for topic_id in sorted(queries.property_topics(s))
            if names.get(topic_id) not in (None, TRACK_STATE, RECORDING_STATE)
            and self._filter.matches_topic(names[topic_id])
        ]
        for recording_id, token in tokens.items():
            if self._filter.matches_topic(RECORDING_STATE):
                mine = [t for t in tracks if t.recording_id == recording_id]
                out.append(_recording_state(s, recording_id, token, mine, present, ids, time_us))
            for topic_id in general:
                out += _latest_per_source(s, names, recording_id, topic_id, time_us)
        if self._filter.contents:
            out = [row for row in out if self._filter.matches(_as_bus_event(row))]
        return out


def _recording_state(
    s: Session,
    recording_id: int,
    token: str,
    tracks: Sequence[TrackInfo],
    present: set[int],
    topic_ids: dict[str, int],
    time_us: int,
) -> EventRow:
    """IsRecording in force: the newest Recording/State at or before the instant, else
    whether any track of the recording had data then."""
    value = None
    topic_id = topic_ids.get(RECORDING_STATE)
    if topic_id is not None:
        latest = queries.latest_events(s, recording_id, topic_id, time_us, 1)
        if latest:
            value = str((latest[0].data or {}).get("IsRecording", "")) == "true"
    if value is None:
        value = any(t.id in present for t in tracks)
    return _virtual(
        token, "", time_us, RECORDING_STATE, (("RecordingToken", token),),
        (("IsRecording", _flag(value)),),
    )  # fmt: skip


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _virtual(
    recording: str,
    track: str,
    time_us: int,
    topic: str,
    source: tuple[tuple[str, str], ...],
    data: tuple[tuple[str, str], ...],
) -> EventRow:
    return EventRow(recording, track, time_us, topic, True, "Initialized", source, data, None, True)


def _latest_per_source(
    s: Session, names: dict[int, str], recording_id: int, topic_id: int, time_us: int
) -> list[EventRow]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for raw in queries.latest_events(s, recording_id, topic_id, time_us, STATE_EVENTS_PER_TOPIC):
        row = queries.event_row(raw, names)
        if row.source in seen or not row.is_property:
            continue
        seen.add(row.source)
        out.append(
            EventRow(
                row.recording_token, row.track_token, time_us, row.topic, True, "Initialized",
                row.source, row.data, _initialized(row.message_xml, time_us), True,
            )
        )  # fmt: skip
    return out


def _initialized(message_xml: str | None, time_us: int) -> str | None:
    """A recorded message restamped as the virtual event's (time, Initialized)."""
    if message_xml is None:
        return None
    root = etree.fromstring(message_xml.encode())
    root.set("UtcTime", format_us(time_us))
    root.set("PropertyOperation", "Initialized")
    return etree.tostring(root, encoding="unicode")
