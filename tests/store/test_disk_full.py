"""Full disks (DESIGN §4: a full disk never crashes the daemon and never stops recording while
anything is deletable), end to end through the writer service with retention sweeping
periodically on another thread, as the daemon does.

(a) a size cap, or a free-space floor set 40 MB below the real free space of a filesystem
    (a private tmpfs when we may mount one, else the shared temp filesystem): the oldest
    unheld data goes, a hold survives, writing goes on, the deleted ranges are reported (what
    ``DeleteTrackData`` events are made of);
(b) nothing deletable (everything held): the writer enters its error state (status, listener),
    drops frames, the process carries on; releasing the hold lets retention free space and
    writing resumes;
(c) a real ENOSPC on a small tmpfs (root only): error state, nothing indexed lost, retention
    frees space, writing resumes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, insert, select

from nvr.db.models import Hold, Segment
from nvr.store import Store, TrackHandle
from nvr.store.disk import free_bytes
from nvr.store.retention import DeletedRange, SweepResult, merge_ranges
from nvr.store.settings import StorageDirSettings, StoreSettings
from nvr.store.types import NullListener, TrackRef, WriterState
from tests.store.helpers import T0, video_frames

MB = 1024 * 1024
FRAME_US = 40_000
GOP = 25
MEAN_FRAME = 20_000
"""~4 Mbit/s at 25 fps (key frames 5x the mean)."""
SEGMENT_MAX_US = 3_000_000
"""segment_seconds=2, cut at the next key frame (GOP 1 s)."""


class Events(NullListener):
    """Collects the writer's error/recovery notifications (called on the writer thread)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.recovered = 0

    def writer_error(self, track: TrackRef, error: str) -> None:
        self.errors.append(error)

    def writer_recovered(self, track: TrackRef) -> None:
        self.recovered += 1


class Feeder:
    """Submits a 25 fps H.264-like stream (synthetic capture times, faster than real time) at
    about ``rate`` bytes/s of wall time, remembering a checksum of every frame it handed over."""

    def __init__(self, handle: TrackHandle, rate: float) -> None:
        self.handle = handle
        self.rate = rate
        self.sent: dict[int, tuple[int, int]] = {}
        """capture time -> (crc32, size) of each frame submitted."""
        self.bytes = 0
        self._frames = video_frames(10**9, gop=GOP, mean_size=MEAN_FRAME, seed=7)

    @property
    def next_time_us(self) -> int:
        return T0 + len(self.sent) * FRAME_US

    def feed(self, seconds: float) -> None:
        """Submit for ``seconds`` of wall time at the configured rate."""
        start = time.monotonic()
        budget = 0
        while (now := time.monotonic()) < start + seconds:
            if budget > self.rate * (now - start):
                time.sleep(0.002)
                continue
            f = next(self._frames)
            assert self.handle.submit(*f.args), "the writer service queue refused a frame"
            self.sent[f.capture_us] = (zlib.crc32(f.data), len(f.data))
            self.bytes += len(f.data)
            budget += len(f.data)


