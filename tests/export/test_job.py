"""Export jobs over the database backend under test: the retention hold over the exported range
(present while the job runs, gone after), cancel, failures, progress, the ExportManager."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nvr.db.models import Hold, Segment
from nvr.export.device_identity import SigningIdentity
from nvr.export.job import ExportCancelled, ExportError, ExportJob, ExportRequest, JobState
from nvr.export.manager import (
    CHANGED,
    DELETED,
    INITIALIZED,
    ExportManager,
    ExportStatus,
    UnknownOperation,
)
from nvr.export.verify import verify_file
from nvr.store import Store
from tests.export.conftest import T0, UNIT, S, export, open_store
from tests.export.media import audio_clip, schedule, video_clip, write_track

VIDEO_FRAMES = 250  # 10 s


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Iterator[Store]:
    store = open_store(engine, tmp_path)
    store.create_recording("REC", max_retention_us=S)  # everything is "old": only holds keep it
    write_track(store, "REC", "VIDEO001", schedule(video_clip(), T0, count=VIDEO_FRAMES))
    write_track(store, "REC", "AUDIO001", schedule(audio_clip("PCMU"), T0, seconds=10))
    yield store
    store.close()


def holds(store: Store) -> list[Hold]:
    with store.sessions() as s:
        return list(s.scalars(select(Hold)))


def segments(store: Store) -> int:
    with store.sessions() as s:
        return len(list(s.scalars(select(Segment.id))))


def request(tmp_path: Path, **kw: object) -> ExportRequest:
    fields: dict[str, object] = {
        "recording": "REC",
        "start_us": T0 + 2_100_000,
        "end_us": T0 + 7 * S,
        "output": tmp_path / "out.mp4",
    }
    fields.update(kw)
    return ExportRequest(**fields)  # type: ignore[arg-type]


def test_hold_covers_the_range_while_running_and_retention_cannot_delete_under_it(
    store: Store, tmp_path: Path, identity: SigningIdentity
) -> None:
    seen: list[list[tuple[int | None, int, int]]] = []
    progress: list[float] = []

    def on_progress(fraction: float) -> None:
        progress.append(fraction)
        if len(seen) < 3:
            seen.append([(h.track_id, h.start_us, h.end_us) for h in holds(store)])
            store.sweep_retention()  # the whole recording is past its retention time

    result = export(store, identity, request(tmp_path), on_progress=on_progress)
    # one row per track asked for (all three: META001 turns out empty and is left out)
    track_ids = sorted(t.id for t in store.get_recording("REC").tracks)
    assert len(seen) == 3
    for rows in seen:
        assert sorted(rows) == [(t, T0 + 2 * S, T0 + 7 * S) for t in track_ids]
    assert result.skipped == ("META001",)
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert holds(store) == []  # released
    assert result.start_us == T0 + 2 * S  # key frame (GOP 0.4 s) at or before T0+2.1 s
    assert [t.samples for t in result.tracks] == [125, 250]  # nothing was lost to retention
    assert verify_file(result.path).ok
    remaining = segments(store)
    store.sweep_retention()
    assert segments(store) < remaining  # without the hold retention deletes


def test_cancel_removes_the_partial_file_and_the_hold(
    store: Store, tmp_path: Path, identity: SigningIdentity
) -> None:
    req = request(tmp_path, start_us=None, end_us=None)
    job = ExportJob(store, req, identity, UNIT, durable=False)
    parts: list[bool] = []

    def on_progress(_: float) -> None:
        parts.append(req.output.with_name("out.mp4.part").exists())
        job.cancel()

    job.on_progress = on_progress
    with pytest.raises(ExportCancelled):
        job.run()
    assert parts == [True]  # it was writing ...
    assert job.state is JobState.CANCELLED
    assert list(tmp_path.glob("out.mp4*")) == []  # ... and left nothing behind
    assert holds(store) == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"tracks": ("VIDEO009",)}, "has no track 'VIDEO009'"),
        ({"recording": "NOPE"}, "NOPE"),
        ({"start_us": T0 + 20 * S, "end_us": T0 + 30 * S}, "has no data"),
        ({"start_us": T0 + 5 * S, "end_us": T0 + 5 * S}, "range is empty"),
        ({"output": Path("/nonexistent/folder/x.mp4")}, "does not exist"),
    ],
)
def test_failures_are_reported_and_leave_no_hold(
    store: Store, tmp_path: Path, identity: SigningIdentity, kw: dict, message: str
) -> None:
    job = ExportJob(store, request(tmp_path, **kw), identity, UNIT)
    with pytest.raises(ExportError, match=message):
        job.run()
    assert job.state is JobState.FAILED and message in (job.error or "")
    assert holds(store) == []


def test_existing_output_is_kept_unless_overwrite(
    store: Store, tmp_path: Path, identity: SigningIdentity
) -> None:
    (tmp_path / "out.mp4").write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        export(store, identity, request(tmp_path))
    assert (tmp_path / "out.mp4").read_bytes() == b"precious"
    result = export(store, identity, request(tmp_path, overwrite=True, tracks=("AUDIO001",)))
    assert [t.token for t in result.tracks] == ["AUDIO001"]
    assert result.start_us == T0 + 2_100_000  # no video: the file starts where asked
    assert verify_file(result.path).ok


def test_manager_start_poll_stop(store: Store, tmp_path: Path, identity: SigningIdentity) -> None:
    events: list[tuple[str, str, JobState]] = []
    release = threading.Event()

    def listener(operation: str, status: ExportStatus) -> None:
        events.append((operation, status.token, status.state))
        if status.token == "slow" and operation == CHANGED:
            release.wait(10)  # hold the worker inside the job

    manager = ExportManager(store, identity, UNIT, max_parallel=1, listener=listener, durable=False)
    try:
        slow = manager.start(request(tmp_path, start_us=None, end_us=None), token="slow")
        assert slow == "slow" and manager.active_for("REC") == ["slow"]
        waiting = manager.start(request(tmp_path, output=tmp_path / "second.mp4"))
        assert manager.status(waiting).state is JobState.PENDING
        assert {j.id for j in manager.scheduler.get_jobs()} == {"slow", waiting}
        threading.Timer(0.2, release.set).start()
        stopped = manager.stop("slow")
        assert stopped.state is JobState.CANCELLED
        assert manager.scheduler.get_job("slow") is None
        assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.mp4.part").exists()
        done = manager.wait(waiting, timeout=30)
        assert done.state is JobState.COMPLETED and done.progress == 1.0
        assert manager.scheduler.get_jobs() == []
        assert [f.name for f in done.files] == ["second.mp4"]
        assert done.result is not None and verify_file(done.result.path).ok
        with pytest.raises(UnknownOperation):
            manager.status("no-such-token")
    finally:
        manager.shutdown()
    assert not manager.scheduler.running  # its own scheduler: no daemon one was given
    for token in ("slow", waiting):
        ops = [op for op, t, _ in events if t == token]
        assert ops[0] == INITIALIZED and ops[-1] == DELETED
    assert any(op == CHANGED for op, t, _ in events if t == waiting)
    assert holds(store) == []


def test_stopping_a_job_that_never_started(
    store: Store, tmp_path: Path, identity: SigningIdentity
) -> None:
    """Stopped while it waits for a worker: it ends at once, never writes, holds nothing."""
    release = threading.Event()

    def listener(operation: str, status: ExportStatus) -> None:
        if status.token == "busy" and operation == CHANGED:
            release.wait(10)

    manager = ExportManager(store, identity, UNIT, max_parallel=1, listener=listener, durable=False)
    try:
        manager.start(request(tmp_path, start_us=None, end_us=None), token="busy")
        queued = manager.start(request(tmp_path, output=tmp_path / "queued.mp4"), token="queued")
        stopped = manager.stop(queued, wait=None)
        assert stopped.state is JobState.CANCELLED and "before it started" in (stopped.error or "")
        assert manager.scheduler.get_job(queued) is None
        release.set()
        assert manager.wait("busy", timeout=30).state is JobState.COMPLETED
        assert manager.status(queued).state is JobState.CANCELLED  # the worker did not rerun it
    finally:
        release.set()
        manager.shutdown()
    assert not list(tmp_path.glob("queued.mp4*"))
    assert holds(store) == []
