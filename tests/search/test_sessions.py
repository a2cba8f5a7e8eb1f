"""Search sessions with scripted producers: the Get*Results rule, clamping, keep-alive, limits,
EndSearch (search.md §4)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from nvr.search.index import Generation
from nvr.search.sessions import (
    COMPLETED,
    SEARCHING,
    Limits,
    SearchSessions,
    TooManySearches,
    UnknownSearch,
)


@dataclass(frozen=True)
class Hit:
    time_us: int


@dataclass
class Script:
    """Hands out ``items`` ``per_fetch`` at a time; ``live`` keeps it open for ``push``."""

    items: list[Hit] = field(default_factory=list)
    per_fetch: int = 1000
    live: bool = False
    fetches: int = 0
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self, limit: int) -> list[Hit]:
        with self.lock:
            self.fetches += 1
            out, self.items = self.items[: self.per_fetch], self.items[self.per_fetch :]
            return out

    def push(self, *times: int) -> None:
        with self.lock:
            self.items += [Hit(t) for t in times]

    @property
    def done(self) -> bool:
        return not self.live and not self.items

    @property
    def waiting(self) -> bool:
        return self.live and not self.items

    def close(self) -> None:
        self.closed = True


def hits(n: int) -> list[Hit]:
    return [Hit(t) for t in range(1, n + 1)]


def times(results: list[Any]) -> list[int]:
    return [r.time_us for r in results]


def test_max_results_and_never_twice() -> None:
    sessions = SearchSessions()
    token = sessions.create("events", Script(hits(10)), 10)
    first = sessions.results(token, "events", max_results=4)
    assert (times(first.results), first.state) == ([1, 2, 3, 4], SEARCHING)
    second = sessions.results(token, "events", max_results=4)
    assert times(second.results) == [5, 6, 7, 8]
    last = sessions.results(token, "events", max_results=4)
    assert (times(last.results), last.state) == ([9, 10], COMPLETED)
    assert sessions.results(token, "events").results == []
    assert sessions.state(token) == COMPLETED


def test_min_results_keeps_scanning_a_sparse_search() -> None:
    sessions = SearchSessions()
    script = Script(hits(5), per_fetch=1)
    token = sessions.create("events", script, 10)
    batch = sessions.results(token, "events", min_results=3, max_results=10)
    assert times(batch.results) == [1, 2, 3] and batch.state == SEARCHING
    rest = sessions.results(token, "events", min_results=3)
    assert times(rest.results) == [4, 5] and rest.state == COMPLETED  # fewer remained


def test_nothing_given_returns_what_is_there_now() -> None:
    sessions = SearchSessions()
    script = Script(hits(4), per_fetch=2)
    token = sessions.create("events", script, 10)
    assert times(sessions.results(token, "events").results) == [1, 2]
    assert script.fetches == 1


def test_wait_time_at_the_live_edge() -> None:
    changes = Generation()
    sessions = SearchSessions(changes=changes)
    script = Script(live=True)
    token = sessions.create("events", script, 10)
    started = time.monotonic()
    empty = sessions.results(token, "events", min_results=1, wait=0.3)
    assert empty.results == [] and empty.state == SEARCHING
    assert time.monotonic() - started >= 0.29

    def later() -> None:
        time.sleep(0.2)
        script.push(7)
        changes.bump()

    threading.Thread(target=later).start()
    batch = sessions.results(token, "events", min_results=1, wait=5)
    assert times(batch.results) == [7]
    script.live = False
    assert sessions.results(token, "events", wait=0).state == COMPLETED


def test_out_of_range_values_are_clamped() -> None:
    limits = Limits(max_sessions=4, max_keepalive=60, max_wait=0.2, max_results=3)
    now = [100.0]
    sessions = SearchSessions(limits, clock=lambda: now[0])
    token = sessions.create("events", Script(hits(10)), -5)  # keep-alive at least 1 s
    assert times(sessions.results(token, "events", max_results=0).results) == [1]
    assert len(sessions.results(token, "events", max_results=100).results) == 3
    assert len(sessions.results(token, "events", min_results=50, max_results=2).results) == 2
    assert len(sessions.results(token, "events", min_results=-1).results) == 3  # all ready
    now[0] += 1.5
    with pytest.raises(UnknownSearch):
        sessions.results(token, "events")
    token = sessions.create("events", Script(), 10_000)
    now[0] += 61  # keep-alive at most max_keepalive
    assert sessions.reap() == 1
    real = SearchSessions(limits)
    token = real.create("events", Script(live=True), 10)
    started = time.monotonic()
    real.results(token, "events", wait=1e9)  # waits max_wait, not a billion seconds
    assert time.monotonic() - started < 5


def test_keep_alive_restarts_with_every_request() -> None:
    now = [0.0]
    sessions = SearchSessions(clock=lambda: now[0])
    script = Script(hits(3))
    token = sessions.create("ptz", script, 2)
    for _ in range(5):
        now[0] += 1.5
        assert sessions.state(token) == SEARCHING
    now[0] += 2.5
    assert sessions.reap() == 1 and script.closed
    with pytest.raises(UnknownSearch):
        sessions.state(token)


def test_kind_must_match() -> None:
    sessions = SearchSessions()
    token = sessions.create("recordings", Script(hits(1)), 10)
    with pytest.raises(UnknownSearch):
        sessions.results(token, "events")
    with pytest.raises(UnknownSearch):
        sessions.results("search-unknown", "recordings")


def test_session_limit_counts_running_searches_only() -> None:
    sessions = SearchSessions(Limits(max_sessions=2))
    a = sessions.create("events", Script(hits(1)), 10)
    sessions.create("events", Script(hits(1)), 10)
    with pytest.raises(TooManySearches):
        sessions.create("events", Script(), 10)
    assert sessions.results(a, "events").state == COMPLETED
    sessions.create("events", Script(), 10)  # the completed one no longer counts
    assert sessions.state(a) == COMPLETED  # ...but still answers


def test_max_matches() -> None:
    sessions = SearchSessions()
    token = sessions.create("events", Script(hits(10)), 10, max_matches=4)
    batch = sessions.results(token, "events", max_results=3)
    assert times(batch.results) == [1, 2, 3] and batch.state == SEARCHING
    batch = sessions.results(token, "events", max_results=3)
    assert (times(batch.results), batch.state) == ([4], COMPLETED)


def test_end_search_reports_how_far_it_got() -> None:
    sessions = SearchSessions()
    token = sessions.create("events", Script(hits(5)), 10, start_us=0, end_us=99)
    assert sessions.end(token, 1234) == 0  # not begun: StartPoint
    with pytest.raises(UnknownSearch):
        sessions.end(token, 1234)
    token = sessions.create("events", Script(hits(5)), 10, start_us=0, end_us=99)
    sessions.results(token, "events", max_results=2)
    assert sessions.end(token, 1234) == 2  # the last result delivered
    token = sessions.create("events", Script(hits(2)), 10, start_us=0, end_us=99)
    sessions.results(token, "events")
    assert sessions.end(token, 1234) == 99  # complete: EndPoint
    token = sessions.create("recordings", Script(hits(2)), 10)
    assert sessions.end(token, 1234) == 1234  # FindRecordings: now


def test_end_search_releases_a_waiting_request() -> None:
    sessions = SearchSessions(Limits(max_wait=10))
    token = sessions.create("events", Script(live=True), 10, start_us=5, end_us=50)
    result: list[Any] = []
    waiter = threading.Thread(
        target=lambda: result.append(sessions.results(token, "events", min_results=1, wait=10))
    )
    started = time.monotonic()
    waiter.start()
    time.sleep(0.2)
    assert sessions.end(token, 0) == 5
    waiter.join(5)
    assert result and result[0].results == [] and time.monotonic() - started < 5
