"""The ONVIF Recording Control service (recording.wsdl) at ``/onvif/recording_service``.

Handlers are thin: recordings and tracks go to the store's catalog, jobs to the job engine
(its coroutines run on the daemon's loop, see :mod:`nvr.onvif.recording_backend`), exports to
:mod:`nvr.onvif.recording_export`; engine errors become the faults of recording.md §4.1 in
one place (``engine_faults``). Recording and track changes publish the
``tns1:RecordingConfig/*`` events here; the job engine publishes the job events itself.
Segment export and OverrideSegmentDuration are not offered (generic ActionNotSupported).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Final

from spyne import DateTime, Float, Unicode, rpc

from nvr.events import Items, delete_track_data
from nvr.ingest.job_config import DEFAULT_MAX_JOBS
from nvr.onvif import recording_convert as convert
from nvr.onvif import recording_types as rt
from nvr.onvif import types_tt as tt
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.endpoints import BackendEndpoint, serve_endpoint
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TRC
from nvr.onvif.operations import compose
from nvr.onvif.recording_backend import (
    RecordingBackend,
    backend_slot,
    bad_configuration,
    current_backend,
    engine_faults,
)
from nvr.onvif.recording_export import (
    EXPORT_FORMAT,
    ExportOperations,
    destination_dir,
    scope_recordings,
    unix_us,
)
from nvr.onvif.recording_policy import RECORDING_ACCESS, RECORDING_OPERATIONS
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.request import soap_request
from nvr.onvif.soap import SoapService
from nvr.onvif.types_tt import repeated, required
from nvr.store.types import Deleted, RecordingInfo
from nvr.store.types import TrackInfo as StoreTrack

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.onvif.context import OnvifContext

RECORDING_PATH: Final = "/onvif/recording_service"
RECORDING_VERSION: Final = (26, 6)
ENCODINGS: Final = "H264 H265 JPEG G711 AAC"
MAX_RECORDINGS: Final = 64
MAX_TRACKS: Final = 16
"""Tracks per recording, whatever their type (GetRecordingOptions SpareTotal)."""
MAX_RATE_KBPS: Final = 16384.0
MAX_TOTAL_RATE_KBPS: Final = 262144.0
TRACK_KINDS: Final = ("Video", "Audio", "Metadata")
EXPORT_WAIT: Final = 600.0
"""Seconds DeleteRecording waits for running exports of the recording."""

_CREATE_RECORDING: Final = "tns1:RecordingConfig/CreateRecording"
_CREATE_TRACK: Final = "tns1:RecordingConfig/CreateTrack"
_DELETE_RECORDING: Final = "tns1:RecordingConfig/DeleteRecording"
_DELETE_TRACK: Final = "tns1:RecordingConfig/DeleteTrack"
_RECORDING_CONFIGURATION: Final = "tns1:RecordingConfig/RecordingConfiguration"
_TRACK_CONFIGURATION: Final = "tns1:RecordingConfig/TrackConfiguration"


def capabilities() -> rt.Capabilities:
    return rt.Capabilities(
        DynamicRecordings=True,
        DynamicTracks=True,
        Encoding=ENCODINGS,
        MaxRate=MAX_RATE_KBPS,
        MaxTotalRate=MAX_TOTAL_RATE_KBPS,
        MaxRecordings=float(MAX_RECORDINGS),
        MaxRecordingJobs=DEFAULT_MAX_JOBS,
        Options=True,
        MetadataRecording=True,
        SupportedExportFileFormats=EXPORT_FORMAT,
    )


# ---- events ------------------------------------------------------------------------------------


def _rec(token: str) -> Items:
    return (("RecordingToken", token),)


def _track(recording: str, track: str) -> Items:
    return (("RecordingToken", recording), ("TrackToken", track))


def _element(model: Any, kind: type) -> Callable[[], Any]:
    """A lazily built ``tt:`` ElementItem named Configuration."""
    return partial(model_element, model, kind, "Configuration")


def _publish_deleted_data(backend: RecordingBackend, deleted: Deleted) -> None:
    """DeleteTrackData for every interval of data a deletion removed."""
    for track in deleted.tracks:
        for interval in track.intervals:
            backend.bus.publish(
                delete_track_data(
                    track.recording_token, track.token, interval.start_us, interval.end_us
                )
            )


# ---- lookups -----------------------------------------------------------------------------------


def _recording(token: str) -> RecordingInfo:
    with engine_faults():
        return current_backend().store.get_recording(token)


def _store_track(recording: str, track: str) -> StoreTrack:
    with engine_faults():
        return current_backend().store.get_track(recording, track)


def _spare_tracks(info: RecordingInfo) -> int:
    return max(0, MAX_TRACKS - len(info.tracks))


def _wait_for_exports(backend: RecordingBackend, recording: str) -> None:
    """recording.md §4.2: a running export of the recording finishes before it is deleted."""
    exports = getattr(backend.daemon, "exports", None)
    if exports is None:
        return
    for token in exports.active_for(recording):
        try:
            exports.wait(token, EXPORT_WAIT)
        except TimeoutError:
            raise OnvifFault.receiver(
                "Action", "CannotDelete", "an export of the recording is still running"
            ) from None


# ---- the service -------------------------------------------------------------------------------

_Token = required(Unicode)


class RecordingMethods:
    """Recordings and tracks."""

    @rpc(_returns=required(rt.Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> rt.Capabilities:
        return capabilities()

    @rpc(
        required(rt.RecordingConfiguration),
        _returns=required(Unicode),
        _out_variable_name="RecordingToken",
    )
    def CreateRecording(ctx: Any, RecordingConfiguration: rt.RecordingConfiguration) -> str:
        backend = current_backend()
        fields = convert.recording_fields(RecordingConfiguration)
        store = backend.store
        if len(store.recordings()) >= MAX_RECORDINGS:
            raise OnvifFault.receiver(
                "Action", "MaxRecordings", f"at most {MAX_RECORDINGS} recordings"
            )
        with engine_faults():
            info = store.create_recording(**fields)
        backend.publish(_CREATE_RECORDING, _rec(info.token))
        for track in info.tracks:
            backend.publish(_CREATE_TRACK, _track(info.token, track.token))
        return info.token

    @rpc(_Token)
    def DeleteRecording(ctx: Any, RecordingToken: str) -> None:
        backend = current_backend()
        _recording(RecordingToken)
        _wait_for_exports(backend, RecordingToken)
        deleted = backend.call(backend.jobs.delete_recording(RecordingToken))
        _publish_deleted_data(backend, deleted)
        backend.publish(_DELETE_RECORDING, _rec(RecordingToken))

    @rpc(
        _returns=repeated(rt.GetRecordingsResponseItem),
        _out_variable_name="RecordingItem",
    )
    def GetRecordings(ctx: Any) -> list[rt.GetRecordingsResponseItem]:
        return [convert.recording_item(r) for r in current_backend().store.recordings()]

    @rpc(_Token, required(rt.RecordingConfiguration))
    def SetRecordingConfiguration(
        ctx: Any, RecordingToken: str, RecordingConfiguration: rt.RecordingConfiguration
    ) -> None:
        backend = current_backend()
        _recording(RecordingToken)
        fields = convert.recording_fields(RecordingConfiguration)
        with engine_faults():
            info = backend.store.catalog.update_recording(RecordingToken, **fields)
        model = convert.recording_configuration(info)
        backend.publish(
            _RECORDING_CONFIGURATION,
            _rec(RecordingToken),
            elements=(("Configuration", _element(model, rt.RecordingConfiguration)),),
        )

    @rpc(
        _Token,
        _returns=required(rt.RecordingConfiguration),
        _out_variable_name="RecordingConfiguration",
    )
    def GetRecordingConfiguration(ctx: Any, RecordingToken: str) -> rt.RecordingConfiguration:
        return convert.recording_configuration(_recording(RecordingToken))

    @rpc(_Token, _returns=required(rt.RecordingOptions), _out_variable_name="Options")
    def GetRecordingOptions(ctx: Any, RecordingToken: str) -> rt.RecordingOptions:
        info = _recording(RecordingToken)
        spare = _spare_tracks(info)
        return rt.RecordingOptions(
            Job=rt.JobOptions(Spare=current_backend().jobs.spare_jobs()),
            Track=rt.TrackOptions(
                SpareTotal=spare, SpareVideo=spare, SpareAudio=spare, SpareMetadata=spare
            ),
        )

    @rpc(
        _Token,
        required(rt.TrackConfiguration),
        _returns=required(Unicode),
        _out_variable_name="TrackToken",
    )
    def CreateTrack(
        ctx: Any, RecordingToken: str, TrackConfiguration: rt.TrackConfiguration
    ) -> str:
        backend = current_backend()
        info = _recording(RecordingToken)
        kind = TrackConfiguration.TrackType
        if kind not in TRACK_KINDS:
            raise bad_configuration(f"{kind} tracks cannot be recorded")
        if not _spare_tracks(info):
            raise OnvifFault.receiver("Action", "MaxTracks", f"at most {MAX_TRACKS} tracks")
        with engine_faults():
            track = backend.store.create_track(
                RecordingToken, kind, description=convert.description(TrackConfiguration)
            )
        backend.publish(_CREATE_TRACK, _track(RecordingToken, track.token))
        return track.token

    @rpc(_Token, _Token)
    def DeleteTrack(ctx: Any, RecordingToken: str, TrackToken: str) -> None:
        backend = current_backend()
        _store_track(RecordingToken, TrackToken)
        deleted = backend.call(backend.jobs.delete_track(RecordingToken, TrackToken))
        _publish_deleted_data(backend, deleted)
        backend.publish(_DELETE_TRACK, _track(RecordingToken, TrackToken))

    @rpc(
        _Token,
        _Token,
        _returns=required(rt.TrackConfiguration),
        _out_variable_name="TrackConfiguration",
    )
    def GetTrackConfiguration(
        ctx: Any, RecordingToken: str, TrackToken: str
    ) -> rt.TrackConfiguration:
        return convert.track_configuration(_store_track(RecordingToken, TrackToken))

    @rpc(_Token, _Token, required(rt.TrackConfiguration))
    def SetTrackConfiguration(
        ctx: Any, RecordingToken: str, TrackToken: str, TrackConfiguration: rt.TrackConfiguration
    ) -> None:
        """TrackType is immutable: a different one in the request is ignored (§3)."""
        backend = current_backend()
        _store_track(RecordingToken, TrackToken)
        with engine_faults():
            track = backend.store.catalog.update_track(
                RecordingToken, TrackToken, convert.description(TrackConfiguration)
            )
        model = convert.track_configuration(track)
        backend.publish(
            _TRACK_CONFIGURATION,
            _track(RecordingToken, TrackToken),
            elements=(("Configuration", _element(model, rt.TrackConfiguration)),),
        )


class RecordingJobMethods:
    """Recording jobs: the job engine does the work and publishes the job events."""

    @rpc(
        required(rt.RecordingJobConfiguration),
        _returns=(required(Unicode), required(rt.RecordingJobConfiguration)),
        _out_variable_names=("JobToken", "JobConfiguration"),
    )
    def CreateRecordingJob(
        ctx: Any, JobConfiguration: rt.RecordingJobConfiguration
    ) -> tuple[str, rt.RecordingJobConfiguration]:
        backend = current_backend()
        config = convert.job_configuration(JobConfiguration)
        token, effective = backend.call(backend.jobs.create(config))
        return token, convert.job_configuration_model(effective)

    @rpc(_Token)
    def DeleteRecordingJob(ctx: Any, JobToken: str) -> None:
        backend = current_backend()
        backend.call(backend.jobs.delete(JobToken))

    @rpc(_returns=repeated(rt.GetRecordingJobsResponseItem), _out_variable_name="JobItem")
    def GetRecordingJobs(ctx: Any) -> list[rt.GetRecordingJobsResponseItem]:
        return [
            rt.GetRecordingJobsResponseItem(
                JobToken=token, JobConfiguration=convert.job_configuration_model(config)
            )
            for token, config in current_backend().jobs.jobs()
        ]

    @rpc(
        _Token,
        required(rt.RecordingJobConfiguration),
        _returns=required(rt.RecordingJobConfiguration),
        _out_variable_name="JobConfiguration",
    )
    def SetRecordingJobConfiguration(
        ctx: Any, JobToken: str, JobConfiguration: rt.RecordingJobConfiguration
    ) -> rt.RecordingJobConfiguration:
        backend = current_backend()
        config = convert.job_configuration(JobConfiguration)
        effective = backend.call(backend.jobs.set_configuration(JobToken, config))
        return convert.job_configuration_model(effective)

    @rpc(
        _Token,
        _returns=required(rt.RecordingJobConfiguration),
        _out_variable_name="JobConfiguration",
    )
    def GetRecordingJobConfiguration(ctx: Any, JobToken: str) -> rt.RecordingJobConfiguration:
        with engine_faults():
            config = current_backend().jobs.get(JobToken)
        return convert.job_configuration_model(config)

    @rpc(_Token, required(Unicode))
    def SetRecordingJobMode(ctx: Any, JobToken: str, Mode: str) -> None:
        backend = current_backend()
        backend.call(backend.jobs.set_mode(JobToken, Mode))

    @rpc(
        _Token,
        _returns=required(rt.RecordingJobStateInformation),
        _out_variable_name="State",
    )
    def GetRecordingJobState(ctx: Any, JobToken: str) -> rt.RecordingJobStateInformation:
        with engine_faults():
            state = current_backend().jobs.state(JobToken)
        return convert.job_state_model(state)


_ExportState: Final = dict(
    _returns=(required(Float), required(rt.ArrayOfFileProgress)),
    _out_variable_names=("Progress", "FileProgressStatus"),
)


def _state_answer(status: Any) -> tuple[float, rt.ArrayOfFileProgress]:
    return status.progress, rt.ArrayOfFileProgress(FileProgress=list(status.files))


class ExportMethods:
    """ExportRecordedData and its state (export.md Part A)."""

    @rpc(
        DateTime,
        DateTime,
        required(rt.SearchScope),
        required(Unicode),
        required(rt.StorageReferencePath),
        _returns=(required(Unicode), repeated(Unicode)),
        _out_variable_names=("OperationToken", "FileNames"),
    )
    def ExportRecordedData(
        ctx: Any,
        StartPoint: dt.datetime | None,
        EndPoint: dt.datetime | None,
        SearchScope: rt.SearchScope,
        FileFormat: str,
        StorageDestination: rt.StorageReferencePath,
    ) -> tuple[str, list[str]]:
        backend = current_backend()
        if FileFormat != EXPORT_FORMAT:
            raise bad_configuration(f"FileFormat {FileFormat[:32]!r} is not supported")
        start, end = unix_us(StartPoint), unix_us(EndPoint)
        if start is not None and end is not None and end <= start:
            raise bad_configuration("EndPoint is not after StartPoint")
        directory = destination_dir(backend.config.data_dir, StorageDestination)
        with engine_faults():
            recordings = scope_recordings(backend.store, SearchScope)
        if not recordings:
            raise bad_configuration("the SearchScope names no recording")
        operator = soap_request(ctx).principal.name or ""
        return _operations(backend).start(recordings, start, end, directory, operator)

    @rpc(_Token, **_ExportState)
    def StopExportRecordedData(
        ctx: Any, OperationToken: str
    ) -> tuple[float, rt.ArrayOfFileProgress]:
        with engine_faults():
            return _state_answer(_operations(current_backend()).stop(OperationToken))

    @rpc(_Token, **_ExportState)
    def GetExportRecordedDataState(
        ctx: Any, OperationToken: str
    ) -> tuple[float, rt.ArrayOfFileProgress]:
        with engine_faults():
            return _state_answer(_operations(current_backend()).status(OperationToken))


def _operations(backend: RecordingBackend) -> ExportOperations:
    """The export operations of the daemon's current export manager (made on first use)."""
    manager = backend.exports
    operations = backend.export_operations
    if operations is None or operations.manager is not manager:
        operations = backend.export_operations = ExportOperations(manager, backend.bus)
    return operations


