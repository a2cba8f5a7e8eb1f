"""The Recording service through zeep built from the official recording.wsdl, on a started
daemon (``Daemon.start`` with the demo camera as the RTSP source, uvicorn on the daemon's
loop, as in ``nvr serve``). Every response, faults included, is validated against the
official schemas."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvr.ingest.engine import DEMO_RECORDING
from nvr.ingest.receiver_config import AUTO_CONNECT, ReceiverConfig
from nvr.onvif.namespaces import TRC
from nvr.onvif.operations import wsdl_operations
from nvr.onvif.recording import RECORDING_PATH
from nvr.onvif.recording_policy import RECORDING_OPERATIONS
from tests.conftest import database_url
from tests.onvif.conftest import ADMIN, USER
from tests.onvif.live import LiveNvr, live_nvr
from tests.onvif.schemas import WSDL_DIR
from tests.onvif.zeep_client import OnvifClient, fault_of
from tests.onvif.zeep_client import checked as call
from tests.playback.helpers import LoopThread, wait_for
from tests.playback.replay_footage import loop

__all__ = ["database_url", "loop"]

pytestmark = pytest.mark.timeout(120)

RECORDING_WSDL = "ver10/recording.wsdl"
RECORDING_BINDING = f"{{{TRC}}}RecordingBinding"
SOURCE = {
    "SourceId": "urn:cam1",
    "Name": "Cam 1",
    "Location": "hall",
    "Description": "entrance",
    "Address": "http://cam1/onvif",
}
RECORDING = {"Source": SOURCE, "Content": "entrance camera", "MaximumRetentionTime": "PT1H"}


class Nvr(LiveNvr):
    """The live daemon, with the Recording service's client."""

    def client(self, user: tuple[str, str] | None = ADMIN) -> OnvifClient:
        return OnvifClient(
            f"http://127.0.0.1:{self.port}{RECORDING_PATH}",
            digest=user,
            wsdl=RECORDING_WSDL,
            binding=RECORDING_BINDING,
        )

    @property
    def demo_uri(self) -> str:
        assert self.daemon.demo_rtsp is not None
        return f"rtsp://127.0.0.1:{self.daemon.demo_rtsp.port}/demo"

    def topics(self) -> list[str]:
        return [e.topic for e in self.events]


@contextmanager
def running(loop: LoopThread, engine: Engine, data: Path) -> Iterator[Nvr]:
    """A started daemon (demo camera on) serving HTTP on ``loop``; stopped afterwards."""
    with live_nvr(loop, engine, data, demo=True, handle_type=Nvr) as handle:
        assert isinstance(handle, Nvr)
        yield handle


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path) -> Iterator[Nvr]:
    with running(loop, engine, tmp_path / "data") as handle:
        yield handle


# ---- tests -------------------------------------------------------------------------------------


def test_operation_list_is_the_official_one() -> None:
    assert wsdl_operations(WSDL_DIR / RECORDING_WSDL) == list(RECORDING_OPERATIONS)


def test_capabilities_and_typical_flow(nvr: Nvr) -> None:
    client = nvr.client()
    caps = call(client, "GetServiceCapabilities")
    assert caps.DynamicRecordings and caps.DynamicTracks and caps.Options
    assert caps.MetadataRecording and caps.SupportedExportFileFormats == ["ONVIF"]
    assert caps.Encoding == ["H264", "H265", "JPEG", "G711", "AAC"]

    token = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
    config = call(client, "GetRecordingConfiguration", RecordingToken=token)
    assert config.Source.Name == "Cam 1" and config.Content == "entrance camera"
    assert config.MaximumRetentionTime == "PT1H" or str(config.MaximumRetentionTime) == "1:00:00"
    items = {i.RecordingToken: i for i in call(client, "GetRecordings")}
    tracks = {t.TrackToken: t.Configuration.TrackType for t in items[token].Tracks.Track}
    assert tracks == {"VIDEO001": "Video", "AUDIO001": "Audio", "META001": "Metadata"}

    answer = call(
        client,
        "CreateRecordingJob",
        JobConfiguration={
            "RecordingToken": token,
            "Mode": "Idle",
            "Priority": 1,
            "Source": [{"AutoCreateReceiver": True}],
        },
    )
    job, effective = answer.JobToken, answer.JobConfiguration
    assert b"AutoCreateReceiver" not in client.last_response
    receiver = effective.Source[0].SourceToken.Token
    assert effective.Source[0].SourceToken.Type == "http://www.onvif.org/ver10/schema/Receiver"
    mapped = {(t.SourceTag, t.Destination) for t in effective.Source[0].Tracks}
    assert mapped == {("VIDEO", "VIDEO001"), ("AUDIO", "AUDIO001"), ("METADATA", "META001")}
    state = call(client, "GetRecordingJobState", JobToken=job)
    assert state.State == "Idle"

    # The Receiver service is someone else's: configure the receiver through the engine.
    assert nvr.daemon.ingest is not None
    wanted = ReceiverConfig(mode=AUTO_CONNECT, media_uri=nvr.demo_uri)
    nvr.loop.call(nvr.daemon.ingest.receivers.configure(receiver, wanted))
    call(client, "SetRecordingJobMode", JobToken=job, Mode="Active")
    wait_for(lambda: call(client, "GetRecordingJobState", JobToken=job).State == "Active")
    state = call(client, "GetRecordingJobState", JobToken=job)
    assert state.RecordingToken == token
    assert {t.State for t in state.Sources[0].Tracks.Track} == {"Active"}

    options = call(client, "GetRecordingOptions", RecordingToken=token)
    assert options.Track.SpareVideo > 0 and options.Job.Spare > 0
    assert {"tns1:RecordingConfig/CreateRecording", "tns1:RecordingConfig/CreateTrack"} <= set(
        nvr.topics()
    )
    assert "tns1:RecordingConfig/JobState" in nvr.topics()


