"""fsck: finds what is wrong, changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Segment
from nvr.store.fsck import check
from tests.store.synth_store import T0, SynthStore


@pytest.fixture
def store(sessions: sessionmaker[Session], tmp_path: Path) -> SynthStore:
    return SynthStore.create(sessions, tmp_path / "media")


def snapshot(store: SynthStore) -> tuple[dict[str, bytes], list[tuple[int, int, str | None]]]:
    files = {rel: (store.root / rel).read_bytes() for rel in store.files()}
    rows = [(r.id, r.bytes, r.sha256) for r in store.rows()]
    return files, rows


def test_clean_store_has_no_problems(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    _, (_s0, s1) = store.run(track, T0, 2, open_last=True)
    with open(s1.file, "ab") as f:
        f.write(b"in flight")  # a live checkpoint's tail: not a problem

    quick = check(store.sessions)
    deep = check(store.sessions, hash=True)

    assert quick.problems == 0 and deep.problems == 0, str(deep)
    assert (deep.segments, deep.ok, deep.hashed, deep.open_segments) == (2, 2, 1, 1)
    assert deep.unindexed_tails == 1
    assert "0 problem(s)" in str(deep)


def test_flipped_byte_is_found_only_with_hash(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    _, (s0, _s1) = store.run(track, T0, 2)
    data = bytearray(s0.file.read_bytes())
    data[1234] ^= 0x01
    s0.file.write_bytes(bytes(data))
    before = snapshot(store)

    assert check(store.sessions).problems == 0
    deep = check(store.sessions, hash=True)

    assert deep.problems == 1
    (finding,) = deep.findings
    assert finding.segment_id == s0.id and "checksum mismatch" in finding.problem
    assert snapshot(store) == before


def test_missing_short_orphan_and_bad_index_are_problems(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    _, (s0, s1, s2) = store.run(track, T0, 3)
    s0.file.unlink()
    s1.file.write_bytes(s1.file.read_bytes()[:-10])
    orphan = store.root / f"t{track}/2023-11-14/1700000077000000-abc.h264"
    orphan.write_bytes(b"unindexed")
    (store.root / "notes.txt").write_text("not ours")
    with store.sessions.begin() as s:
        s.execute(update(Segment).where(Segment.id == s2.id).values(frames=99))
    before = snapshot(store)

    quick = check(store.sessions)
    deep = check(store.sessions, hash=True)

    problems = {(f.segment_id, f.problem.split(":")[0]) for f in deep.findings}
    assert problems == {
        (s0.id, "file missing"),
        (s1.id, "file short"),
        (s2.id, "frame index has 100 frames, row says 99"),
    }
    assert [f.path for f in deep.orphans] == [orphan.relative_to(store.root).as_posix()]
    assert [f.path for f in deep.foreign] == ["notes.txt"]
    assert deep.problems == 4
    assert quick.problems == 3  # the index is only read with hash
    assert snapshot(store) == before
    assert "file missing" in str(deep)


def test_unavailable_directory_is_a_problem(store: SynthStore) -> None:
    track = store.track(store.recording("REC"))
    store.run(track, T0, 1)
    (store.root / ".nvr-storage.json").unlink()
    report = check(store.sessions)
    assert report.problems == 1 and report.unavailable_dirs == [str(store.root)]
    assert report.segments == 0