class Sweeper:
    """Runs ``Store.sweep_retention`` every ``interval`` seconds on its own thread."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self.results: list[SweepResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.results.append(self.store.sweep_retention())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def deleted(self) -> list[DeletedRange]:
        return [r for res in self.results for r in res.deleted]

    @property
    def bytes_freed(self) -> int:
        return sum(res.bytes_freed for res in self.results)


def open_store(engine: Engine, media: Path, events: Events, **dir_kw: object) -> Store:
    settings = StoreSettings(
        dirs=(StorageDirSettings(path=media, **dir_kw),),  # type: ignore[arg-type]
        segment_seconds=2.0,
        checkpoint_seconds=0.25,
    )
    store = Store(engine, settings, listener=events)
    store.open()
    store.create_recording("rec")
    return store


def add_hold(store: Store, start_us: int, end_us: int) -> None:
    rec = store.get_recording("rec")
    with store.sessions.begin() as s:
        s.execute(
            insert(Hold).values(
                recording_id=rec.id, start_us=start_us, end_us=end_us, created_us=T0
            )
        )


def release_holds(store: Store) -> None:
    with store.sessions.begin() as s:
        s.execute(delete(Hold))


def indexed_bytes(store: Store) -> int:
    with store.sessions() as s:
        return int(s.scalar(select(func.coalesce(func.sum(Segment.bytes), 0))) or 0)


def read_back(store: Store, sent: dict[int, tuple[int, int]]) -> list[int]:
    """Every indexed frame, checked against what was submitted at its time; their times."""
    times = []
    for f in store.reader("rec", "VIDEO001").frames(0):
        assert f.time_us in sent, f"a frame at {f.time_us} that was never submitted"
        assert (zlib.crc32(f.data), len(f.data)) == sent[f.time_us], f"frame {f.time_us} differs"
        times.append(f.time_us)
    return times


def assert_outside(ranges: list[DeletedRange], start_us: int, end_us: int) -> None:
    for r in ranges:
        assert r.end_us <= start_us or r.start_us > end_us, f"{r} overlaps the hold"


# ---- filesystems of our own ---------------------------------------------------------------

TMPFS_MB = 48
"""Room for one closed segment (~29 MB) plus an open one that runs into ENOSPC: the store starts
a new segment only in a directory with >= 16 MiB free (the ``StorageDirs`` reserve), so only a
segment that outgrows the space left when it started meets a real ENOSPC."""


@contextlib.contextmanager
def mounted_tmpfs(mnt: Path, size_mb: int) -> Iterator[str | None]:
    """Mount a tmpfs of ``size_mb`` on ``mnt`` for the block; yields None, or why it could
    not be mounted."""
    mnt.mkdir()
    if os.geteuid() != 0:
        yield "mounting a tmpfs needs root"
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "nvr-test", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        yield f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}"
        return
    try:
        yield None
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of our own (root only: skipped otherwise)."""
    with mounted_tmpfs(tmp_path / "tmpfs", TMPFS_MB) as problem:
        if problem:
            pytest.skip(problem)
        yield tmp_path / "tmpfs"


