"""Search benchmark: time to the first page of results over millions of indexed events.

Builds, in a scratch database, ``--recordings`` recordings (VIDEO001, AUDIO001, META001, one
run each over the whole span) and ``--events`` indexed events spread over ``--days`` days in
time order, as an NVR inserts them: 60 % MotionAlarm (metadata), 20 % cell motion, 10 %
objects-inside, 5 % line crossing, 4 % Track/State, 1 % Recording/State. PostgreSQL is loaded
with COPY and indexed afterwards (the build is timed), SQLite with multi-row INSERTs.

Then, in-process through the search engine (the SOAP layer adds its own constant), it times
``Find*`` plus the first ``Get*Results`` page (MaxResults 100) and the EndSearch, over random
instants: FindRecordings (all; with an XPath filter) and FindEvents in narrow (1 min) and
day-wide windows, forward and backward, over all recordings, one recording, and a rare topic
(``tns1:RecordingHistory//.``); p50 and p99 per case. On PostgreSQL it also prints the size of
the events table and of each index per million events.

Objects alive after the build are moved out of the garbage collector's reach (``gc.freeze()``,
what a long-running daemon should do after start-up): otherwise a full collection of the
process's few hundred thousand objects (spyne, SQLAlchemy, lxml) now and then adds ~80 ms to
whichever search is running, which says nothing about the search.

The default is the local PostgreSQL (``postgresql://postgres@127.0.0.1:5432/postgres``: a
database ``nvr_bench_<pid>`` is created there and dropped at the end); ``--sqlite`` uses a
SQLite file in a scratch directory instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # this folder, then the repository

from _common import scratch_database, scratch_dir, table  # noqa: E402
from lxml import etree  # noqa: E402
from sqlalchemy import Engine, insert, text  # noqa: E402

from nvr.db.engine import make_sessionmaker  # noqa: E402
from nvr.db.models import EventTopic, Recording, Run, Track  # noqa: E402
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE  # noqa: E402
from nvr.onvif.events_filter import EventFilter, parse_filter  # noqa: E402
from nvr.onvif.events_topics import CONCRETE_SET, TNS1  # noqa: E402
from nvr.onvif.namespaces import WSNT  # noqa: E402
from nvr.search.engine import EVENTS, RECORDINGS, Scope, SearchEngine  # noqa: E402
from nvr.search.sessions import Limits  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NULL = "\\N"
DAY_US = 86_400_000_000
MINUTE_US = 60_000_000
END_US = 1_780_000_000_000_000  # 2026-05-28: a fixed, past end of the recorded span
TOPICS = (  # (topic, weight, is_property, data item)
    ("tns1:VideoSource/MotionAlarm", 60, True, "State"),
    ("tns1:RuleEngine/CellMotionDetector/Motion", 20, True, "IsMotion"),
    ("tns1:RuleEngine/FieldDetector/ObjectsInside", 10, True, "IsInside"),
    ("tns1:RuleEngine/LineDetector/Crossed", 5, False, "ObjectId"),
    (TRACK_STATE, 4, True, "IsDataPresent"),
    (RECORDING_STATE, 1, True, "IsRecording"),
)
_EVENT_INDEXES = (
    ("ix_events_time_id", "(time_us, id)"),
    ("ix_events_recording_time_id", "(recording_id, time_us, id)"),
    ("ix_events_topic_time_id", "(topic_id, time_us, id)"),
    ("ix_events_track_time", "(track_id, time_us)"),
)


# ---- building -----------------------------------------------------------------------------------


def build_catalog(engine: Engine, recordings: int, start_us: int) -> None:
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        s.execute(
            insert(Recording),
            [
                {"id": r, "token": f"REC{r:04d}", "source_id": f"rtsp://cam{r}/stream",
                 "source_location": "Basement" if r % 2 else "Garden", "created_us": start_us}
                for r in range(1, recordings + 1)
            ],
        )  # fmt: skip
        kinds = (("VIDEO001", "Video"), ("AUDIO001", "Audio"), ("META001", "Metadata"))
        tracks = [
            {"id": 3 * (r - 1) + k + 1, "recording_id": r, "token": token, "kind": kind,
             "created_us": start_us}
            for r in range(1, recordings + 1)
            for k, (token, kind) in enumerate(kinds)
            if kind != "Audio" or r % 2
        ]  # fmt: skip
        s.execute(insert(Track), tracks)
        s.execute(
            insert(Run),
            [
                {"track_id": t["id"], "start_us": start_us, "end_us": END_US, "open": False}
                for t in tracks
            ],
        )
        s.execute(
            insert(EventTopic),
            [
                {"id": i, "topic": topic, "is_property": prop}
                for i, (topic, _, prop, _) in enumerate(TOPICS, 1)
            ],
        )


def _sources(recordings: int) -> list[list[str]]:
    """Source items (as JSON) by topic and recording: computed once, not per event."""
    out = []
    for topic_id in range(1, len(TOPICS) + 1):
        row = [""]
        for r in range(1, recordings + 1):
            token = f"REC{r:04d}"
            if topic_id == 5:
                source = {"RecordingToken": token, "Track": "VIDEO001"}
            elif topic_id == 6:
                source = {"RecordingToken": token}
            else:
                source = {"VideoSourceConfigurationToken": f"VSC_{r}", "Rule": "R1"}
            row.append(json.dumps(source))
        out.append(row)
    return out


def event_rows(count: int, recordings: int, start_us: int, seed: int = 1) -> Iterator[tuple]:
    """(id, recording, track, time, topic, is_property, source JSON, data JSON) in time order."""
    rng = random.Random(seed)
    weights = [w for _, w, _, _ in TOPICS]
    sources = _sources(recordings)
    values = [[json.dumps({item: v}) for v in ("true", "false")] for _, _, _, item in TOPICS]
    chunk = 100_000
    span = END_US - start_us
    made = 0
    while made < count:
        n = min(chunk, count - made)
        lo = start_us + span * made // count
        hi = start_us + span * (made + n) // count
        times = sorted(rng.randrange(lo, hi) for _ in range(n))
        topics = rng.choices(range(1, len(TOPICS) + 1), weights, k=n)
        owners = [rng.randint(1, recordings) for _ in range(n)]
        for offset in range(n):
            topic_id, recording = topics[offset], owners[offset]
            track = None if topic_id == 6 else 3 * recording - (0 if topic_id <= 4 else 2)
            yield (made + offset + 1, recording, track, times[offset], topic_id,
                   TOPICS[topic_id - 1][2], sources[topic_id - 1][recording],
                   values[topic_id - 1][offset & 1])  # fmt: skip
        made += n


def _copy_text(rows: list[tuple]) -> str:
    """COPY's text format: tab-separated, ``\\N`` for NULL (no value here needs escaping)."""
    return "".join(
        f"{i}\t{r}\t{NULL if t is None else t}\t{tm}\t{tp}\t{'t' if p else 'f'}\t"
        f"{'Changed' if p else NULL}\t{src}\t{data}\n"
        for i, r, t, tm, tp, p, src, data in rows
    )


