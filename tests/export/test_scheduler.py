"""Exports as APScheduler jobs of the daemon: ExportRecordedData through zeep (official
recording.wsdl) adds a job with the operation token as id on the ``export`` executor; while it
runs it holds the range against retention and writes ``*.part``; StopExportRecordedData
removes the job, the partial file and the hold; a completed export leaves the scheduler too."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nvr.db.models import Hold
from nvr.export.job import JobState
from nvr.export.manager import CHANGED, EXECUTOR, ExportStatus
from tests.conftest import database_url
from tests.onvif.test_recording_export import _record
from tests.onvif.test_recording_service import Nvr, call, running
from tests.playback.helpers import LoopThread, wait_for
from tests.playback.replay_footage import loop

__all__ = ["database_url", "loop"]

pytestmark = pytest.mark.timeout(120)


def _holds(nvr: Nvr) -> list[tuple[int, int | None, int, int]]:
    assert nvr.daemon.store is not None
    with nvr.daemon.store.sessions() as s:
        return [(h.recording_id, h.track_id, h.start_us, h.end_us) for h in s.scalars(select(Hold))]


def _export(nvr: Nvr, recording: str, storage: str, **kw: object) -> tuple[str, str]:
    """ExportRecordedData of one recording: (operation token, file name)."""
    answer = call(
        nvr.client(),
        "ExportRecordedData",
        SearchScope={"IncludedRecordings": [recording]},
        FileFormat="ONVIF",
        StorageDestination={"StorageToken": storage},
        **kw,
    )
    (name,) = answer.FileNames
    return answer.OperationToken, name


def test_export_is_a_scheduler_job_until_it_ends_or_is_stopped(
    loop: LoopThread, engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with running(loop, engine, data) as nvr:
        token, first, last = _record(nvr, 4.0)
        manager = nvr.daemon.exports
        assert manager is not None and manager.scheduler is nvr.daemon.scheduler
        paused = threading.Event()

        def pause_inside_the_job(lifecycle: str, status: ExportStatus) -> None:
            """The job's first progress report waits (in the job's thread) for the stop."""
            if lifecycle == CHANGED and not paused.is_set():
                paused.set()
                job = manager.job(status.token)
                wait_for(lambda: job.cancelled, 30)

        manager.listener = pause_inside_the_job
        since = dt.datetime.fromtimestamp(first / 1e6, dt.UTC)
        operation, name = _export(nvr, token, "evidence", StartPoint=since)
        folder = data / "exports" / "evidence"
        wait_for(paused.is_set, 30)

        scheduled = nvr.daemon.scheduler.get_job(operation)
        assert scheduled is not None and scheduled.executor == EXECUTOR
        assert scheduled.name == f"export to {name}"
        assert manager.status(operation).state is JobState.RUNNING
        assert sorted(p.name for p in folder.iterdir()) == [f"{name}.part"]
        rows = _holds(nvr)
        assert nvr.daemon.store is not None
        recording = nvr.daemon.store.get_recording(token)
        assert rows and {r[0] for r in rows} == {recording.id}
        assert all(start <= first and end > last for _, _, start, end in rows)
        client = nvr.client()
        state = call(client, "GetExportRecordedDataState", OperationToken=operation)
        assert 0.0 < state.Progress < 1.0

        stopped = call(client, "StopExportRecordedData", OperationToken=operation)
        assert stopped.Progress < 1.0
        assert manager.status(operation).state is JobState.CANCELLED
        assert nvr.daemon.scheduler.get_job(operation) is None
        assert list(folder.iterdir()) == []  # neither the partial nor a final file
        assert _holds(nvr) == []
        assert call(client, "GetExportRecordedDataState", OperationToken=operation).Progress < 1

        # Not stopped: it completes, then leaves the scheduler and releases its hold.
        operation, name = _export(nvr, token, "evidence")
        assert manager.wait(operation, timeout=60).state is JobState.COMPLETED
        assert nvr.daemon.scheduler.get_job(operation) is None
        assert _holds(nvr) == []
        assert sorted(p.name for p in folder.iterdir()) == [name]
