"""Startup recovery: every crash shape, and a second run finding nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Garbage, Run, Segment, SegmentFrames
from nvr.store.recovery import FileFix, SegmentFix, recover
from nvr.store.retention import DeletedRange
from tests.store.synth_store import FRAME_US, T0, S, SynthStore


@pytest.fixture
def store(sessions: sessionmaker[Session], tmp_path: Path) -> SynthStore:
    return SynthStore.create(sessions, tmp_path / "media")


def count(store: SynthStore, model: type) -> int:
    with store.sessions() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def assert_clean_second_run(store: SynthStore) -> None:
    again = recover(store.sessions)
    assert again.changes == 0, str(again)


def test_open_segment_with_unindexed_tail_is_cut_and_closed(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    run_id, (_s0, s1) = store.run(track, T0, 2, open_last=True)
    with open(s1.file, "ab") as f:
        f.write(b"\x00frames in flight" * 10)

    report = recover(store.sessions)

    assert report.of("truncated") == [
        SegmentFix("truncated", s1.id, store.dir_id, s1.path, bytes_cut=170)
    ]
    assert [f.segment_id for f in report.of("closed")] == [s1.id]
    assert report.runs_closed == 1 and report.lost == []
    assert s1.file.stat().st_size == s1.bytes
    with store.sessions() as s:
        row = s.get(Segment, s1.id)
        assert row is not None and not row.open
        assert row.sha256 == hashlib.sha256(b"".join(s1.frames)).hexdigest()
        run = s.get(Run, run_id)
        assert run is not None and not run.open and run.end_us == s1.end_us
    assert "170 unindexed byte(s) cut" in str(report)
    assert_clean_second_run(store)


def test_short_file_trims_the_index_to_whole_frames(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    run_id, (_s0, s1) = store.run(track, T0, 2)
    data = s1.file.read_bytes()
    s1.file.write_bytes(data[: s1.bytes - len(s1.frames[-1]) - 3])  # last 2 frames incomplete

    report = recover(store.sessions)

    assert report.of("trimmed") == [
        SegmentFix(
            "trimmed",
            s1.id,
            store.dir_id,
            s1.path,
            bytes_cut=len(s1.frames[-1]) + len(s1.frames[-2]),
            frames_dropped=2,
        )
    ]
    new_end = s1.start_us + 98 * FRAME_US
    assert report.lost == [DeletedRange("REC", "VIDEO001", new_end, s1.end_us)]
    assert store.stored_frames(s1.id) == s1.frames[:98]
    with store.sessions() as s:
        row = s.get(Segment, s1.id)
        assert row is not None
        assert (row.frames, row.end_us, row.duration) == (98, new_end, 98 * 9_000)
        assert row.bytes == sum(map(len, s1.frames[:98])) == s1.file.stat().st_size
        assert row.sha256 == hashlib.sha256(s1.file.read_bytes()).hexdigest()
        run = s.get(Run, run_id)
        assert run is not None and run.end_us == new_end
    assert_clean_second_run(store)


def test_missing_file_removes_the_row_and_splits_its_run(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    run_id, (s0, s1, s2) = store.run(track, T0, 3)
    s1.file.unlink()

    report = recover(store.sessions)

    assert report.of("missing") == [SegmentFix("missing", s1.id, store.dir_id, s1.path)]
    assert report.lost == [DeletedRange("REC", "VIDEO001", s1.start_us, s1.end_us)]
    assert [r.id for r in store.rows(track)] == [s0.id, s2.id]
    runs = store.runs(track)
    assert [(r.start_us, r.end_us, r.open) for r in runs] == [
        (s0.start_us, s0.end_us, False),
        (s2.start_us, s2.end_us, False),
    ]
    assert runs[1].id == run_id and report.runs_fixed == 1
    assert count(store, SegmentFrames) == 2 and count(store, Garbage) == 0
    assert_clean_second_run(store)


def test_run_whose_every_file_is_gone_is_removed(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    _, segs = store.run(track, T0, 2, open_last=True)
    for seg in segs:
        seg.file.unlink()

    report = recover(store.sessions)

    assert len(report.of("missing")) == 2 and report.runs_removed == 1
    assert store.rows() == [] and store.runs(track) == []
    assert_clean_second_run(store)


def test_open_segment_that_never_indexed_a_frame_is_removed(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    run_id, (s0,) = store.run(track, T0, 1)
    with store.sessions.begin() as s:
        s.execute(Run.__table__.update().values(open=True))
    empty = store.segment(track, run_id, s0.end_us, frames=0, open=True)

    report = recover(store.sessions)

    assert report.of("empty") == [SegmentFix("empty", empty.id, store.dir_id, empty.path)]
    assert report.lost == [] and not empty.file.exists()
    (run,) = store.runs(track)
    assert (run.end_us, run.open) == (s0.end_us, False)
    assert_clean_second_run(store)


def test_orphans_are_deleted_and_foreign_files_kept(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    store.run(track, T0, 1)
    orphan = store.root / f"t{track}/2023-11-14/1700000123000000-dead01.h264"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 1000)
    empty_day = store.root / f"t{track}/2023-11-13"
    empty_day.mkdir()
    foreign = store.root / "README.txt"
    foreign.write_text("operator notes")
    (store.root / "lost+found").mkdir()
    (store.root / "lost+found" / "#123").write_bytes(b"fs")

    report = recover(store.sessions)

    rel = orphan.relative_to(store.root).as_posix()
    assert sorted(report.files) == [
        FileFix("foreign", store.dir_id, "README.txt", 14),
        FileFix("orphan", store.dir_id, rel, 1000),
    ]
    assert not orphan.exists() and foreign.exists()
    assert (store.root / "lost+found" / "#123").exists()
    assert not empty_day.exists() and report.folders_removed == 1
    assert count(store, Garbage) == 0
    again = recover(store.sessions)
    assert again.changes == 0 and [f.kind for f in again.files] == ["foreign"]


def test_pending_garbage_is_finished(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    store.run(track, T0, 1)
    doomed = store.root / f"t{track}/2023-11-14/1700000999000000-gone.h264"
    doomed.write_bytes(b"old")
    with store.sessions.begin() as s:
        s.execute(
            insert(Garbage),
            [
                {"storage_dir_id": store.dir_id, "path": rel, "created_us": T0}
                for rel in (doomed.relative_to(store.root).as_posix(), "t1/gone/already.h264")
            ],
        )

    report = recover(store.sessions)

    assert report.garbage_finished == 2 and report.files == []
    assert not doomed.exists() and count(store, Garbage) == 0
    assert_clean_second_run(store)


def test_every_crash_shape_at_once_then_nothing(store: SynthStore) -> None:
    """A store after a power cut: each shape in its own track, recovered in one pass."""
    rec = store.recording("REC")
    tracks = [store.track(rec, f"T{i}") for i in range(4)]
    _, (a0, a1) = store.run(tracks[0], T0, 2, open_last=True)
    _, (b0, b1, b2) = store.run(tracks[1], T0, 3)
    _, (c0,) = store.run(tracks[2], T0, 1)
    _, (d0,) = store.run(tracks[3], T0, 1, open_last=True)
    with open(a1.file, "ab") as f:
        f.write(b"tail")
    b1.file.unlink()
    c0.file.write_bytes(c0.file.read_bytes()[:-1])
    (store.root / f"t{tracks[3]}/2023-11-14/1700000050000000-x.h264").write_bytes(b"o")

    report = recover(store.sessions)

    kinds = sorted(f.kind for f in report.segments)
    assert kinds == ["closed", "closed", "missing", "trimmed", "truncated"]
    assert [f.kind for f in report.files] == ["orphan"]
    assert report.runs_closed == 2
    assert report.changes > 0 and "store recovery" in str(report)
    assert_clean_second_run(store)
    # Everything that is indexed now reads back as written.
    for seg, n in ((a0, 100), (a1, 100), (b0, 100), (b2, 100), (c0, 99), (d0, 100)):
        assert store.stored_frames(seg.id) == seg.frames[:n]


def test_unavailable_directory_is_left_alone(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    _, (s0,) = store.run(track, T0, 1, open_last=True)
    (store.root / ".nvr-storage.json").unlink()  # the disk is not mounted
    s0.file.unlink()

    report = recover(store.sessions)

    assert report.unavailable_dirs == [str(store.root)]
    assert report.segments == [] and [r.id for r in store.rows()] == [s0.id]
    assert "unavailable" in str(report)


def test_recover_accepts_an_object_holding_the_database(store: SynthStore) -> None:
    class StoreLike:
        sessions = store.sessions

    track = store.track(store.recording("REC"))
    store.run(track, T0 + 10 * S, 1, open_last=True)
    report = recover(StoreLike())
    assert [f.kind for f in report.segments] == ["closed"]