def load_events(engine: Engine, count: int, recordings: int, start_us: int) -> dict[str, float]:
    """Insert the events; returns seconds per phase."""
    timings: dict[str, float] = {}
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.begin() as conn:
            for name, _ in _EVENT_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
    started = time.monotonic()
    batch: list[tuple] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if postgres:  # consistent by construction: skip the per-row foreign key triggers
            cursor.execute("SET session_replication_role = replica")
        for row in event_rows(count, recordings, start_us):
            batch.append(row)
            if len(batch) == 100_000:
                _flush(cursor, batch, postgres)
                batch = []
        if batch:
            _flush(cursor, batch, postgres)
        raw.commit()
    finally:
        raw.close()
    timings["load"] = time.monotonic() - started
    if postgres:
        started = time.monotonic()
        with engine.begin() as conn:
            for name, columns in _EVENT_INDEXES:
                conn.execute(text(f"CREATE INDEX {name} ON events {columns}"))
        timings["index"] = time.monotonic() - started
        started = time.monotonic()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))
        timings["analyze"] = time.monotonic() - started
    return timings


def _flush(cursor: object, rows: list[tuple], postgres: bool) -> None:
    if postgres:
        columns = "id, recording_id, track_id, time_us, topic_id, is_property, " \
            "property_operation, source, data"  # fmt: skip
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            copy.write(_copy_text(rows))
        return
    cursor.executemany(  # type: ignore[attr-defined]
        "INSERT INTO events (id, recording_id, track_id, time_us, topic_id, is_property, "
        "property_operation, source, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (i, r, t, tm, tp, int(p), "Changed" if p else None, src, data)
            for i, r, t, tm, tp, p, src, data in rows
        ],
    )


# ---- measuring ----------------------------------------------------------------------------------


def topic_filter(expression: str | None) -> EventFilter:
    if expression is None:
        return EventFilter()
    holder = etree.Element(f"{{{WSNT}}}Filter", nsmap={"wsnt": WSNT})
    element = etree.SubElement(
        holder, f"{{{WSNT}}}TopicExpression", Dialect=CONCRETE_SET, nsmap={"tns1": TNS1}
    )
    element.text = expression
    return parse_filter(holder)


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


def timed(run: Callable[[], int], samples: int) -> tuple[list[float], float]:
    for _ in range(min(5, samples)):  # warm-up
        run()
    times: list[float] = []
    results = 0
    for _ in range(samples):
        started = time.perf_counter()
        results += run()
        times.append((time.perf_counter() - started) * 1000)
    return times, results / max(1, samples)


