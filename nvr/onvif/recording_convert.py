"""Between the Recording service's spyne models and the engine's values (store, job engine).

Requests become plain values here (refusing what we cannot honour with BadConfiguration);
answers are built from the engine's snapshots. Over-long descriptive strings are truncated to
what the catalog keeps, as recording.md §3 allows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from nvr.ingest.job_config import (
    RECEIVER_SOURCE,
    JobConfiguration,
    JobSource,
    JobState,
    JobTrack,
)
from nvr.onvif import recording_types as rt
from nvr.onvif.recording_backend import bad_configuration
from nvr.store.types import RecordingInfo, TrackInfo

# Recording fields of the catalog and the most characters each column keeps.
_LIMITS: Final = {
    "source_id": 1024,
    "source_name": 256,
    "source_location": 1024,
    "source_description": 1024,
    "source_address": 1024,
    "content": 1024,
}
DESCRIPTION_LIMIT: Final = 1024
_US: Final = 1_000_000


# ---- recordings and tracks ---------------------------------------------------------------------


def recording_fields(config: rt.RecordingConfiguration) -> dict[str, Any]:
    """The catalog fields of a tt:RecordingConfiguration (CreateRecording, Set...)."""
    if config.Target is not None:
        raise bad_configuration("recording to an external Target is not supported")
    retention = config.MaximumRetentionTime
    if retention < dt.timedelta(0):
        raise bad_configuration("MaximumRetentionTime is negative")
    source = config.Source
    values = {
        "source_id": source.SourceId,
        "source_name": source.Name,
        "source_location": source.Location,
        "source_description": source.Description,
        "source_address": source.Address,
        "content": config.Content,
    }
    fields: dict[str, Any] = {k: (v or "")[: _LIMITS[k]] for k, v in values.items()}
    fields["max_retention_us"] = retention // dt.timedelta(microseconds=1)
    return fields


def recording_configuration(info: RecordingInfo) -> rt.RecordingConfiguration:
    return rt.RecordingConfiguration(
        Source=rt.RecordingSourceInformation(
            SourceId=info.source_id,
            Name=info.source_name,
            Location=info.source_location,
            Description=info.source_description,
            Address=info.source_address,
        ),
        Content=info.content,
        MaximumRetentionTime=dt.timedelta(microseconds=info.max_retention_us),
    )


def track_configuration(info: TrackInfo) -> rt.TrackConfiguration:
    return rt.TrackConfiguration(TrackType=info.kind, Description=info.description)


def recording_item(info: RecordingInfo) -> rt.GetRecordingsResponseItem:
    tracks = [
        rt.GetTracksResponseItem(TrackToken=t.token, Configuration=track_configuration(t))
        for t in info.tracks
    ]
    return rt.GetRecordingsResponseItem(
        RecordingToken=info.token,
        Configuration=recording_configuration(info),
        Tracks=rt.GetTracksResponseList(Track=tracks),
    )


def description(config: rt.TrackConfiguration) -> str:
    return (config.Description or "")[:DESCRIPTION_LIMIT]


# ---- recording jobs ----------------------------------------------------------------------------


def _job_source(source: rt.RecordingJobSource) -> JobSource:
    reference = source.SourceToken
    tracks = tuple(JobTrack(t.SourceTag, t.Destination) for t in source.Tracks or ())
    return JobSource(
        token=reference.Token if reference is not None else None,
        type=(reference.Type if reference is not None else None) or RECEIVER_SOURCE,
        tracks=tracks,
        auto_create_receiver=bool(source.AutoCreateReceiver),
    )


def _event_filter(spec: rt.RecordingEventFilter | None) -> dict[str, Any] | None:
    """The JSON form JobConfiguration.event_filter keeps (durations as xs:duration text)."""
    if spec is None:
        return None
    return {
        "Filter": [{"Topic": f.Topic, "Source": f.Source} for f in spec.Filter or ()],
        "Before": _duration_text(spec.Before),
        "After": _duration_text(spec.After),
    }


def _duration_text(value: dt.timedelta | None) -> str | None:
    if value is None:
        return None
    return f"PT{value.total_seconds():g}S"


def job_configuration(config: rt.RecordingJobConfiguration) -> JobConfiguration:
    """A requested tt:RecordingJobConfiguration as the job engine's value."""
    return JobConfiguration(
        recording_token=config.RecordingToken,
        mode=config.Mode,
        priority=config.Priority,
        sources=tuple(_job_source(s) for s in config.Source or ()),
        schedule_token=config.ScheduleToken,
        event_filter=_event_filter(config.EventFilter),
    )


def _seconds(text: str | None) -> dt.timedelta | None:
    if text is None:
        return None
    return dt.timedelta(seconds=float(text.removeprefix("PT").removesuffix("S")))


def job_configuration_model(config: JobConfiguration) -> rt.RecordingJobConfiguration:
    """The effective configuration as the device answers it (never AutoCreateReceiver)."""
    spec = config.event_filter
    event_filter = None
    if spec:
        event_filter = rt.RecordingEventFilter(
            Filter=[
                rt.RecordingEventFilterItem(Topic=f["Topic"], Source=f.get("Source"))
                for f in spec.get("Filter", ())
            ],
            Before=_seconds(spec.get("Before")),
            After=_seconds(spec.get("After")),
        )
    return rt.RecordingJobConfiguration(
        RecordingToken=config.recording_token,
        Mode=config.mode,
        Priority=config.priority,
        Source=[
            rt.RecordingJobSource(
                SourceToken=rt.SourceReference(Token=s.token, Type=s.type) if s.token else None,
                Tracks=[
                    rt.RecordingJobTrack(SourceTag=t.source_tag, Destination=t.destination)
                    for t in s.tracks
                ],
            )
            for s in config.sources
        ],
        EventFilter=event_filter,
        ScheduleToken=config.schedule_token,
    )


def job_state_model(state: JobState) -> rt.RecordingJobStateInformation:
    return rt.RecordingJobStateInformation(
        RecordingToken=state.recording_token,
        State=state.state,
        Sources=[
            rt.RecordingJobStateSource(
                SourceToken=rt.SourceReference(Token=s.token, Type=s.type),
                State=s.state,
                Tracks=rt.RecordingJobStateTracks(
                    Track=[
                        rt.RecordingJobStateTrack(
                            SourceTag=t.source_tag,
                            Destination=t.destination,
                            Error=t.error,
                            State=t.state,
                        )
                        for t in s.tracks
                    ]
                ),
            )
            for s in state.sources
        ],
    )
