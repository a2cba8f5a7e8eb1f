"""Retention: by age, size cap, free-space floor, holds at frame granularity, run repair."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Garbage, Segment
from nvr.store import disk
from nvr.store.retention import DeletedRange, sweep
from tests.store.synth_store import FRAME_US, T0, S, SynthStore


@pytest.fixture
def store(sessions: sessionmaker[Session], tmp_path: Path) -> SynthStore:
    return SynthStore.create(sessions, tmp_path / "media")


@pytest.fixture
def disk_space(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """The disk probes, patched: set ``free`` / ``used`` to simulate a filesystem."""
    space = {"free": 1 << 50, "used": 1 << 50}
    monkeypatch.setattr(disk, "free_bytes", lambda root: space["free"])
    monkeypatch.setattr(disk, "used_bytes", lambda root: space["used"])
    yield space


def set_limits(store: SynthStore, *, max_bytes: int | None = None, min_free: int = 0) -> None:
    from nvr.db.models import StorageDir

    with store.sessions.begin() as s:
        row = s.get(StorageDir, store.dir_id)
        assert row is not None
        row.max_bytes = max_bytes
        row.min_free_bytes = min_free


def garbage_rows(store: SynthStore) -> int:
    with store.sessions() as s:
        return s.execute(select(func.count()).select_from(Garbage)).scalar_one()


@pytest.mark.parametrize(
    ("limit_offset_us", "cut_frame"),
    [(15 * S, 50), (15 * S + 350_000, 50), (15 * S - 50_000, 40)],
)
def test_age_deletes_old_segments_and_cuts_the_straddling_head(
    store: SynthStore, disk_space: dict[str, int], limit_offset_us: int, cut_frame: int
) -> None:
    rec = store.recording("REC", retention_us=60 * S)
    track = store.track(rec)
    run_id, (s0, s1, s2) = store.run(track, T0, 3)
    now = T0 + limit_offset_us + 60 * S

    result = sweep(store.sessions, now_us=now)

    assert result.errors == []
    assert not result.nothing_deletable
    new_start = T0 + 10 * S + cut_frame * FRAME_US
    assert result.deleted == [DeletedRange("REC", "VIDEO001", T0, new_start)]
    assert (result.segments_deleted, result.segments_rewritten) == (1, 1)
    rows = store.rows(track)
    assert [r.id for r in rows] == [s1.id, s2.id]
    cut = rows[0]
    # The kept tail starts at a key frame, byte for byte the frames that were there.
    assert cut.start_us == new_start and cut.end_us == s1.end_us
    assert store.stored_frames(s1.id) == s1.frames[cut_frame:]
    assert cut.frames == 100 - cut_frame and cut.bytes == sum(map(len, s1.frames[cut_frame:]))
    assert cut.duration == (100 - cut_frame) * 9_000
    assert cut.sha256 == hashlib.sha256((store.root / cut.path).read_bytes()).hexdigest()
    assert cut.path != s1.path
    assert not s0.file.exists() and not s1.file.exists()
    assert store.files() == {cut.path, s2.path}
    assert garbage_rows(store) == 0
    (run,) = store.runs(track)
    assert (run.id, run.start_us, run.end_us) == (run_id, new_start, s2.end_us)

    again = sweep(store.sessions, now_us=now)
    assert again.deleted == [] and again.errors == []
    assert store.stored_frames(s1.id) == s1.frames[cut_frame:]


def test_age_never_touches_an_open_segment(store: SynthStore, disk_space: dict[str, int]) -> None:
    rec = store.recording("REC", retention_us=5 * S)
    track = store.track(rec)
    _, (s0, s1) = store.run(track, T0, 2, open_last=True)

    result = sweep(store.sessions, now_us=T0 + 3600 * S)

    assert result.deleted == [DeletedRange("REC", "VIDEO001", T0, s0.end_us)]
    assert [r.id for r in store.rows(track)] == [s1.id]
    assert s1.file.exists() and store.stored_frames(s1.id) == s1.frames
    (run,) = store.runs(track)
    assert run.open and run.start_us == s1.start_us


def test_recordings_without_retention_time_keep_everything(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    track = store.track(store.recording("REC", retention_us=0))
    store.run(track, T0, 2)
    assert sweep(store.sessions, now_us=T0 + 10**12).deleted == []
    assert len(store.rows(track)) == 2


def test_size_cap_deletes_oldest_first_across_tracks(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC")
    video = store.track(rec, "VIDEO001")
    meta = store.track(rec, "META001")
    _, (v0, v1, v2) = store.run(video, T0, 3)
    _, (m0, m1, m2) = store.run(meta, T0 + 5 * S, 3)
    total = sum(s.bytes for s in (v0, v1, v2, m0, m1, m2))
    set_limits(store, max_bytes=total - v0.bytes - 1)

    result = sweep(store.sessions, now_us=T0 + 100 * S)

    # v0 (T0) alone is not enough; m0 (T0+5 s) is next oldest.
    assert result.deleted == [
        DeletedRange("REC", "META001", m0.start_us, m0.end_us),
        DeletedRange("REC", "VIDEO001", v0.start_us, v0.end_us),
    ]
    assert {r.id for r in store.rows()} == {v1.id, v2.id, m1.id, m2.id}
    assert result.bytes_freed == v0.bytes + m0.bytes and not result.nothing_deletable

    # Under the cap the database is not even asked for the usage once the filesystem's
    # own usage is below it.
    disk_space["used"] = 0
    set_limits(store, max_bytes=1)
    assert sweep(store.sessions, now_us=T0 + 100 * S).deleted == []


def test_free_space_floor_deletes_until_satisfied_then_reports_nothing_deletable(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC")
    track = store.track(rec)
    _, (s0, s1, s2, s3) = store.run(track, T0, 4, open_last=True)
    set_limits(store, min_free=1_000_000)
    disk_space["free"] = 1_000_000 - 1

    first = sweep(store.sessions, now_us=T0 + 100 * S)
    assert first.deleted == [DeletedRange("REC", "VIDEO001", T0, s0.end_us)]
    assert not first.nothing_deletable

    disk_space["free"] = 0  # something else filled the disk
    second = sweep(store.sessions, now_us=T0 + 100 * S)
    assert second.deleted == [DeletedRange("REC", "VIDEO001", s1.start_us, s2.end_us)]
    assert second.nothing_deletable and second.starved_dirs == [store.dir_id]
    assert second.errors == []
    assert [r.id for r in store.rows()] == [s3.id] and s3.file.exists()

    third = sweep(store.sessions, now_us=T0 + 100 * S)
    assert third.deleted == [] and third.nothing_deletable and third.errors == []


def test_holds_keep_frames_and_split_the_run(store: SynthStore, disk_space: dict[str, int]) -> None:
    rec = store.recording("REC")
    track = store.track(rec)
    run_id, (s0, s1, s2) = store.run(track, T0, 3, open_last=True)
    # Held: 5.05 s .. 6 s into s0. Its GOP starts at 5.0 s (frame 50).
    store.hold(rec, T0 + 5 * S + 50_000, T0 + 6 * S, track_id=track)
    set_limits(store, min_free=10**12)
    disk_space["free"] = 0

    result = sweep(store.sessions, now_us=T0 + 100 * S)

    assert result.errors == []
    assert result.nothing_deletable
    assert result.deleted == [
        DeletedRange("REC", "VIDEO001", T0, T0 + 5 * S),
        DeletedRange("REC", "VIDEO001", s1.start_us, s1.end_us),
    ]
    rows = store.rows(track)
    assert [r.id for r in rows] == [s0.id, s2.id]
    assert rows[0].start_us == T0 + 5 * S and rows[0].end_us == s0.end_us
    assert store.stored_frames(s0.id) == s0.frames[50:]
    assert store.stored_frames(s2.id) == s2.frames
    # s1 left a gap: the kept head of the run became its own closed run; the open run (the
    # writer still appends to it under its id) now starts at s2.
    old, current = store.runs(track)
    assert (old.start_us, old.end_us, old.open) == (T0 + 5 * S, s0.end_us, False)
    assert (current.id, current.start_us, current.open) == (run_id, s2.start_us, True)
    assert rows[0].run_id == old.id and rows[1].run_id == run_id

    # Nothing more can go; a second sweep changes nothing.
    again = sweep(store.sessions, now_us=T0 + 100 * S)
    assert again.deleted == [] and again.nothing_deletable
    assert store.stored_frames(s0.id) == s0.frames[50:]


def test_hold_of_a_whole_recording_covers_all_its_tracks_and_expired_holds_do_not(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC", retention_us=S)
    video = store.track(rec, "VIDEO001")
    audio = store.track(rec, "AUDIO001")
    other = store.track(store.recording("OTHER", retention_us=S))
    _, (v0,) = store.run(video, T0, 1)
    _, (a0,) = store.run(audio, T0, 1)
    _, (o0,) = store.run(other, T0, 1)
    store.hold(rec, T0, T0 + 10 * S)  # all tracks of REC, never expires
    store.hold(rec, T0, T0 + 10 * S, expires_us=T0 + 50 * S)  # expired by then
    now = T0 + 100 * S

    result = sweep(store.sessions, now_us=now)

    assert result.deleted == [DeletedRange("OTHER", "VIDEO001", T0, o0.end_us)]
    assert {r.id for r in store.rows()} == {v0.id, a0.id}


def test_age_cut_respects_a_hold_inside_the_expired_part(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC", retention_us=10 * S)
    track = store.track(rec)
    _, (s0, s1) = store.run(track, T0, 2)
    store.hold(rec, T0 + 2 * S + 10, T0 + 2 * S + 20, track_id=track)

    result = sweep(store.sessions, now_us=T0 + 25 * S)  # limit: T0 + 15 s

    # s0 keeps from its 2 s GOP; s1 is cut at 5 s (frame 50) by age.
    assert result.deleted == [
        DeletedRange("REC", "VIDEO001", T0, T0 + 2 * S),
        DeletedRange("REC", "VIDEO001", s1.start_us, s1.start_us + 5 * S),
    ]
    assert store.stored_frames(s0.id) == s0.frames[20:]
    assert store.stored_frames(s1.id) == s1.frames[50:]


def test_idle_sweep_is_cheap(store: SynthStore, disk_space: dict[str, int], engine: Engine) -> None:
    rec = store.recording("REC", retention_us=3600 * S)
    track = store.track(rec)
    store.run(track, T0, 3, open_last=True)
    set_limits(store, max_bytes=10**12, min_free=1)
    disk_space["used"] = 10**9  # the whole filesystem is under the cap: no usage query
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = sweep(store.sessions, now_us=T0 + 60 * S)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.deleted == [] and result.errors == []
    # storage dirs, tracks with a retention time, their expired segments (none).
    assert len(statements) <= 3, statements


def test_sweep_survives_a_missing_file_and_a_bad_database(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC", retention_us=S)
    track = store.track(rec)
    _, (s0, _) = store.run(track, T0, 2)
    s0.file.unlink()  # deleted behind our back: its row still goes

    result = sweep(store.sessions, now_us=T0 + 100 * S)
    assert result.errors == [] and store.rows(track) == []
    assert not s0.file.parent.exists()  # an old day folder goes once empty

    class Broken:
        engine = None

    bad = sweep(Broken(), now_us=T0)
    assert bad.errors and bad.deleted == []


def test_segments_in_an_unavailable_directory_are_not_cut_or_counted(
    store: SynthStore, disk_space: dict[str, int]
) -> None:
    rec = store.recording("REC", retention_us=15 * S)
    track = store.track(rec)
    _, (s0, s1) = store.run(track, T0, 2)
    set_limits(store, min_free=10**12)
    disk_space["free"] = 0
    (store.root / ".nvr-storage.json").unlink()  # unmounted

    result = sweep(store.sessions, now_us=T0 + 30 * S)

    # Expired rows still go (their files wait on the garbage list); nothing is cut, and the
    # floor of a directory we cannot see is not enforced.
    assert result.deleted == [DeletedRange("REC", "VIDEO001", T0, s0.end_us)]
    assert not result.nothing_deletable
    assert [r.id for r in store.rows()] == [s1.id] and garbage_rows(store) == 1
    with store.sessions() as s:
        assert s.get(Segment, s1.id).start_us == s1.start_us  # type: ignore[union-attr]
