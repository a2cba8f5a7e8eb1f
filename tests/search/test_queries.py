"""Keyset pages of the event index: every plan (per recording, per topic, global) walks exactly
the rows a brute-force sort gives, forward and backward, with ties on time, in any page size."""

from __future__ import annotations

import itertools
import random

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Event, EventTopic, PtzPosition, Recording, Track
from nvr.search import queries
from nvr.search.types import PtzBox

RECORDINGS = 30
TOPICS = 30


@pytest.fixture
def filled(sessions: sessionmaker[Session]) -> list[tuple[int, int, int, int]]:
    """(time_us, id, recording_id, topic_id) of 1,500 events; times repeat on purpose."""
    rng = random.Random(7)
    with sessions.begin() as s:
        s.execute(
            insert(Recording),
            [{"id": r, "token": f"R{r}", "created_us": 0} for r in range(1, RECORDINGS + 1)],
        )
        s.execute(
            insert(Track),
            [
                {"id": r, "recording_id": r, "token": "META001", "kind": "Metadata",
                 "created_us": 0}
                for r in range(1, RECORDINGS + 1)
            ],
        )  # fmt: skip
        s.execute(
            insert(EventTopic),
            [{"id": t, "topic": f"tns1:T/{t}", "is_property": False} for t in range(1, TOPICS + 1)],
        )
        s.execute(
            insert(Event),
            [
                {"id": i, "recording_id": rng.randint(1, RECORDINGS), "track_id": None,
                 "time_us": rng.randint(0, 300) * 1000, "topic_id": rng.randint(1, TOPICS),
                 "is_property": False, "source": {}, "data": {}}
                for i in range(1, 1501)
            ],
        )  # fmt: skip
        s.execute(
            insert(PtzPosition),
            [
                {"id": i, "recording_id": 1 + i % 3, "track_id": 1 + i % 3,
                 "time_us": i // 2 * 1000, "pan": (i % 21) / 10 - 1, "tilt": 0.0, "zoom": None}
                for i in range(1, 301)
            ],
        )  # fmt: skip
    with sessions() as s:
        return [
            (r.time_us, r.id, r.recording_id, r.topic_id)
            for r in s.query(Event).order_by(Event.time_us, Event.id)
        ]


def walk(s: Session, page: int, forward: bool, **scope: object) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    after = None
    while True:
        rows = queries.events_page(
            s, lo=50_000, hi=250_000, forward=forward, after=after, limit=page, **scope
        )
        out += [(r.time_us, r.id) for r in rows]
        if len(rows) < page:
            return out
        after = (rows[-1].time_us, rows[-1].id)


PLANS = [
    (None, None),  # global
    ([3], None),  # one recording
    ([2, 5, 9], [1, 2, 3, 4, 5, 6, 7, 8]),  # per recording, topic as a filter
    (None, [4, 17]),  # per topic
    (list(range(1, 28)), None),  # too many arms: global with a filter
    (list(range(1, 28)), list(range(2, 29))),
    ([], None),
    (None, []),
]


def test_keyset_pages_match_brute_force(
    sessions: sessionmaker[Session], filled: list[tuple[int, int, int, int]]
) -> None:
    with sessions() as s:
        for (recordings, topics), forward in itertools.product(PLANS, (True, False)):
            expected = [
                (t, i)
                for t, i, r, topic in filled
                if 50_000 <= t <= 250_000
                and (recordings is None or r in recordings)
                and (topics is None or topic in topics)
            ]
            if not forward:
                expected.reverse()
            for page in (13, 5000):
                got = walk(s, page, forward, recordings=recordings, topics=topics)
                assert got == expected, (recordings, topics, forward, page)


def test_ptz_pages_with_a_box(sessions: sessionmaker[Session], filled: object) -> None:
    box = PtzBox(pan=(-0.25, 0.25), tilt=None, zoom=None, enter_or_exit=False)
    with sessions() as s:
        forward = queries.ptz_page(
            s, lo=0, hi=10**9, forward=True, after=None, limit=1000, recordings=[1, 2], box=box
        )
        backward = queries.ptz_page(
            s, lo=0, hi=10**9, forward=False, after=None, limit=1000, recordings=[1, 2], box=box
        )
    assert [r.id for r in forward] == [r.id for r in reversed(backward)]
    assert forward and all(-0.25 <= r.pan <= 0.25 and r.recording_id in (1, 2) for r in forward)
    expected = [
        i for i in range(1, 301) if 1 + i % 3 in (1, 2) and -0.25 <= (i % 21) / 10 - 1 <= 0.25
    ]
    assert sorted(r.id for r in forward) == expected
