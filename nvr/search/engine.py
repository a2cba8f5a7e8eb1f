"""The search engine behind the Search service: scopes, the four searches, sessions.

Everything here blocks on the database and runs in the SOAP worker threads; nothing touches
the event loop. Request problems raise :class:`~nvr.search.types.SearchError` whose
``reason`` is the ONVIF subcode the service answers with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Receiver, Recording, RecordingJob
from nvr.onvif.events_filter import EventFilter
from nvr.search import queries, xpath
from nvr.search.event_search import EventSearch
from nvr.search.index import Generation
from nvr.search.recordings import (
    MediaAttributes,
    RecordingStates,
    RecordingViews,
    information_element,
    media_attributes,
)
from nvr.search.searches import MetadataSearch, PtzSearch, RecordingSearch
from nvr.search.sessions import Batch, Limits, SearchSessions
from nvr.search.types import PtzBox, RecordingView, SearchError, TimeRange
from nvr.store import Store
from nvr.store.types import NoRecording, TrackInfo

RECORDINGS: Final = "recordings"
EVENTS: Final = "events"
PTZ: Final = "ptz"
METADATA: Final = "metadata"


@dataclass(frozen=True, slots=True)
class Scope:
    """tt:SearchScope as requested."""

    sources: tuple[str, ...] = ()
    recordings: tuple[str, ...] = ()
    information_filter: str | None = None


def _now_us() -> int:
    return time.time_ns() // 1000


class SearchEngine:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        store: Callable[[], Store | None] = lambda: None,
        states: RecordingStates = dict,
        limits: Limits = Limits(),
        changes: Generation | None = None,
        settle_us: int = 5_000_000,
        clock_us: Callable[[], int] = _now_us,
    ) -> None:
        self._db = sessions
        self._store = store
        self._settle_us = settle_us
        self._clock_us = clock_us
        self.views = RecordingViews(sessions, states)
        self.searches = SearchSessions(limits, changes=changes)

    # ---- scope ------------------------------------------------------------------------------

    def _recording_ids(self, s: Session, scope: Scope) -> list[int] | None:
        """The union of the listed recordings and the recordings of the listed sources;
        None (all recordings) when neither is listed."""
        if not scope.recordings and not scope.sources:
            return None
        ids: set[int] = set()
        if scope.recordings:
            found = dict(
                s.execute(
                    select(Recording.token, Recording.id).where(
                        Recording.token.in_(scope.recordings)
                    )
                ).all()
            )
            unknown = [t for t in scope.recordings if t not in found]
            if unknown:
                raise SearchError("InvalidToken", f"no recording {unknown[0][:64]!r}")
            ids.update(found.values())
        for source in scope.sources:
            matched = self._recordings_of_source(s, source)
            if matched is None:
                raise SearchError("InvalidSource", f"no source {source[:64]!r}")
            ids.update(matched)
        return sorted(ids)

    @staticmethod
    def _recordings_of_source(s: Session, token: str) -> set[int] | None:
        """Recordings whose source is ``token``: by SourceId, or a job recording from that
        receiver. None when the token names nothing we know."""
        ids = set(s.scalars(select(Recording.id).where(Recording.source_id == token)))
        for recording_id, sources in s.execute(
            select(RecordingJob.recording_id, RecordingJob.sources)
        ):
            if any(isinstance(x, dict) and x.get("token") == token for x in sources or ()):
                ids.add(recording_id)
        if ids:
            return ids
        known = s.scalar(select(Receiver.id).where(Receiver.token == token))
        return set() if known is not None else None

    def _resolve(self, scope: Scope, filter_reason: str) -> tuple[list[int] | None, Any]:
        predicate = None
        if scope.information_filter is not None and scope.information_filter.strip():
            try:
                predicate = xpath.parse(scope.information_filter)
            except xpath.XPathError as exc:
                raise SearchError(filter_reason, f"RecordingInformationFilter: {exc}") from None
        with self._db() as s:
            return self._recording_ids(s, scope), predicate

    def _filtered_ids(self, scope: Scope, filter_reason: str) -> list[int] | None:
        """Recording ids in scope with the RecordingInformationFilter applied."""
        ids, predicate = self._resolve(scope, filter_reason)
        if predicate is None:
            return ids
        matched: list[int] = []
        after = 0
        while page := self.views.page(after, 500, ids):
            matched += [v.recording.id for v in page if predicate(information_element(v))]
            after = page[-1].recording.id
        return matched

    def _range(self, start_us: int, end_us: int | None) -> TimeRange:
        return TimeRange.of(start_us, end_us, self._clock_us())

    # ---- Find* --------------------------------------------------------------------------------

    def find_recordings(self, scope: Scope, max_matches: int | None, keepalive: float) -> str:
        ids, predicate = self._resolve(scope, "InvalidArgVal")
        producer = RecordingSearch(self.views, ids, predicate)
        return self._open(RECORDINGS, producer, keepalive, max_matches)

    def find_events(
        self,
        start_us: int,
        end_us: int | None,
        scope: Scope,
        event_filter: EventFilter,
        include_start_state: bool,
        max_matches: int | None,
        keepalive: float,
    ) -> str:
        rng = self._range(start_us, end_us)
        ids = self._filtered_ids(scope, "InvalidFilterFault")
        producer = EventSearch(
            self._db,
            rng,
            ids,
            event_filter,
            include_start_state,
            settle_us=self._settle_us,
            clock_us=self._clock_us,
        )
        return self._open(EVENTS, producer, keepalive, max_matches, rng)

    def find_ptz(
        self,
        start_us: int,
        end_us: int | None,
        scope: Scope,
        box: PtzBox,
        max_matches: int | None,
        keepalive: float,
    ) -> str:
        rng = self._range(start_us, end_us)
        ids = self._filtered_ids(scope, "InvalidArgVal")
        producer = PtzSearch(
            self._db, rng, ids, box, settle_us=self._settle_us, clock_us=self._clock_us
        )
        return self._open(PTZ, producer, keepalive, max_matches, rng)

    def find_metadata(
        self,
        start_us: int,
        end_us: int | None,
        scope: Scope,
        metadata_filter: str,
        max_matches: int | None,
        keepalive: float,
    ) -> str:
        try:
            predicate = xpath.parse(metadata_filter)
        except xpath.XPathError as exc:
            raise SearchError("InvalidArgVal", f"MetadataStreamFilter: {exc}") from None
        rng = self._range(start_us, end_us)
        ids = self._filtered_ids(scope, "InvalidArgVal")
        store = self._store()
        metadata: list[TrackInfo] = []
        if store is not None:  # no store (yet): nothing recorded to read
            with self._db() as s:
                in_scope = list(queries.recording_tokens(s, ids))
                metadata = [t for t in queries.tracks_of(s, in_scope) if t.kind == "Metadata"]
        producer = MetadataSearch(store, rng, metadata, predicate)
        return self._open(METADATA, producer, keepalive, max_matches, rng)

    def _open(
        self,
        kind: str,
        producer: Any,
        keepalive: float,
        max_matches: int | None,
        rng: TimeRange | None = None,
    ) -> str:
        return self.searches.create(
            kind,
            producer,
            keepalive,
            max_matches,
            start_us=None if rng is None else rng.start_us,
            end_us=None if rng is None else rng.end_us,
        )

    # ---- results and sessions ---------------------------------------------------------------

    def results(
        self,
        token: str,
        kind: str,
        min_results: int | None,
        max_results: int | None,
        wait: float | None,
    ) -> Batch:
        return self.searches.results(
            token, kind, min_results=min_results, max_results=max_results, wait=wait
        )

    def state(self, token: str) -> str:
        return self.searches.state(token)

    def end(self, token: str) -> int:
        return self.searches.end(token, self._clock_us())

    # ---- recordings ---------------------------------------------------------------------------

    def summary(self) -> tuple[int, int, int]:
        lo, hi, count = self.views.summary()
        now = self._clock_us()
        return (now if lo is None else lo), (now if hi is None else hi), count

    def information(self, token: str) -> RecordingView:
        try:
            return self.views.one(token)
        except NoRecording:
            raise SearchError("InvalidToken", f"no recording {token[:64]!r}") from None

    def media_attributes(self, tokens: Sequence[str], time_us: int) -> list[MediaAttributes]:
        if tokens:
            views = [self.information(token) for token in tokens]
        else:
            views = []
            after = 0
            while page := self.views.page(after, 500):
                views += page
                after = page[-1].recording.id
        found = (media_attributes(self._db, view, time_us) for view in views)
        return [m for m in found if m is not None]

    def close(self) -> None:
        self.searches.close()
