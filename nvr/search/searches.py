"""Recording, PTZ and metadata searches as lazy producers for :mod:`nvr.search.sessions`
(FindEvents, the largest, lives in event_search.py).

Each walks its data in result order with keyset pages (queries.py) and keeps only its position
between requests. Time searches (events, PTZ) whose EndPoint lies in the future are *live*:
they never walk past ``now - settle`` (rows may still be indexed behind that point: the bus
batches, metadata lags one checkpoint and one indexer pass), say ``waiting`` when they catch
up, and are done once the clock has passed EndPoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from nvr.search import queries
from nvr.search.metadata import parse_tree
from nvr.search.recordings import RecordingViews, information_element
from nvr.search.types import (
    Keyset,
    MetadataHit,
    PtzBox,
    PtzRow,
    RecordingView,
    TimeRange,
)
from nvr.search.xpath import Predicate
from nvr.store import Store
from nvr.store.types import Frame, TrackInfo

PAGE: Final = 200
MIN_PAGE: Final = 16
METADATA_BUDGET: Final = 500
"""Documents a FindMetadata request reads at most per fetch."""


def now_us() -> int:
    return time.time_ns() // 1000


class RecordingSearch:
    """FindRecordings: recordings in id order, the XPath filter applied per page."""

    def __init__(
        self, views: RecordingViews, ids: Sequence[int] | None, predicate: Predicate | None
    ) -> None:
        self._views = views
        self._ids = ids
        self._predicate = predicate
        self._after = 0
        self._done = False

    def fetch(self, limit: int) -> list[RecordingView]:
        page = self._views.page(self._after, PAGE if self._predicate else limit, self._ids)
        if len(page) < (PAGE if self._predicate else limit):
            self._done = True
        if page:
            self._after = page[-1].recording.id
        if self._predicate is None:
            return page
        return [v for v in page if self._predicate(information_element(v))]

    @property
    def done(self) -> bool:
        return self._done

    @property
    def waiting(self) -> bool:
        return False

    def close(self) -> None:
        pass


class TimeScan:
    """Keyset walk over ``(time_us, id)`` with the live-edge rule of the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rng: TimeRange,
        settle_us: int,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        self._sessions = sessions
        self.range = rng
        self._settle_us = settle_us
        self._clock_us = clock_us
        self._after: Keyset | None = None
        self._scanned = False
        self._waiting = False

    def _upper(self) -> int:
        if not self.range.live:
            return self.range.hi
        return min(self.range.hi, self._clock_us() - self._settle_us)

    def _page(self, s: Session, window: dict[str, Any]) -> list[Any]:
        """One page of rows from a ``queries.*_page`` function; ``window`` is the walk's part
        of its keyword arguments (lo, hi, forward, after, limit)."""
        raise NotImplementedError

    def _walk(self, s: Session, wanted: int) -> list[Any]:
        """The next page of rows (about ``wanted``, within MIN_PAGE..PAGE); updates the
        position and the scanned/waiting flags."""
        limit = max(MIN_PAGE, min(PAGE, wanted))
        upper = self._upper()
        window = {
            "lo": self.range.lo,
            "hi": upper,
            "forward": self.range.forward,
            "after": self._after,
            "limit": limit,
        }
        rows = self._page(s, window) if upper >= self.range.lo else []
        if rows:
            self._after = (rows[-1].time_us, rows[-1].id)
        if len(rows) < limit:
            self._waiting = self.range.live and upper < self.range.hi
            self._scanned = not self._waiting
        else:
            self._waiting = False
        return rows

    @property
    def waiting(self) -> bool:
        return self._waiting

    def close(self) -> None:
        pass


class PtzSearch(TimeScan):
    """FindPTZPosition: recorded positions inside the filter's volume, or (EnterOrExit) the
    positions where a track's position moves into or out of it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rng: TimeRange,
        recordings: Sequence[int] | None,
        box: PtzBox,
        *,
        settle_us: int,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        super().__init__(sessions, rng, settle_us, clock_us)
        self._recordings = recordings
        self._box = box
        self._inside: dict[str, bool] = {}

    @property
    def done(self) -> bool:
        return self._scanned

    def _page(self, s: Session, window: dict[str, Any]) -> list[Any]:
        box = None if self._box.enter_or_exit else self._box
        return queries.ptz_page(s, **window, recordings=self._recordings, box=box)

    def fetch(self, limit: int) -> list[PtzRow]:
        with self._sessions() as s:
            rows = [queries.ptz_row(r) for r in self._walk(s, limit)]
        if not self._box.enter_or_exit:
            return rows
        out = []
        for row in rows:
            inside = self._box.contains(row)
            if inside != self._inside.get(row.track_token + "\0" + row.recording_token, False):
                out.append(row)
            self._inside[row.track_token + "\0" + row.recording_token] = inside
        return out


class MetadataSearch:
    """FindMetadata: the documents of the metadata tracks in scope matching the XPath filter,
    track after track (the spec orders only FindEvents), at most METADATA_BUDGET documents
    read per fetch."""

    def __init__(
        self,
        store: Store | None,
        rng: TimeRange,
        tracks: Sequence[TrackInfo],
        predicate: Predicate,
    ) -> None:
        self._store = store
        self.range = rng
        self._tracks = list(tracks)
        self._predicate = predicate
        self._frames: Iterator[Frame] | None = None
        self._track: TrackInfo | None = None

    def _next_track(self) -> bool:
        self.close()
        if not self._tracks:
            return False
        if self._store is None:
            self._tracks.clear()
            return False
        self._track = self._tracks.pop(0)
        reader = self._store.reader_for(self._track)
        rng = self.range
        if rng.forward:
            self._frames = reader.frames(rng.lo, rng.hi + 1)
        else:
            self._frames = (
                frame for gop in reader.gops_backward(rng.hi, rng.lo) for frame in reversed(gop)
            )
        return True

    def fetch(self, limit: int) -> list[MetadataHit]:
        out: list[MetadataHit] = []
        budget = METADATA_BUDGET
        while budget > 0 and len(out) < limit:
            if self._frames is None and not self._next_track():
                break
            assert self._frames is not None and self._track is not None
            frame = next(self._frames, None)
            if frame is None:
                self._frames = None
                continue
            budget -= 1
            if not self.range.lo <= frame.time_us <= self.range.hi:
                continue
            try:
                matched = self._predicate(parse_tree(frame.data))
            except ValueError:
                continue
            if matched:
                out.append(
                    MetadataHit(self._track.recording_token, self._track.token, frame.time_us)
                )
        return out

    @property
    def done(self) -> bool:
        return self._frames is None and not self._tracks

    @property
    def waiting(self) -> bool:
        return False

    def close(self) -> None:
        frames, self._frames = self._frames, None
        close: Callable[[], None] | None = getattr(frames, "close", None)
        if close is not None:
            close()