def _job(client: OnvifClient, recording: str, receiver: str, priority: int, mode: str) -> str:
    answer = call(
        client,
        "CreateRecordingJob",
        JobConfiguration={
            "RecordingToken": recording,
            "Mode": mode,
            "Priority": priority,
            "Source": [{"SourceToken": {"Token": receiver}}],
        },
    )
    return str(answer.JobToken)


def test_priority_example_j1_j2_j3(nvr: Nvr) -> None:
    """recording.md §4.2: J1(2, Active); J2(4, Idle); J3(3, Active) wins; delete J3 → J1."""
    client = nvr.client()
    token = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
    receiver = "demo-receiver"

    def states() -> list[str]:
        return [call(client, "GetRecordingJobState", JobToken=j).State for j in jobs]

    jobs = [_job(client, token, receiver, 2, "Active")]
    wait_for(lambda: states() == ["Active"])
    jobs.append(_job(client, token, receiver, 4, "Idle"))
    wait_for(lambda: states() == ["Active", "Idle"])
    jobs.append(_job(client, token, receiver, 3, "Active"))
    wait_for(lambda: states() == ["Idle", "Idle", "Active"])
    call(client, "DeleteRecordingJob", JobToken=jobs.pop())
    wait_for(lambda: states() == ["Active", "Idle"])
    listed = {j.JobToken: j.JobConfiguration.Priority for j in call(client, "GetRecordingJobs")}
    assert listed[jobs[0]] == 2 and listed[jobs[1]] == 4


def test_tracks_configuration_and_events(nvr: Nvr) -> None:
    client = nvr.client()
    token = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
    track = call(
        client,
        "CreateTrack",
        RecordingToken=token,
        TrackConfiguration={"TrackType": "Video", "Description": "second stream"},
    )
    assert track == "VIDEO002"
    call(
        client,
        "SetTrackConfiguration",
        RecordingToken=token,
        TrackToken=track,
        TrackConfiguration={"TrackType": "Audio", "Description": "changed"},
    )
    got = call(client, "GetTrackConfiguration", RecordingToken=token, TrackToken=track)
    assert (got.TrackType, got.Description) == ("Video", "changed")  # TrackType immutable
    changed = dict(RECORDING, Content="new content", MaximumRetentionTime="PT0S")
    call(client, "SetRecordingConfiguration", RecordingToken=token, RecordingConfiguration=changed)
    assert call(client, "GetRecordingConfiguration", RecordingToken=token).Content == "new content"
    call(client, "DeleteTrack", RecordingToken=token, TrackToken=track)
    call(client, "DeleteRecording", RecordingToken=token)
    assert token not in {i.RecordingToken for i in call(client, "GetRecordings")}
    topics = set(nvr.topics())
    for name in (
        "TrackConfiguration",
        "RecordingConfiguration",
        "DeleteTrack",
        "DeleteRecording",
        "CreateTrack",
    ):
        assert f"tns1:RecordingConfig/{name}" in topics
    config_event = next(e for e in nvr.events if e.topic.endswith("/TrackConfiguration"))
    element = config_event.elements[0][1]()
    assert element.findtext("{http://www.onvif.org/ver10/schema}Description") == "changed"