@pytest.fixture
def private_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 MB tmpfs nobody else writes to, so free space moves only with what the test
    writes and deletes; without root, the shared temp filesystem (others may disturb it)."""
    with mounted_tmpfs(tmp_path / "fs", 256) as problem:
        yield tmp_path / "fs"
        if problem:
            print(f"free-space floor on the shared temp filesystem ({problem})")


# ---- (a) ------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["size cap", "free-space floor"])
def test_retention_keeps_recording_going_and_holds_survive(
    engine: Engine, tmp_path: Path, request: pytest.FixtureRequest, limit: str
) -> None:
    events = Events()
    if limit == "size cap":
        cap = 16 * MB
        media = tmp_path / "media"
        store = open_store(engine, media, events, max_bytes=cap, min_free_bytes=0)
    else:
        media = request.getfixturevalue("private_fs") / "media"
        media.mkdir()
        if free_bytes(media) < 256 * MB:
            pytest.skip(f"less than 256 MB free in {media}")
        floor = free_bytes(media) - 40 * MB
        store = open_store(engine, media, events, min_free_bytes=floor)
    hold = (T0 + 10_000_000, T0 + 16_000_000)  # stream seconds 10-16
    add_hold(store, *hold)
    handle = store.open_writer("rec", "VIDEO001")
    feeder = Feeder(handle, rate=40 * MB)
    sweeper = Sweeper(store, 0.25)
    try:
        # Write until retention has freed (well) more than the limit allows us to keep, at
        # most 20 s: 40 MB/s of 4 Mbit/s video is ~80 streams' worth.
        deadline = time.monotonic() + 20
        while sweeper.bytes_freed < 48 * MB and time.monotonic() < deadline:
            feeder.feed(0.25)
            assert handle.status().state is not WriterState.ERROR, events.errors
        feeder.feed(1.0)  # writing goes on after the deletions
        assert store.writer_service.flush(30)
    finally:
        sweeper.stop()
    final = store.sweep_retention()
    margin = free_bytes(media) - floor if limit != "size cap" else 0
    status = handle.status()
    times = read_back(store, feeder.sent)
    used = indexed_bytes(store)
    store.close()

    deleted = sweeper.deleted + final.deleted
    assert sweeper.bytes_freed >= 48 * MB, f"retention freed only {sweeper.bytes_freed} bytes"
    assert not events.errors and status.state is WriterState.RECORDING
    assert status.dropped_error == status.dropped_queue == 0
    assert status.frames_written == len(feeder.sent)
    assert not final.nothing_deletable and not any(r.nothing_deletable for r in sweeper.results)
    # The hold survived whole; everything deleted lies outside it and is the oldest data.
    held = [t for t in feeder.sent if hold[0] <= t < hold[1]]
    assert set(held) <= set(times), "frames under the hold were deleted"
    assert_outside(deleted, *hold)
    spans = merge_ranges([(r.start_us, r.end_us) for r in deleted])
    assert spans[0][0] == T0, "the oldest data did not go first"
    # Between the hold and the newest deleted range only the rest of the segment holding the
    # hold's last frame may stay (a segment's tail is never cut off).
    stragglers = [t for t in times if hold[1] < t < spans[-1][1]]
    assert not stragglers or stragglers[-1] < hold[1] + SEGMENT_MAX_US, "newer data went first"
    assert times[-1] == max(feeder.sent), "the newest frames are missing"
    if limit == "size cap":
        assert used <= cap, f"{used} indexed bytes over the {cap} cap after a sweep"
    else:  # without a private tmpfs others share the filesystem: allow them a little
        assert margin > -16 * MB, f"{-margin} bytes below the floor after a sweep"
    print(
        f"\n{limit}: wrote {feeder.bytes / MB:.0f} MB ({len(feeder.sent)} frames), "
        f"{len(sweeper.results)} sweeps freed {sweeper.bytes_freed / MB:.0f} MB; "
        f"kept {used / MB:.1f} MB ({len(times)} frames, {len(held)} of them held); "
        + (f"free - floor = {margin / MB:+.1f} MB; " if limit != "size cap" else "")
        + "DeleteTrackData ranges (s from start): "
        + ", ".join(f"{(a - T0) / 1e6:.2f}-{(b - T0) / 1e6:.2f}" for a, b in spans)
    )


# ---- (b) ------------------------------------------------------------------------------------


def test_nothing_deletable_is_an_error_state_until_a_hold_is_released(
    engine: Engine, tmp_path: Path
) -> None:
    events = Events()
    cap = 8 * MB
    store = open_store(engine, tmp_path / "media", events, max_bytes=cap, min_free_bytes=0)
    add_hold(store, 0, 2**62)  # everything is held
    handle = store.open_writer("rec", "VIDEO001")
    feeder = Feeder(handle, rate=20 * MB)
    sweeper = Sweeper(store, 0.2)
    try:
        deadline = time.monotonic() + 15
        while handle.status().state is not WriterState.ERROR and time.monotonic() < deadline:
            feeder.feed(0.1)
        before = handle.status()
        assert before.state is WriterState.ERROR, "the writer never reported the full store"
        assert before.error and events.errors == [before.error]
        assert any(r.nothing_deletable for r in sweeper.results)
        assert sweeper.bytes_freed == 0
        error_at = feeder.next_time_us
        feeder.feed(1.5)  # frames keep coming: dropped, counted, nothing crashes
        during = handle.status()
        assert during.state is WriterState.ERROR
        assert during.dropped_error > before.dropped_error
        assert during.frames_written == before.frames_written
        assert store.writer_service.flush(30)
        # Nothing indexed was lost while held.
        kept = read_back(store, feeder.sent)
        assert len(kept) == during.frames_written
        assert kept == sorted(t for t in feeder.sent if t < kept[-1] + 1)

        release_holds(store)
        deadline = time.monotonic() + 15
        while handle.status().state is WriterState.ERROR and time.monotonic() < deadline:
            feeder.feed(0.1)
        feeder.feed(1.0)
        after = handle.status()
        assert store.writer_service.flush(30)
    finally:
        sweeper.stop()
    final = store.sweep_retention()
    times = read_back(store, feeder.sent)
    intervals = store.reader("rec", "VIDEO001").data_intervals()
    used = indexed_bytes(store)
    store.close()

    assert after.state is WriterState.RECORDING and events.recovered == 1
    assert after.frames_written > during.frames_written
    assert sweeper.bytes_freed > 0 and sweeper.deleted
    assert not final.nothing_deletable and used <= cap
    assert times[-1] == max(feeder.sent), "recording did not resume"
    assert not [t for t in times if kept[-1] < t < error_at], "frames of the error state stored"
    print(
        f"\nerror after {before.frames_written} frames ({before.bytes_written / MB:.1f} MB, cap "
        f"{cap / MB:.0f} MB): {events.errors[0]!r}; dropped {after.dropped_error} frames; "
        f"resumed after the hold was released; runs now {len(intervals)}, "
        f"{used / MB:.1f} MB kept, {sweeper.bytes_freed / MB:.1f} MB freed"
    )


# ---- (c) ------------------------------------------------------------------------------------


def test_a_real_enospc_on_a_small_filesystem(engine: Engine, tmpfs: Path) -> None:
    events = Events()
    media = tmpfs / "media"
    settings = StoreSettings(
        dirs=(StorageDirSettings(path=media, min_free_bytes=20 * MB),),
        segment_seconds=50.0,  # ~29 MB of 4 Mbit/s video
        checkpoint_seconds=0.25,
    )
    store = Store(engine, settings, listener=events)
    store.open()
    store.create_recording("rec")
    handle = store.open_writer("rec", "VIDEO001")
    feeder = Feeder(handle, rate=40 * MB)
    try:
        # Fill the filesystem faster than the daemon's retention interval would notice.
        deadline = time.monotonic() + 20
        while handle.status().state is not WriterState.ERROR and time.monotonic() < deadline:
            feeder.feed(0.05)
        full = handle.status()
        assert full.state is WriterState.ERROR, "the tmpfs never filled up"
        assert events.errors and "No space left" in events.errors[0], events.errors
        feeder.feed(0.5)
        assert handle.status().dropped_error > 0
        assert store.writer_service.flush(30)
        free_when_full = free_bytes(media)
        # Nothing indexed is lost: every frame written before ENOSPC reads back.
        kept = read_back(store, feeder.sent)
        assert len(kept) == full.frames_written
        assert kept == sorted(t for t in feeder.sent if t <= kept[-1])
        segments_when_full = len(store.reader("rec", "VIDEO001").segments())

        result = store.sweep_retention()
        assert result.deleted and result.bytes_freed > 0 and not result.nothing_deletable
        freed_to = free_bytes(media)
        deadline = time.monotonic() + 15
        while handle.status().state is WriterState.ERROR and time.monotonic() < deadline:
            feeder.feed(0.1)
        feeder.feed(0.5)
        after = handle.status()
        assert store.writer_service.flush(30)
        times = read_back(store, feeder.sent)
    finally:
        store.close()
    assert after.state is WriterState.RECORDING and events.recovered == 1
    assert after.frames_written > full.frames_written
    assert times[-1] == max(feeder.sent), "recording did not resume"
    survivors = [t for t in kept if t >= result.deleted[-1].end_us]
    assert survivors and set(survivors) <= set(times), "retention took more than the oldest"
    print(
        f"\nENOSPC after {full.frames_written} frames ({full.bytes_written / MB:.1f} MB in "
        f"{segments_when_full} segments, {free_when_full / MB:.2f} MB free): "
        f"{events.errors[0]!r}; all {len(kept)} indexed frames read back; retention freed "
        f"{result.bytes_freed / MB:.1f} MB (free {freed_to / MB:.1f} MB), writing resumed: "
        f"{after.frames_written - full.frames_written} more frames"
    )
