"""Search sessions (search.md §4): tokens, keep-alive, the Get*Results blocking rule, limits.

A ``Find*`` creates a session around a *producer* — a lazy, keyset-paginated search that hands
out its next results on demand — and returns its token at once. Nothing is searched until
results are asked for, so an abandoned search costs nothing but its entry here.

``results()`` returns as soon as any of these holds (search.md §4):

1. ``MaxResults`` results are ready (never more: the rest stay buffered for the next call);
2. ``MinResults`` results are ready;
3. ``WaitTime`` has passed — but every call scans for at least ``SCAN_BUDGET`` seconds unless
   it has something to return, so a sparse search advances even when clients poll with
   ``WaitTime=PT0S``;
4. the search is complete: the state is then ``Completed``, with (or after) the last batch.

Without Min/Max/WaitTime a call returns what a short scan finds. Waiting only happens at the
live edge of a search whose EndPoint lies in the future; it wakes when the indexer writes.
Out-of-range values are clamped, never refused: MaxResults to [1, max_results], MinResults to
[1, MaxResults], WaitTime to [0, max_wait], KeepAliveTime to [1 s, max_keepalive].

Keep-alive restarts at the start and at the end of every request on the token (a request
blocked longer than the keep-alive cannot lose its session). Expired and ended sessions are
forgotten: their token then faults ``InvalidToken``. A completed session stays until it
expires or is ended (so EndSearch after Completed still answers) but no longer counts against
``max_sessions``; a ``Find*`` beyond that limit is refused (``ResourceProblem``). Tokens are
random, so an old token is never reused.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from nvr.search.index import Generation

SCAN_BUDGET: Final = 0.25
WAIT_SLICE: Final = 0.25
"""Longest sleep at the live edge between looks (the live edge also moves with the clock)."""
PAGE: Final = 200
COMPLETED: Final = "Completed"
SEARCHING: Final = "Searching"


class Producer(Protocol):
    """A lazy search: hands out its next results in order, never one twice."""

    def fetch(self, limit: int) -> list[Any]:
        """Up to ``limit`` next results (fewer, even none, when a page held no matches)."""
        ...

    @property
    def done(self) -> bool:
        """Nothing more will ever come."""
        ...

    @property
    def waiting(self) -> bool:
        """Caught up with what is recorded; more may come as time passes (live edge)."""
        ...

    def close(self) -> None: ...


class UnknownSearch(LookupError):
    """No session has this token (never had, expired, ended, or another kind of search)."""


class TooManySearches(RuntimeError):
    """``max_sessions`` searches are running."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_sessions: int = 16
    max_keepalive: float = 300.0
    max_wait: float = 10.0
    max_results: int = 1000


@dataclass(frozen=True, slots=True)
class Batch:
    results: list[Any]
    state: str


