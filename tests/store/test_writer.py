"""The track writer: segments, runs, time, checkpoints, database outages, full disks."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select

from nvr.db.models import Run, SampleEntry, Segment
from nvr.store import Store
from nvr.store import writer as writer_mod
from nvr.store.types import NullListener, SampleEntrySpec, TrackBusy, TrackRef, WriterState
from tests.store.helpers import (
    H264_ENTRY,
    T0,
    CommitCounter,
    FlakyDatabase,
    SynthFrame,
    append_all,
    audio_frames,
    make_store,
    metadata_frames,
    store_engine,  # noqa: F401  (the ``engine`` fixture of the store tests)
    sync_writer,
    video_frames,
)


class Recorder(NullListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def run_started(self, track: TrackRef, start_us: int) -> None:
        self.events.append(("run_started", start_us))

    def run_ended(self, track: TrackRef, end_us: int) -> None:
        self.events.append(("run_ended", end_us))

    def sample_entry_changed(self, track: TrackRef, time_us: int, spec: SampleEntrySpec) -> None:
        self.events.append(("entry", spec))

    def writer_error(self, track: TrackRef, error: str) -> None:
        self.events.append(("error", error))

    def writer_recovered(self, track: TrackRef) -> None:
        self.events.append(("recovered", None))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[Store]:
    s = make_store(engine, tmp_path, segment_seconds=2)
    s.listener = Recorder()
    s.create_recording("rec")
    yield s
    s.close()


def segments(store: Store, track: str = "VIDEO001") -> list:
    return store.reader("rec", track).segments()


def frames_back(store: Store, track: str = "VIDEO001") -> list:
    return list(store.reader("rec", track).frames(0))


def assert_same(stored: list, written: list[SynthFrame]) -> None:
    assert len(stored) == len(written)
    for got, want in zip(stored, written, strict=True):
        assert got.data == want.data
        assert got.duration == want.duration
        assert got.key == want.key


def test_segments_are_cut_at_the_first_key_frame_after_segment_seconds(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(300, gop=30))  # a key frame every 1.2 s, 12 s in all
    append_all(tw, frames)
    writer.close()
    segs = segments(store)
    starts = [s.start_us - T0 for s in segs]
    assert starts == [0, 2_400_000, 4_800_000, 7_200_000, 9_600_000]
    for seg in segs[:-1]:
        assert 2_000_000 <= seg.end_us - seg.start_us < 2_000_000 + 1_200_000
    stored = frames_back(store)
    assert all(f.key for f in stored if f.index == 0)
    assert_same(stored, frames)
    assert len(store.reader("rec", "VIDEO001").runs()) == 1


def test_a_codec_change_starts_a_segment_with_a_deduplicated_sample_entry(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    other = SampleEntrySpec("H264", 90_000, parameters=b"\x00\x00\x00\x02\x67\x42", width=640)
    same_again = SampleEntrySpec(**{f: getattr(H264_ENTRY, f) for f in H264_ENTRY.__slots__})
    part1 = list(video_frames(20, gop=10))
    part2 = [
        SynthFrame(f.data, f.capture_us, f.duration, f.key, other)
        for f in video_frames(20, gop=10, first=20, start_us=T0 + 800_000)
    ]
    part3 = [
        SynthFrame(f.data, f.capture_us, f.duration, f.key, same_again)
        for f in video_frames(20, gop=10, first=40, start_us=T0 + 1_600_000)
    ]
    append_all(tw, part1 + part2 + part3)
    writer.close()
    segs = segments(store)
    assert [s.start_us - T0 for s in segs] == [0, 800_000, 1_600_000]
    assert segs[0].sample_entry_id == segs[2].sample_entry_id != segs[1].sample_entry_id
    assert len({s.run_id for s in segs}) == 1
    reader = store.reader("rec", "VIDEO001")
    assert reader.sample_entry(segs[1].sample_entry_id).spec == other
    assert reader.sample_entry_at(T0 + 900_000).spec == other
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SampleEntry)) == 2
    assert [e for e in store.listener.events if e[0] == "entry"] == [  # type: ignore[attr-defined]
        ("entry", H264_ENTRY),
        ("entry", other),
        ("entry", H264_ENTRY),
    ]
    assert_same(frames_back(store), part1 + part2 + part3)


def test_a_codec_change_on_a_non_key_frame_ends_the_run(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    other = SampleEntrySpec("H264", 90_000, parameters=b"\x01")
    frames = list(video_frames(50, gop=25))
    changed = [SynthFrame(f.data, f.capture_us, f.duration, f.key, other) for f in frames[30:]]
    append_all(tw, frames[:30] + changed)
    writer.close()
    assert tw.status().dropped_before_key == 20  # frames 30..49: no key frame with the new entry
    runs = store.reader("rec", "VIDEO001").runs()
    assert len(runs) == 1 and runs[0].end_us == T0 + 30 * 40_000


def test_a_run_starts_at_a_key_frame(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(60, gop=25))
    append_all(tw, frames[10:])
    writer.close()
    assert tw.status().dropped_before_key == 15
    stored = frames_back(store)
    assert stored[0].key and stored[0].time_us == frames[25].capture_us
    assert_same(stored, frames[25:])


def test_frame_times_are_exact_over_a_long_run(engine: Engine, tmp_path: Path) -> None:
    store = make_store(engine, tmp_path, segment_seconds=60, max_slew_ppm=0)
    store.create_recording("rec")
    writer, tw = sync_writer(store, "rec")
    count = 25 * 3600  # one hour at 25 fps: 60 segments
    append_all(tw, video_frames(count, mean_size=24, gop=50))
    writer.close()
    stored = list(store.reader("rec", "VIDEO001").frames(0))
    assert len(stored) == count
    assert all(f.time_us == T0 + n * 40_000 for n, f in enumerate(stored))
    assert len(segments(store)) == 60


def test_ntsc_frame_times_do_not_drift(engine: Engine, tmp_path: Path) -> None:
    """29.97 fps durations (3003 ticks) are not whole microseconds: each frame time may be
    floored by 1 us, but the error must not accumulate across segments."""
    store = make_store(engine, tmp_path, segment_seconds=10, max_slew_ppm=0)
    store.create_recording("rec")
    writer, tw = sync_writer(store, "rec")
    count = 30 * 1200  # 20 minutes, 120 segments
    append_all(tw, video_frames(count, fps=29.97, mean_size=24, gop=30))
    writer.close()
    stored = list(store.reader("rec", "VIDEO001").frames(0))
    assert len(stored) == count
    errors = {f.time_us - (T0 + n * 3003 * 1_000_000 // 90_000) for n, f in enumerate(stored)}
    assert errors <= {-1, 0}
    assert len(segments(store)) >= 119


@pytest.mark.parametrize(("ppm", "expected_step"), [(1000, 500), (-1000, -500), (200, 200)])
def test_segment_starts_are_slewed_towards_capture_time_within_the_limit(
    engine: Engine, tmp_path: Path, ppm: int, expected_step: int
) -> None:
    store = make_store(engine, tmp_path, segment_seconds=1, max_slew_ppm=500)
    store.create_recording("rec")
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(25 * 20, gop=25, clock_ppm=ppm))
    append_all(tw, frames)
    writer.close()
    segs = segments(store)
    assert len(segs) == 20 and len({s.run_id for s in segs}) == 1
    for prev, seg in itertools.pairwise(segs):
        nominal_end = prev.start_us + 1_000_000  # 25 frames of exactly 40 ms
        assert seg.start_us - nominal_end == expected_step
        assert prev.end_us == seg.start_us  # contiguous inside the run
    if abs(ppm) <= 500:  # fully corrected at every cut
        key_captures = {f.capture_us for f in frames if f.key}
        assert all(s.start_us in key_captures for s in segs)


def test_a_clock_step_forward_starts_a_new_run(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(100, gop=25))
    stepped = [
        SynthFrame(f.data, f.capture_us + 5_000_000, f.duration, f.key, f.entry)
        for f in frames[60:]
    ]
    append_all(tw, frames[:60] + stepped)
    writer.close()
    runs = store.reader("rec", "VIDEO001").runs()
    assert [(r.start_us - T0, r.end_us - T0, r.open) for r in runs] == [
        (0, 60 * 40_000, False),
        (75 * 40_000 + 5_000_000, 100 * 40_000 + 5_000_000, False),
    ]
    assert tw.status().dropped_before_key == 15
    assert store.listener.names().count("run_started") == 2  # type: ignore[attr-defined]
    stored = frames_back(store)
    assert_same(stored, frames[:60] + stepped[15:])
    assert [f.first_in_run for f in stored].count(True) == 2
    assert [f.last_in_run for f in stored].count(True) == 2


def test_a_clock_step_backwards_never_overlaps_stored_data(store: Store) -> None:
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(300, gop=25))
    back = [
        SynthFrame(f.data, f.capture_us - 5_000_000, f.duration, f.key, f.entry)
        for f in frames[100:]
    ]
    append_all(tw, frames[:100] + back)
    writer.close()
    status = tw.status()
    # run 1 ends at 4 s; after the step the capture times restart at -1 s: the frames of the
    # next 5 s lie before the stored data and are dropped
    assert status.dropped_overlap == 125
    runs = store.reader("rec", "VIDEO001").runs()
    assert len(runs) == 2 and runs[1].start_us == runs[0].end_us == T0 + 4_000_000


def test_read_back_is_byte_identical_with_checksums(store: Store) -> None:
    writers = []
    written = {}
    for token, gen in (
        ("VIDEO001", video_frames(200, gop=25)),
        ("AUDIO001", audio_frames(500)),
        ("META001", metadata_frames(10, interval_us=1_000_000)),
    ):
        writer, tw = sync_writer(store, "rec", token)
        written[token] = list(gen)
        append_all(tw, written[token])
        writers.append(writer)
    for w in writers:
        assert w.close()
    for token, frames in written.items():
        stored = frames_back(store, token)
        assert_same(stored, frames)
        assert [f.time_us for f in stored] == [f.capture_us for f in frames]
        with store.sessions() as s:
            rows = s.scalars(select(Segment).order_by(Segment.start_us)).all()
        for row in rows:
            data = (store.dirs.root(row.storage_dir_id) / row.path).read_bytes()  # type: ignore[operator]
            assert len(data) == row.bytes and not row.open
            assert hashlib.sha256(data).hexdigest() == row.sha256


def test_each_checkpoint_is_one_commit_for_all_tracks(engine: Engine, tmp_path: Path) -> None:
    store = make_store(engine, tmp_path, segment_seconds=1)
    tracks = [(f"VIDEO{n:03d}", "Video") for n in range(1, 101)]
    store.create_recording("rec", tracks=tracks)
    writer, _ = sync_writer(store, "rec")
    tws = [writer.tracks[store.get_track("rec", "VIDEO001").id]]
    for token, _kind in tracks[1:]:
        info = store.get_track("rec", token)
        tws.append(writer.open_track(TrackRef(info.id, "rec", token)))
    counter = CommitCounter(engine)
    streams = [list(video_frames(75, gop=25, mean_size=100, seed=n)) for n in range(len(tws))]
    for chunk in range(3):  # 3 checkpoints, each with new runs / segments / updates
        for tw, frames in zip(tws, streams, strict=True):
            append_all(tw, frames[chunk * 25 : chunk * 25 + 25])
        assert writer.checkpoint()
    assert counter.count == 3
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Segment)) == 100 * 3
        assert s.scalar(select(func.count()).select_from(Run)) == 100
    counter.remove()


def test_files_are_fsynced_before_the_index_is_committed(
    store: Store, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (log.append("fsync"), real(fd))[1])
    event.listen(engine, "commit", lambda conn: log.append("commit"))
    writer, tw = sync_writer(store, "rec")
    append_all(tw, video_frames(30))
    writer.checkpoint()
    assert log == ["fsync", "commit"]


def test_frames_survive_a_database_outage_and_the_index_catches_up(
    store: Store, engine: Engine
) -> None:
    flaky = FlakyDatabase(engine)
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(25 * 10, gop=25))
    append_all(tw, frames[:50])
    assert writer.checkpoint()
    flaky.down = True
    for second in range(2, 9):  # 3 segments closed and opened while the database is down
        append_all(tw, frames[second * 25 : second * 25 + 25])
        assert not writer.checkpoint()
    assert flaky.failures >= 7
    status = writer.committer.status()
    assert not status.database_ok and status.pending_segments >= 3
    assert tw.status().state is WriterState.RECORDING
    flaky.down = False
    append_all(tw, frames[225:])
    assert writer.close()
    assert writer.committer.status().database_ok
    stored = frames_back(store)
    assert_same(stored, frames)
    assert [s.start_us - T0 for s in segments(store)] == [
        0,
        2_000_000,
        4_000_000,
        6_000_000,
        8_000_000,
    ]
    runs = store.reader("rec", "VIDEO001").runs()
    assert [(r.start_us, r.end_us, r.open) for r in runs] == [(T0, T0 + 10_000_000, False)]
    flaky.remove()


def test_a_full_disk_puts_the_track_in_error_and_recording_resumes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "ERROR_RETRY_SECONDS", 0.0)
    real_write = os.write
    full = threading.Event()

    def write(fd: int, data: bytes) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(writer_mod, "_os_write", write)
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(200, gop=25))
    append_all(tw, frames[:60])
    full.set()
    assert append_all(tw, frames[60:120]) == 0
    status = tw.status()
    assert status.state is WriterState.ERROR and "space" in (status.error or "")
    assert status.dropped_error == 60
    full.clear()
    append_all(tw, frames[120:])  # frame 120 is not a key frame: resumes at 125
    status = tw.status()
    assert status.state is WriterState.RECORDING and status.error is None
    assert status.dropped_error == 65
    assert writer.close()
    events = store.listener.names()  # type: ignore[attr-defined]
    assert events.count("error") == 1 and events.count("recovered") == 1
    assert_same(frames_back(store), frames[:60] + frames[125:])
    assert len(store.reader("rec", "VIDEO001").runs()) == 2


def test_a_short_write_before_enospc_leaves_no_partial_frame(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 31:
            return real_write(fd, bytes(data)[: len(data) // 2])
        if calls["n"] > 31:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(writer_mod, "_os_write", write)
    writer, tw = sync_writer(store, "rec")
    frames = list(video_frames(40))
    append_all(tw, frames)
    writer.close()
    (seg,) = segments(store)
    assert seg.frames == 30
    path = store.dirs.root(seg.storage_dir_id) / seg.path  # type: ignore[operator]
    assert path.stat().st_size == seg.bytes == sum(len(f.data) for f in frames[:30])
    assert_same(frames_back(store), frames[:30])


def test_no_usable_storage_directory_is_an_error_state(store: Store) -> None:
    for handle in store.dirs.handles():
        handle.writable = False
    _writer, tw = sync_writer(store, "rec")
    assert append_all(tw, video_frames(10)) == 0
    status = tw.status()
    assert status.state is WriterState.ERROR
    assert "no usable storage" in (status.error or "")
    assert status.dropped_error == 10


def test_an_idle_run_is_closed(store: Store) -> None:
    writer, tw = sync_writer(store, "rec", idle_close_us=5_000_000)
    append_all(tw, video_frames(30))
    writer.committer.offer(writer.collect(now=100.0))
    writer.committer.offer(writer.collect(now=104.0))
    assert tw.status().state is WriterState.RECORDING
    writer.committer.offer(writer.collect(now=106.0))
    assert writer.committer.commit()
    (run,) = store.reader("rec", "VIDEO001").runs()
    assert not run.open and run.end_us == T0 + 30 * 40_000
    assert store.listener.names()[-1] == "run_ended"  # type: ignore[attr-defined]


def test_writer_service_records_from_another_thread(store: Store) -> None:
    handle = store.open_writer("rec", "VIDEO001")
    with pytest.raises(TrackBusy):
        store.open_writer("rec", "VIDEO001")
    frames = list(video_frames(100))
    feeder = threading.Thread(target=lambda: [handle.submit(*f.args) for f in frames])
    feeder.start()
    feeder.join()
    assert store.writer_service.flush()
    assert handle.status().frames_written == 100
    handle.close().result(5)
    assert store.writer_service.flush()
    assert_same(frames_back(store), frames)
    (run,) = store.reader("rec", "VIDEO001").runs()
    assert not run.open
    again = store.open_writer("rec", "VIDEO001")  # a closed track can be reopened
    assert again.submit(*next(video_frames(1, start_us=T0 + 10_000_000)).args)
    assert store.close()


def test_writer_service_drops_frames_when_its_queue_is_full(engine: Engine, tmp_path: Path) -> None:
    store = make_store(engine, tmp_path)
    store._max_queue_bytes = 10_000  # small queue
    store.create_recording("rec")
    handle = store.open_writer("rec", "VIDEO001")
    gate = threading.Event()
    store.writer_service._call(gate.wait)  # hold the writer thread
    results = [handle.submit(*f.args) for f in video_frames(50, mean_size=1_000)]
    gate.set()
    assert store.writer_service.flush()
    status = handle.status()
    assert results.count(False) == status.dropped_queue > 0
    assert results[0] and not results[-1]
    assert status.frames_written + status.dropped_before_key == results.count(True)
    store.close()


def test_writer_service_survives_a_database_outage(store: Store, engine: Engine) -> None:
    flaky = FlakyDatabase(engine)
    handle = store.open_writer("rec", "AUDIO001")
    frames = list(audio_frames(600))  # 12 s, 6 segments
    for f in frames[:100]:
        handle.submit(*f.args)
    assert store.writer_service.flush()
    flaky.down = True
    for f in frames[100:500]:
        handle.submit(*f.args)
    assert not store.writer_service.flush()
    assert not store.writer_service.index_status().database_ok
    flaky.down = False
    for f in frames[500:]:
        handle.submit(*f.args)
    handle.close().result(5)
    assert store.writer_service.flush()
    assert_same(frames_back(store, "AUDIO001"), frames)
    flaky.remove()