def test_faults(nvr: Nvr) -> None:
    client = nvr.client()
    token = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
    no_rec = ["Sender", "InvalidArgVal", "NoRecording"]
    no_job = ["Sender", "InvalidArgVal", "NoRecordingJob"]
    bad = ["Sender", "InvalidArgVal", "BadConfiguration"]
    assert fault_of(client, "GetRecordingConfiguration", RecordingToken="nope") == no_rec
    assert fault_of(client, "DeleteRecording", RecordingToken="nope") == no_rec
    assert fault_of(client, "GetRecordingOptions", RecordingToken="nope") == no_rec
    assert (
        fault_of(
            client,
            "SetRecordingConfiguration",
            RecordingToken="x",
            RecordingConfiguration=RECORDING,
        )
        == no_rec
    )
    track = {"TrackType": "Video", "Description": ""}
    assert (
        fault_of(client, "CreateTrack", RecordingToken="nope", TrackConfiguration=track) == no_rec
    )
    assert (
        fault_of(
            client,
            "CreateTrack",
            RecordingToken=token,
            TrackConfiguration=dict(track, TrackType="Extended"),
        )
        == bad
    )
    assert (
        fault_of(client, "GetTrackConfiguration", RecordingToken="nope", TrackToken="V") == no_rec
    )
    no_track = ["Sender", "InvalidArgVal", "NoTrack"]
    assert (
        fault_of(client, "GetTrackConfiguration", RecordingToken=token, TrackToken="V") == no_track
    )
    assert fault_of(client, "DeleteTrack", RecordingToken=token, TrackToken="V") == no_track
    assert (
        fault_of(
            client,
            "SetTrackConfiguration",
            RecordingToken=token,
            TrackToken="V",
            TrackConfiguration=track,
        )
        == no_track
    )
    job = {
        "RecordingToken": "nope",
        "Mode": "Idle",
        "Priority": 1,
        "Source": [{"AutoCreateReceiver": True}],
    }
    assert fault_of(client, "CreateRecordingJob", JobConfiguration=job) == no_rec
    assert (
        fault_of(
            client,
            "CreateRecordingJob",
            JobConfiguration=dict(job, RecordingToken=token, Source=[]),
        )
        == bad
    )
    for op in ("DeleteRecordingJob", "GetRecordingJobConfiguration", "GetRecordingJobState"):
        assert fault_of(client, op, JobToken="nope") == no_job
    assert fault_of(client, "SetRecordingJobMode", JobToken="nope", Mode="Active") == no_job
    created = call(client, "CreateRecordingJob", JobConfiguration=dict(job, RecordingToken=token))
    assert fault_of(client, "SetRecordingJobMode", JobToken=created.JobToken, Mode="Busy") == [
        "Sender",
        "InvalidArgVal",
        "BadMode",
    ]
    other = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
    moved = dict(job, RecordingToken=other)
    assert (
        fault_of(
            client,
            "SetRecordingJobConfiguration",
            JobToken=created.JobToken,
            JobConfiguration=moved,
        )
        == bad
    )
    assert (
        fault_of(client, "SetRecordingJobConfiguration", JobToken="nope", JobConfiguration=moved)
        == no_job
    )
    for op in ("StopExportRecordedData", "GetExportRecordedDataState"):
        assert fault_of(client, op, OperationToken="nope") == bad
    export = {
        "SearchScope": {"IncludedRecordings": [token]},
        "FileFormat": "MP4",
        "StorageDestination": {"StorageToken": "local"},
    }
    assert fault_of(client, "ExportRecordedData", **export) == bad
    unsafe = dict(export, FileFormat="ONVIF", StorageDestination={"StorageToken": ".."})
    assert fault_of(client, "ExportRecordedData", **unsafe) == bad
    missing = dict(export, FileFormat="ONVIF", SearchScope={"IncludedRecordings": ["nope"]})
    assert fault_of(client, "ExportRecordedData", **missing) == no_rec
    not_supported = ["Receiver", "ActionNotSupported"]
    assert fault_of(client, "StopExportRecordedSegments", OperationToken="x") == not_supported
    # access classes: a User may read but not change
    viewer = nvr.client(USER)
    call(viewer, "GetRecordings")
    assert fault_of(viewer, "DeleteRecording", RecordingToken=token)[:2] == [
        "Sender",
        "NotAuthorized",
    ]


def test_configuration_survives_a_restart(loop: LoopThread, engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(loop, engine, data) as first:
        client = first.client()
        token = call(client, "CreateRecording", RecordingConfiguration=RECORDING)
        call(
            client,
            "CreateTrack",
            RecordingToken=token,
            TrackConfiguration={"TrackType": "Metadata", "Description": "extra"},
        )
        job = _job(client, token, "demo-receiver", 5, "Idle")
    with running(loop, engine, data) as second:
        client = second.client()
        items = {i.RecordingToken: i for i in call(client, "GetRecordings")}
        assert items[token].Configuration.Content == "entrance camera"
        assert {t.TrackToken for t in items[token].Tracks.Track} == {
            "VIDEO001",
            "AUDIO001",
            "META001",
            "META002",
        }
        config = call(client, "GetRecordingJobConfiguration", JobToken=job)
        assert (config.RecordingToken, config.Priority, config.Mode) == (token, 5, "Idle")
        assert DEMO_RECORDING in items
