"""Recording job configuration values, their JSON form, states and errors (recording.md §3,
§4). Pure values: nothing here records, connects or touches the database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from nvr.ingest.source_tags import GENERIC_TAGS
from nvr.store.types import RecordingInfo

__all__ = [
    "ACTIVE",
    "DEFAULT_MAX_JOBS",
    "ERROR",
    "IDLE",
    "MODES",
    "PARTIALLY_ACTIVE",
    "RECEIVER_SOURCE",
    "TOPIC_JOB_CONFIGURATION",
    "TOPIC_JOB_STATE",
    "BadConfiguration",
    "BadMode",
    "JobConfiguration",
    "JobSource",
    "JobState",
    "JobTrack",
    "MaxReceivers",
    "MaxRecordingJobs",
    "NoRecordingJob",
    "RecordingJobError",
    "SourceState",
    "TrackState",
    "aggregate",
    "default_tracks",
    "sources_from_json",
    "sources_to_json",
]

IDLE: Final = "Idle"
ACTIVE: Final = "Active"
ERROR: Final = "Error"
PARTIALLY_ACTIVE: Final = "PartiallyActive"
MODES: Final = (IDLE, ACTIVE)
RECEIVER_SOURCE: Final = "http://www.onvif.org/ver10/schema/Receiver"
TOPIC_JOB_STATE: Final = "tns1:RecordingConfig/JobState"
TOPIC_JOB_CONFIGURATION: Final = "tns1:RecordingConfig/RecordingJobConfiguration"
DEFAULT_MAX_JOBS: Final = 128

_KIND_TAGS = {kind: tag for tag, kind in GENERIC_TAGS.items()}
"""tt:TrackType -> the generic SourceTag of the default mapping (Video -> VIDEO)."""


# --- errors (the SOAP layer maps each to its ONVIF fault) -------------------------------------


class RecordingJobError(Exception):
    """Base of the job engine's errors (NoRecording comes from the store)."""


class NoRecordingJob(RecordingJobError, LookupError):
    """No job has this token (ter:InvalidArgVal/ter:NoRecordingJob)."""


class BadConfiguration(RecordingJobError, ValueError):
    """The job configuration is invalid (ter:InvalidArgVal/ter:BadConfiguration)."""


class BadMode(RecordingJobError, ValueError):
    """SetRecordingJobMode with a mode other than Idle/Active (ter:InvalidArgVal/ter:BadMode)."""


class MaxRecordingJobs(RecordingJobError):
    """No more jobs can be created (ter:Action/ter:MaxRecordingJobs)."""


class MaxReceivers(RecordingJobError):
    """AutoCreateReceiver failed: no receiver left (ter:Action/ter:MaxReceivers)."""


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobTrack:
    """tt:RecordingJobTrack."""

    source_tag: str
    destination: str


@dataclass(frozen=True, slots=True)
class JobSource:
    """tt:RecordingJobSource. ``auto_create_receiver`` is request-only: effective
    configurations never carry it (the created receiver's token is in ``token``)."""

    token: str | None = None
    type: str = RECEIVER_SOURCE
    tracks: tuple[JobTrack, ...] = ()
    auto_create_receiver: bool = False


@dataclass(frozen=True, slots=True)
class JobConfiguration:
    """tt:RecordingJobConfiguration. ``event_filter`` is tt:RecordingEventFilter as JSON
    values, ``{"Filter": [{"Topic": str, "Source": str | None}], "Before": "PT5S" | None,
    "After": ... }``: stored and echoed; event-triggered recording is not implemented yet."""

    recording_token: str
    mode: str = IDLE
    priority: int = 0
    sources: tuple[JobSource, ...] = ()
    schedule_token: str | None = None
    event_filter: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TrackState:
    """tt:RecordingJobStateTrack."""

    source_tag: str
    destination: str
    state: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    """tt:RecordingJobStateSource."""

    token: str
    type: str
    state: str
    tracks: tuple[TrackState, ...]


@dataclass(frozen=True, slots=True)
class JobState:
    """tt:RecordingJobStateInformation."""

    recording_token: str
    state: str
    sources: tuple[SourceState, ...]

    @property
    def mixed(self) -> bool:
        """Track states differ: the JobState event must then carry the Information."""
        return len({t.state for s in self.sources for t in s.tracks}) > 1


def aggregate(states: Iterable[str]) -> str:
    """The spec's aggregation: Error wins, then all Active / all Idle, else PartiallyActive."""
    found = set(states)
    if ERROR in found:
        return ERROR
    if found == {ACTIVE}:
        return ACTIVE
    if found <= {IDLE}:
        return IDLE
    return PARTIALLY_ACTIVE


def sources_to_json(sources: Iterable[JobSource]) -> list[dict[str, Any]]:
    """The ``recording_jobs.sources`` column form (effective sources: no AutoCreateReceiver)."""
    return [
        {
            "token": s.token,
            "type": s.type,
            "tracks": [
                {"source_tag": t.source_tag, "destination": t.destination} for t in s.tracks
            ],
        }
        for s in sources
    ]


def sources_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[JobSource, ...]:
    """Inverse of :func:`sources_to_json`."""
    return tuple(
        JobSource(
            token=item.get("token"),
            type=item.get("type") or RECEIVER_SOURCE,
            tracks=tuple(JobTrack(t["source_tag"], t["destination"]) for t in item["tracks"]),
        )
        for item in items
    )


def default_tracks(recording: RecordingInfo, used: set[str]) -> tuple[JobTrack, ...]:
    """recording.md §4.2 rule 4, a Source without Tracks: each generic SourceTag (VIDEO,
    AUDIO, METADATA) goes to the first track of that type no other source of the job uses,
    so two such sources fill VIDEO001 and VIDEO002 instead of recording one stream twice."""
    tracks = []
    for kind, tag in _KIND_TAGS.items():
        free = next((t for t in recording.tracks if t.kind == kind and t.token not in used), None)
        if free is not None:
            used.add(free.token)
            tracks.append(JobTrack(tag, free.token))
    return tuple(tracks)
