"""The track reader: runs and gaps, clean points (replay.md B.6), forward frames, reverse GOPs
(B.7), key-frame scans, the live edge."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.store import Store
from nvr.store.types import Interval
from tests.store.helpers import (
    T0,
    SynthFrame,
    append_all,
    jpeg_frames,
    make_store,
    store_engine,  # noqa: F401  (the ``engine`` fixture of the store tests)
    sync_writer,
    video_frames,
)

S = 1_000_000


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[Store]:
    s = make_store(engine, tmp_path, segment_seconds=2)
    s.create_recording("rec")
    yield s
    s.close()


@pytest.fixture
def two_runs(store: Store) -> tuple[list[SynthFrame], list[SynthFrame]]:
    """Run A: [0 s, 6 s], a 4 s gap, run B: [10 s, 16 s]; 25 fps, a key frame every second."""
    a = list(video_frames(150, gop=25))
    b = list(video_frames(150, gop=25, first=150, start_us=T0 + 10 * S, seed=7))
    writer, tw = sync_writer(store, "rec")
    append_all(tw, a + b)
    assert writer.close()
    return a, b


def rel(times: list[int]) -> list[float]:
    return [(t - T0) / S for t in times]


def test_runs_gaps_and_data_intervals(store: Store, two_runs: tuple) -> None:
    reader = store.reader("rec", "VIDEO001")
    runs = reader.runs()
    assert [(r.start_us, r.end_us, r.open) for r in runs] == [
        (T0, T0 + 6 * S, False),
        (T0 + 10 * S, T0 + 16 * S, False),
    ]
    assert reader.gaps(T0 - S, T0 + 20 * S) == [
        Interval(T0 - S, T0),
        Interval(T0 + 6 * S, T0 + 10 * S),
        Interval(T0 + 16 * S, T0 + 20 * S),
    ]
    assert reader.gaps(T0 + S, T0 + 5 * S) == []
    assert reader.data_intervals(T0 + 7 * S, T0 + 12 * S) == [Interval(T0 + 10 * S, T0 + 16 * S)]
    assert reader.data_range() == Interval(T0, T0 + 16 * S)
    assert store.catalog.data_ranges("rec") == {"VIDEO001": Interval(T0, T0 + 16 * S)}
    assert store.reader("rec", "AUDIO001").data_range() is None
    segs = reader.segments(T0 + 3 * S, T0 + 11 * S)
    assert rel([s.start_us for s in segs]) == [2, 4, 10]


@pytest.mark.parametrize(
    ("at", "reverse", "expected"),
    [
        (3.5, False, 3),  # inside data: last clean point at or before, both directions
        (3.5, True, 3),
        (3.0, False, 3),
        (2.999999, False, 2),
        (2.0, False, 2),  # a segment boundary
        (6.0, False, 5),  # the exact end of run A
        (8.0, False, 10),  # in a gap, forward: first clean point after the gap
        (8.0, True, 5),  # in a gap, reverse: last clean point before the gap
        (-1.0, False, 0),  # before all data
        (-1.0, True, None),
        (17.0, False, None),  # after all data
        (17.0, True, 15),
    ],
)
def test_clean_points(
    store: Store, two_runs: tuple, at: float, reverse: bool, expected: int | None
) -> None:
    cp = store.reader("rec", "VIDEO001").clean_point(T0 + int(at * S), reverse=reverse)
    if expected is None:
        assert cp is None
    else:
        assert cp is not None and cp.time_us == T0 + expected * S


def test_forward_frames_between_two_times_cross_the_gap(store: Store, two_runs: tuple) -> None:
    a, b = two_runs
    frames = list(store.reader("rec", "VIDEO001").frames(T0 + 3 * S + S // 2, T0 + 11 * S))
    want = a[75:] + b[:25]
    assert [f.data for f in frames] == [f.data for f in want]
    assert [f.time_us for f in frames] == [f.capture_us for f in want]
    assert [n for n, f in enumerate(frames) if f.last_in_run] == [74]
    assert [n for n, f in enumerate(frames) if f.first_in_run] == [75]
    assert frames[0].key and not frames[0].first_in_run
    assert len({f.run_id for f in frames}) == 2
    assert all(f.clock_rate == 90_000 and f.sample_entry_id for f in frames)


def test_forward_from_a_gap_starts_after_it(store: Store, two_runs: tuple) -> None:
    _, b = two_runs
    frames = list(store.reader("rec", "VIDEO001").frames(T0 + 8 * S))
    assert [f.data for f in frames] == [f.data for f in b]
    assert frames[0].first_in_run and frames[-1].last_in_run


def test_reverse_gops(store: Store, two_runs: tuple) -> None:
    a, b = two_runs
    gops = list(store.reader("rec", "VIDEO001").gops_backward(T0 + 12 * S + S // 2))
    assert rel([g[0].time_us for g in gops]) == [12, 11, 10, 5, 4, 3, 2, 1, 0]
    assert [f.data for f in gops[0]] == [f.data for f in b[50:63]]  # up to 12.5 s only
    assert [f.data for f in gops[1]] == [f.data for f in b[25:50]]
    assert [f.data for f in gops[3]] == [f.data for f in a[125:150]]
    for gop in gops:
        assert gop[0].key and not any(f.key for f in gop[1:])
        assert [f.time_us for f in gop] == sorted(f.time_us for f in gop)
    assert gops[2][0].first_in_run  # replay sets E on this GOP's last frame (B.7)
    assert gops[3][-1].last_in_run
    bounded = list(store.reader("rec", "VIDEO001").gops_backward(T0 + 12 * S, T0 + 3 * S + 1))
    assert rel([g[0].time_us for g in bounded]) == [12, 11, 10, 5, 4, 3]


def test_reverse_from_a_gap_starts_before_it(store: Store, two_runs: tuple) -> None:
    a, _ = two_runs
    gops = list(store.reader("rec", "VIDEO001").gops_backward(T0 + 8 * S))
    assert [f.data for f in gops[0]] == [f.data for f in a[125:]]


def test_key_frames_with_a_minimum_spacing(store: Store, two_runs: tuple) -> None:
    reader = store.reader("rec", "VIDEO001")
    forward = list(reader.frames(T0, key_only=True, min_spacing_us=2 * S))
    assert rel([f.time_us for f in forward]) == [0, 2, 4, 10, 12, 14]
    assert all(f.key for f in forward)
    every = list(reader.frames(T0, T0 + 12 * S, key_only=True))
    assert rel([f.time_us for f in every]) == [0, 1, 2, 3, 4, 5, 10, 11]
    back = list(reader.gops_backward(T0 + 16 * S, key_only=True, min_spacing_us=2 * S))
    assert all(len(g) == 1 for g in back)
    assert rel([g[0].time_us for g in back]) == [15, 13, 11, 5, 3, 1]
    bounded = list(reader.gops_backward(T0 + 16 * S, T0 + 4 * S, key_only=True))
    assert rel([g[0].time_us for g in bounded]) == [15, 14, 13, 12, 11, 10, 5, 4]


def test_intra_only_tracks_reverse_frame_by_frame(store: Store) -> None:
    store.create_track("rec", "Video", "JPEG001")
    frames = list(jpeg_frames(40))
    writer, tw = sync_writer(store, "rec", "JPEG001")
    append_all(tw, frames)
    writer.close()
    gops = list(store.reader("rec", "JPEG001").gops_backward(T0 + 10 * S))
    assert [g[0].data for g in gops] == [f.data for f in reversed(frames)]
    assert all(len(g) == 1 for g in gops)


def test_readers_see_only_indexed_frames_of_an_open_segment(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(50))
    append_all(tw, frames[:30])
    writer.checkpoint()
    append_all(tw, frames[30:])  # written to the file, not yet indexed
    reader = store.reader("rec", "VIDEO001")
    (seg,) = reader.segments()
    assert seg.open and seg.frames == 30
    path = store.dirs.root(seg.storage_dir_id) / seg.path  # type: ignore[operator]
    assert path.stat().st_size > seg.bytes
    stored = list(reader.frames(T0))
    assert [f.data for f in stored] == [f.data for f in frames[:30]]
    assert not any(f.last_in_run for f in stored)  # the run goes on: no E on the live tail
    (run,) = reader.runs()
    assert run.open and run.end_us == T0 + 30 * 40_000
    writer.checkpoint()
    assert len(list(reader.frames(T0))) == 50


def test_a_follower_sees_every_frame_once_in_order(store: Store) -> None:
    """A writer thread records (through the writer service) while a reader follows the live
    edge from before the first frame; segments are cut on the way."""
    frames = list(video_frames(300, gop=25, mean_size=500))  # 12 s: 6 segments
    handle = store.open_writer("rec", "VIDEO001")

    def record() -> None:
        for n, f in enumerate(frames):
            handle.submit(*f.args)
            if n % 10 == 9:
                time.sleep(0.01)
        handle.close()

    stop = threading.Event()
    seen = []
    recorder = threading.Thread(target=record)
    recorder.start()
    for frame in store.reader("rec", "VIDEO001").frames(
        T0, follow=True, stop=stop, idle_timeout=20
    ):
        seen.append(frame)
        if len(seen) == len(frames):
            stop.set()
    recorder.join()
    assert [f.data for f in seen] == [f.data for f in frames]
    assert [f.time_us for f in seen] == [f.capture_us for f in frames]


def test_async_wait_wakes_on_the_next_checkpoint(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(100))
    append_all(tw, frames[:25])
    writer.checkpoint()
    cursor = store.reader("rec", "VIDEO001").cursor(T0)
    assert len(cursor.read(100)) == 25
    assert cursor.read() == []

    async def main() -> bool:
        def later() -> None:
            time.sleep(0.05)
            append_all(tw, frames[25:])
            writer.checkpoint()

        worker = threading.Thread(target=later)
        worker.start()
        woke = await cursor.wait_async(5)
        worker.join()
        return woke

    assert asyncio.run(main())
    assert [f.data for f in cursor.read(100)] == [f.data for f in frames[25:]]
    assert not cursor.wait(0.01)  # nothing new since the last read
    cursor.close()


def test_a_start_just_past_the_live_edge_begins_at_the_newest_clean_point(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    append_all(tw, video_frames(60))  # indexed up to 2.4 s, run still open
    writer.checkpoint()
    reader = store.reader("rec", "VIDEO001")
    near = reader.cursor(T0 + 3 * S).read()
    assert near and near[0].time_us == T0 + 2 * S  # the last key frame
    assert reader.cursor(T0 + 60 * S).read() == []  # far in the future: wait for data


def test_a_missing_file_is_skipped(store: Store, two_runs: tuple) -> None:
    reader = store.reader("rec", "VIDEO001")
    seg = reader.segments()[1]
    os.unlink(store.dirs.root(seg.storage_dir_id) / seg.path)  # type: ignore[operator]
    cursor = reader.cursor(T0)
    frames: list = []
    while batch := cursor.read():
        frames.extend(batch)
    assert cursor.skipped_segments == 1
    assert len(frames) == 300 - seg.frames


def test_closed_segment_indexes_are_cached(store: Store, two_runs: tuple) -> None:
    reader = store.reader("rec", "VIDEO001")
    list(reader.frames(T0))
    hits = store.index_cache.hits
    assert reader.clean_point(T0 + 13 * S) is not None
    assert list(reader.gops_backward(T0 + 3 * S))
    assert store.index_cache.hits > hits
