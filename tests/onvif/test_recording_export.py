"""ExportRecordedData through zeep (official recording.wsdl) over footage the daemon recorded
from its demo camera: poll GetExportRecordedDataState to 1.0, then the file verifies
(``nvr.export.verify_file``) and FFmpeg decodes it. A DeleteRecording issued while the export
runs waits for it (recording.md §4.2)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.export import verify_file
from nvr.onvif.recording_export import OPERATION_STATUS
from tests.conftest import database_url, require_binary
from tests.onvif.test_recording_service import (
    RECORDING,
    Nvr,
    _job,
    call,
    fault_of,
    running,
)
from tests.playback.helpers import LoopThread, wait_for
from tests.playback.replay_footage import loop

__all__ = ["database_url", "loop"]

pytestmark = pytest.mark.timeout(120)


def _utc(time_us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_us / 1_000_000, dt.UTC)


def _record(nvr: Nvr, seconds: float = 3.0) -> tuple[str, int, int]:
    """A recording with ``seconds`` of demo-camera video; (token, first, last) data times."""
    client = nvr.client()
    token = str(call(client, "CreateRecording", RecordingConfiguration=RECORDING))
    job = _job(client, token, "demo-receiver", 9, "Active")
    assert nvr.daemon.store is not None
    catalog = nvr.daemon.store.catalog

    def enough() -> bool:
        video = catalog.data_ranges(token).get("VIDEO001")
        return video is not None and video.end_us - video.start_us >= seconds * 1_000_000

    wait_for(enough, 30)
    call(client, "SetRecordingJobMode", JobToken=job, Mode="Idle")
    video = catalog.data_ranges(token)["VIDEO001"]
    return token, video.start_us, video.end_us


def test_export_through_soap_verifies_and_decodes(
    loop: LoopThread, engine: Engine, tmp_path: Path
) -> None:
    ffprobe = require_binary("ffprobe")
    data = tmp_path / "data"
    with running(loop, engine, data) as nvr:
        token, first, last = _record(nvr)
        client = nvr.client()
        answer = call(
            client,
            "ExportRecordedData",
            StartPoint=_utc(first + 500_000),
            EndPoint=_utc(last),
            SearchScope={"IncludedRecordings": [token]},
            FileFormat="ONVIF",
            StorageDestination={"StorageToken": "evidence", "RelativePath": "case-17"},
        )
        operation = answer.OperationToken
        (name,) = answer.FileNames

        def finished() -> bool:
            state = call(client, "GetExportRecordedDataState", OperationToken=operation)
            return state.Progress == 1.0

        wait_for(finished, 60)
        state = call(client, "GetExportRecordedDataState", OperationToken=operation)
        assert [(f.FileName, f.Progress) for f in state.FileProgressStatus.FileProgress] == [
            (name, 1.0)
        ]
        status = [e for e in nvr.events if e.topic == OPERATION_STATUS]
        assert status[0].property_operation == "Initialized"
        assert status[-1].property_operation == "Deleted"
        assert dict(status[0].source)["Token"] == operation
        stopped = call(client, "StopExportRecordedData", OperationToken=operation)
        assert stopped.Progress == 1.0  # already complete: stopping changes nothing

    path = data / "exports" / "evidence" / "case-17" / name
    report = verify_file(path)
    assert report.ok, report.problems
    probe = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    codec, frames = probe.stdout.strip().split(",")[:2]
    assert codec == "h264" and int(frames) >= 25


def test_delete_recording_waits_for_its_export(
    loop: LoopThread, engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with running(loop, engine, data) as nvr:
        token, _, _ = _record(nvr, 2.0)
        client = nvr.client()
        answer = call(
            client,
            "ExportRecordedData",
            SearchScope={"IncludedRecordings": [token]},
            FileFormat="ONVIF",
            StorageDestination={"StorageToken": "local"},
        )
        call(client, "DeleteRecording", RecordingToken=token)
        state = call(client, "GetExportRecordedDataState", OperationToken=answer.OperationToken)
        assert state.Progress == 1.0
        assert fault_of(client, "GetRecordingConfiguration", RecordingToken=token)[-1] == (
            "NoRecording"
        )
    (name,) = answer.FileNames
    assert verify_file(data / "exports" / "local" / name).ok