@cache
def recording_service() -> SoapService:
    """The recording service definition (built once per process: spyne apps are costly)."""
    methods = [RecordingMethods, RecordingJobMethods, ExportMethods]
    return SoapService(
        name="RecordingService",
        namespace=TRC,
        services=(compose("RecordingService", methods, RECORDING_OPERATIONS),),
        access=RECORDING_ACCESS,
    )


def recording_entry() -> ServiceEntry:
    return ServiceEntry(
        namespace=TRC,
        path=RECORDING_PATH,
        version=RECORDING_VERSION,
        capabilities=lambda: model_element(capabilities(), rt.Capabilities, "Capabilities"),
        legacy_slot="Recording",
        legacy=lambda xaddr: tt.RecordingCapabilities(
            XAddr=xaddr,
            ReceiverSource=True,
            MediaProfileSource=False,
            DynamicRecordings=True,
            DynamicTracks=True,
            MaxStringLength=convert.DESCRIPTION_LIMIT,
        ),
    )


def mount_recording(app: FastAPI, context: OnvifContext, daemon: Any) -> RecordingBackend:
    """Serve the Recording service for ``daemon`` (its store, ingest engine and exports are
    looked up per call: they start after the app is built)."""
    backend = RecordingBackend(daemon, context.config)
    try:
        backend.loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside the loop (tests): the first request tells us
        pass
    # records the loop requests arrive on (the daemon's) for the job engine
    endpoint = BackendEndpoint(
        recording_service(), context, backend, backend_slot, records_loop=True
    )
    serve_endpoint(app, context, RECORDING_PATH, endpoint, recording_entry())
    return backend


__all__ = ["RECORDING_PATH", "RecordingBackend", "mount_recording", "recording_service"]
