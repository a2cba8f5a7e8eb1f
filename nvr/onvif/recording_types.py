"""spyne models of the Recording service: ``trc:`` capabilities/options and the ``tt:`` types.

Names, order and occurrence follow recording.wsdl and onvif.xsd (26.06) exactly (spyne writes
children in declaration order, in the namespace of their type). Lists typed ``tt:StringList``
or ``tt:StringAttrList`` are space-separated strings on the wire, so they are modelled as
strings. Parts we never act on but must refuse when sent (``Target`` of a recording) are read
as raw XML; the other extension points are left out. ``SearchScope`` and ``SourceReference``
are the Search service's models, ``RecordingSourceInformation`` and ``TrackType`` are shared
with it from :mod:`nvr.onvif.types_tt` (one model per ``tt:`` type).
"""

from __future__ import annotations

from spyne import (
    AnyXml,
    Boolean,
    ComplexModel,
    Duration,
    Float,
    Integer32,
    Unicode,
    XmlAttribute,
)

from nvr.onvif.namespaces import TRC, TT
from nvr.onvif.types_tt import (
    RecordingSourceInformation,
    Text,
    TrackType,
    repeated,
    required,
)
from nvr.search.service_types import SearchScope, SourceReference

__all__ = [
    "ArrayOfFileProgress",
    "Capabilities",
    "FileProgress",
    "GetRecordingJobsResponseItem",
    "GetRecordingsResponseItem",
    "GetTracksResponseItem",
    "GetTracksResponseList",
    "JobOptions",
    "RecordingConfiguration",
    "RecordingJobConfiguration",
    "RecordingJobSource",
    "RecordingJobStateInformation",
    "RecordingJobStateSource",
    "RecordingJobStateTrack",
    "RecordingJobStateTracks",
    "RecordingJobTrack",
    "RecordingOptions",
    "RecordingSourceInformation",
    "SearchScope",
    "SourceReference",
    "StorageReferencePath",
    "TrackConfiguration",
    "TrackOptions",
]


class Capabilities(ComplexModel):
    """trc:Capabilities: attributes only (the extension wildcard stays empty)."""

    __namespace__ = TRC
    DynamicRecordings = XmlAttribute(Boolean)
    DynamicTracks = XmlAttribute(Boolean)
    Encoding = XmlAttribute(Unicode)
    MaxRate = XmlAttribute(Float)
    MaxTotalRate = XmlAttribute(Float)
    MaxRecordings = XmlAttribute(Float)
    MaxRecordingJobs = XmlAttribute(Integer32)
    Options = XmlAttribute(Boolean)
    MetadataRecording = XmlAttribute(Boolean)
    SupportedExportFileFormats = XmlAttribute(Unicode)


class JobOptions(ComplexModel):
    __namespace__ = TRC
    Spare = XmlAttribute(Integer32)
    CompatibleSources = XmlAttribute(Unicode)


class TrackOptions(ComplexModel):
    __namespace__ = TRC
    SpareTotal = XmlAttribute(Integer32)
    SpareVideo = XmlAttribute(Integer32)
    SpareAudio = XmlAttribute(Integer32)
    SpareMetadata = XmlAttribute(Integer32)


class RecordingOptions(ComplexModel):
    __namespace__ = TRC
    Job = required(JobOptions)
    Track = required(TrackOptions)


# ---- recordings and tracks ---------------------------------------------------------------------


class RecordingConfiguration(ComplexModel):
    __namespace__ = TT
    Source = required(RecordingSourceInformation)
    Content = Text
    MaximumRetentionTime = required(Duration)
    Target = AnyXml
    """External (object storage) target: not supported, refused when sent."""


class TrackConfiguration(ComplexModel):
    __namespace__ = TT
    TrackType = required(TrackType)
    Description = Text


class GetTracksResponseItem(ComplexModel):
    __namespace__ = TT
    TrackToken = required(Unicode)
    Configuration = required(TrackConfiguration)


class GetTracksResponseList(ComplexModel):
    __namespace__ = TT
    Track = repeated(GetTracksResponseItem)


class GetRecordingsResponseItem(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    Configuration = required(RecordingConfiguration)
    Tracks = required(GetTracksResponseList)


# ---- recording jobs ----------------------------------------------------------------------------


class RecordingJobTrack(ComplexModel):
    __namespace__ = TT
    SourceTag = required(Unicode)
    Destination = required(Unicode)


class RecordingJobSource(ComplexModel):
    __namespace__ = TT
    SourceToken = SourceReference
    AutoCreateReceiver = Boolean
    """Request only: never set in what the device returns."""
    Tracks = repeated(RecordingJobTrack)


class RecordingEventFilterItem(ComplexModel):
    __namespace__ = TT
    __type_name__ = "RecordingEventFilterItem"
    Topic = required(Unicode)
    Source = Unicode


class RecordingEventFilter(ComplexModel):
    __namespace__ = TT
    Filter = repeated(RecordingEventFilterItem, 1)
    Before = Duration
    After = Duration


class RecordingJobConfiguration(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    Mode = required(Unicode)
    Priority = required(Integer32)
    Source = repeated(RecordingJobSource)
    Extension = AnyXml
    EventFilter = RecordingEventFilter
    ScheduleToken = XmlAttribute(Unicode)


class GetRecordingJobsResponseItem(ComplexModel):
    __namespace__ = TT
    JobToken = required(Unicode)
    JobConfiguration = required(RecordingJobConfiguration)


class RecordingJobStateTrack(ComplexModel):
    """Error comes before State, as onvif.xsd has it."""

    __namespace__ = TT
    SourceTag = required(Unicode)
    Destination = required(Unicode)
    Error = Unicode
    State = required(Unicode)


class RecordingJobStateTracks(ComplexModel):
    __namespace__ = TT
    Track = repeated(RecordingJobStateTrack)


class RecordingJobStateSource(ComplexModel):
    __namespace__ = TT
    SourceToken = required(SourceReference)
    State = required(Unicode)
    Tracks = required(RecordingJobStateTracks)


class RecordingJobStateInformation(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    State = required(Unicode)
    Sources = repeated(RecordingJobStateSource)


# ---- export ------------------------------------------------------------------------------------


class StorageReferencePath(ComplexModel):
    __namespace__ = TT
    StorageToken = required(Unicode)
    RelativePath = Unicode
    Extension = AnyXml


class FileProgress(ComplexModel):
    __namespace__ = TT
    FileName = required(Unicode)
    Progress = required(Float)


class ArrayOfFileProgress(ComplexModel):
    __namespace__ = TT
    FileProgress = repeated(FileProgress)