@dataclass(eq=False)
class SearchSession:
    token: str
    kind: str
    producer: Producer
    keepalive: float
    expires: float
    max_matches: int | None
    start_us: int | None = None
    end_us: int | None = None
    """The range as requested (EndSearch answers with them); None for FindRecordings."""
    buffer: deque[Any] = field(default_factory=deque)
    delivered: int = 0
    last_time_us: int | None = None
    """Time of the last result delivered: where the search got to, for EndSearch."""
    busy: int = 0
    completed: bool = False
    ended: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, results: list[Any]) -> None:
        """Buffer new results, never beyond MaxMatches."""
        self.buffer.extend(results)
        if self.max_matches is not None:
            for _ in range(self.delivered + len(self.buffer) - self.max_matches):
                self.buffer.pop()

    @property
    def exhausted(self) -> bool:
        """No more results will be produced (the buffer may still hold some)."""
        if self.max_matches is not None and self.delivered + len(self.buffer) >= self.max_matches:
            return True
        return self.producer.done


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class SearchSessions:
    def __init__(
        self,
        limits: Limits = Limits(),
        *,
        changes: Generation | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._changes = changes or Generation()
        self._clock = clock
        self._sessions: dict[str, SearchSession] = {}
        self._lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------

    def create(
        self,
        kind: str,
        producer: Producer,
        keepalive: float,
        max_matches: int | None = None,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
    ) -> str:
        """Open a session; raises :class:`TooManySearches` at the limit."""
        self.reap()
        keepalive = _clamp(keepalive, 1.0, self.limits.max_keepalive)
        with self._lock:
            running = sum(1 for s in self._sessions.values() if not s.completed)
            if running >= self.limits.max_sessions:
                producer.close()
                raise TooManySearches(f"{running} searches are running")
            self._evict_completed()
            token = "search-" + secrets.token_hex(12)
            self._sessions[token] = SearchSession(
                token=token,
                kind=kind,
                producer=producer,
                keepalive=keepalive,
                expires=self._clock() + keepalive,
                max_matches=None if max_matches is None else max(1, max_matches),
                start_us=start_us,
                end_us=end_us,
            )
        return token

    def _evict_completed(self) -> None:
        """Keep completed sessions bounded (a client may never end them)."""
        completed = [s for s in self._sessions.values() if s.completed]
        excess = len(completed) - 4 * self.limits.max_sessions
        for session in sorted(completed, key=lambda s: s.expires)[: max(0, excess)]:
            self._drop(session)

    def _drop(self, session: SearchSession) -> None:
        self._sessions.pop(session.token, None)
        session.ended = True
        session.producer.close()

    def reap(self) -> int:
        """Forget sessions whose keep-alive ran out (a scheduler calls it; lookups too)."""
        now = self._clock()
        with self._lock:
            gone = [s for s in self._sessions.values() if s.expires < now and not s.busy]
            for session in gone:
                self._drop(session)
        return len(gone)

    def _get(self, token: str, kind: str | None = None) -> SearchSession:
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < self._clock() and not session.busy:
                self._drop(session)
                session = None
            if session is None or (kind is not None and session.kind != kind):
                raise UnknownSearch(token)
            session.busy += 1
            session.expires = self._clock() + session.keepalive
            return session

    def _release(self, session: SearchSession) -> None:
        with self._lock:
            session.busy -= 1
            session.expires = self._clock() + session.keepalive

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        with self._lock:
            for session in list(self._sessions.values()):
                self._drop(session)

    # ---- requests -----------------------------------------------------------------------------

    def results(
        self,
        token: str,
        kind: str,
        *,
        min_results: int | None = None,
        max_results: int | None = None,
        wait: float | None = None,
    ) -> Batch:
        """The next results of a session (the blocking rule of the module docstring)."""
        session = self._get(token, kind)
        try:
            if not session.lock.acquire(timeout=self.limits.max_wait + 1):
                return Batch([], SEARCHING)
            try:
                return self._results(session, min_results, max_results, wait)
            finally:
                session.lock.release()
        finally:
            self._release(session)

    def _results(
        self,
        session: SearchSession,
        min_results: int | None,
        max_results: int | None,
        wait: float | None,
    ) -> Batch:
        limits = self.limits
        wanted = limits.max_results if max_results is None else max_results
        limit = int(_clamp(wanted, 1, limits.max_results))
        target = limit if min_results is None else int(_clamp(min_results, 1, limit))
        started = self._clock()
        if wait is not None:
            deadline = started + _clamp(wait, 0.0, limits.max_wait)
        elif min_results is not None or max_results is not None:
            deadline = started + limits.max_wait
        else:
            deadline = started
        scan_until = max(deadline, started + SCAN_BUDGET)
        while len(session.buffer) < target and not session.exhausted and not session.ended:
            seen = self._changes.value
            room = limit - len(session.buffer)
            if session.max_matches is not None:
                room = min(room, session.max_matches - session.delivered - len(session.buffer))
            session.add(session.producer.fetch(max(room, 1) if room < PAGE else PAGE))
            if len(session.buffer) >= target or session.exhausted:
                break
            now = self._clock()
            if session.producer.waiting:
                if now >= deadline:
                    break
                self._changes.wait(seen, min(WAIT_SLICE, deadline - now))
            elif now >= (deadline if session.buffer else scan_until):
                break
        out = [session.buffer.popleft() for _ in range(min(limit, len(session.buffer)))]
        session.delivered += len(out)
        if out:
            session.last_time_us = getattr(out[-1], "time_us", session.last_time_us)
        if session.exhausted and not session.buffer:
            session.completed = True
            session.buffer.clear()
        return Batch(out, COMPLETED if session.completed else SEARCHING)

    def state(self, token: str) -> str:
        session = self._get(token)
        try:
            done = session.completed or (session.exhausted and not session.buffer)
            return COMPLETED if done else SEARCHING
        finally:
            self._release(session)

    def end(self, token: str, now_us: int) -> int:
        """End a session; returns where it got to (search.md §4, EndSearch): its StartPoint
        before any result, the time of the last result delivered, its EndPoint once complete
        (any time for FindRecordings). A request still waiting on the session returns at its
        next look (within ``WAIT_SLICE``)."""
        session = self._get(token)
        session.ended = True
        locked = session.lock.acquire(timeout=self.limits.max_wait + 1)
        try:
            if session.start_us is None:
                return now_us
            if session.completed:
                return session.end_us if session.end_us is not None else now_us
            return session.start_us if session.last_time_us is None else session.last_time_us
        finally:
            with self._lock:
                session.busy -= 1
                self._drop(session)
            if locked:
                session.lock.release()