def measure(engine: SearchEngine, recordings: int, start_us: int, samples: int) -> list[list]:
    rng = random.Random(2)
    rows: list[list] = []

    def first_page(kind: str, token: str) -> int:
        batch = engine.results(token, kind, None, 100, None)
        engine.end(token)
        return len(batch.results)

    def recordings_case(expression: str | None) -> Callable[[], int]:
        def run() -> int:
            token = engine.find_recordings(Scope(information_filter=expression), None, 10)
            return first_page(RECORDINGS, token)

        return run

    def events_case(
        width_us: int, forward: bool, one: bool, topic: str | None, state: bool = False
    ) -> Callable[[], int]:
        flt = topic_filter(topic)

        def run() -> int:
            lo = rng.randrange(start_us, END_US - width_us)
            scope = Scope(recordings=(f"REC{rng.randint(1, recordings):04d}",) if one else ())
            start, end = (lo, lo + width_us) if forward else (lo + width_us, lo)
            token = engine.find_events(start, end, scope, flt, state, None, 10)
            return first_page(EVENTS, token)

        return run

    cases: list[tuple[str, Callable[[], int]]] = [
        ("FindRecordings, all", recordings_case(None)),
        ('FindRecordings, //Track[TrackType="Audio"]', recordings_case(
            'boolean(//Track[TrackType = "Audio"])')),
    ]  # fmt: skip
    for width, label in ((MINUTE_US, "1 min"), (DAY_US, "1 day")):
        for forward in (True, False):
            direction = "fwd" if forward else "bwd"
            cases += [
                (f"FindEvents {label} {direction}, all", events_case(width, forward, False, None)),
                (f"FindEvents {label} {direction}, 1 recording",
                 events_case(width, forward, True, None)),
                (f"FindEvents {label} {direction}, RecordingHistory",
                 events_case(width, forward, False, "tns1:RecordingHistory//.")),
            ]  # fmt: skip
    cases.append(
        ("FindEvents 1 day fwd, 1 recording, history + start state",
         events_case(DAY_US, True, True, "tns1:RecordingHistory//.", True)),
    )  # fmt: skip
    for label, run in cases:
        times, mean_results = timed(run, samples)
        p50, p99, worst = percentiles(times)
        rows.append([label, samples, f"{mean_results:.0f}", f"{p50:.2f}", f"{p99:.2f}",
                     f"{worst:.2f}"])  # fmt: skip
    return rows


def sizes(engine: Engine, count: int) -> list[list]:
    millions = max(count, 1) / 1e6
    names = ["events"] + [name for name, _ in _EVENT_INDEXES] + ["pk_events"]
    out = []
    with engine.connect() as conn:
        for name in names:
            size = conn.scalar(text("SELECT pg_relation_size(:n)"), {"n": name}) or 0
            out.append([name, f"{size / 2**20:.1f}", f"{size / 2**20 / millions:.1f}"])
        total = conn.scalar(text("SELECT pg_indexes_size('events')")) or 0
    out.append(["all indexes (pg_indexes_size)", f"{total / 2**20:.1f}",
                f"{total / 2**20 / millions:.1f}"])  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--recordings", type=int, default=1000, help="recordings (1000)")
    ap.add_argument("--events", type=int, default=10_000_000, help="indexed events (10 M)")
    ap.add_argument("--days", type=float, default=30, help="span of the events in days (30)")
    ap.add_argument("--samples", type=int, default=200, help="timed searches per case (200)")
    ap.add_argument("--database-url", default=DEFAULT_URL, help=f"server ({DEFAULT_URL})")
    ap.add_argument("--sqlite", action="store_true", help="a scratch SQLite file instead")
    ap.add_argument("--dir", type=Path, help="parent of the scratch directory (SQLite)")
    args = ap.parse_args(argv)
    start_us = END_US - int(args.days * DAY_US)
    with (
        scratch_dir(args.dir) as work,
        scratch_database(None if args.sqlite else args.database_url, work) as (engine, described),
    ):
        print(f"database: {described}")
        print(f"building {args.recordings:,} recordings and {args.events:,} events over "
              f"{args.days:g} days ...", flush=True)  # fmt: skip
        started = time.monotonic()
        build_catalog(engine, args.recordings, start_us)
        timings = load_events(engine, args.events, args.recordings, start_us)
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        print(f"built in {time.monotonic() - started:.1f} s ({phases})")
        print()
        gc.collect()
        gc.freeze()  # as a long-running daemon should after start-up: see the module doc
        search = SearchEngine(
            make_sessionmaker(engine), limits=Limits(max_sessions=64), settle_us=0,
            clock_us=lambda: END_US + MINUTE_US,
        )  # fmt: skip
        rows = measure(search, args.recordings, start_us, args.samples)
        headers = ["first page (MaxResults 100)", "searches", "results", "p50 ms", "p99 ms",
                   "max ms"]  # fmt: skip
        print(table(headers, rows))
        if engine.dialect.name == "postgresql":
            print()
            print(table(["relation", "MB", "MB per million events"], sizes(engine, args.events)))
        search.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
