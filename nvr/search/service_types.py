"""spyne models of the Search service: ``tse:Capabilities`` and the ``tt:`` search types.

Names, order and occurrence follow search.wsdl and onvif.xsd (26.06) exactly — spyne writes
children in declaration order, in the namespace of their type. Optional extension points
(``Extension``, ``xs:any``) are left out except the SearchScope ``Extension``, which clients
may send and we ignore.
"""

from __future__ import annotations

import datetime as dt

from spyne import (
    AnyUri,
    AnyXml,
    Boolean,
    ComplexModel,
    DateTime,
    Float,
    Integer32,
    Unicode,
    XmlAttribute,
    XmlData,
)

from nvr.onvif.events_types import NotificationMessage
from nvr.onvif.namespaces import TSE, TT
from nvr.onvif.types_tt import (
    RecordingSourceInformation,
    TrackType,
    repeated,
    required,
    tt_enum,
)
from nvr.search.timefmt import datetime_us, format_us, utc_datetime


class UtcTime(dt.datetime):
    """A UTC datetime that spyne writes with ``Z`` and its milli/microseconds (search results
    need sub-second times; spyne would write ``+00:00``)."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return format_us(datetime_us(self))

    @classmethod
    def of(cls, time_us: int) -> UtcTime:
        moment = utc_datetime(time_us)
        return cls(*moment.timetuple()[:6], moment.microsecond, tzinfo=dt.UTC)


When = DateTime(min_occurs=1, nillable=False)
"""A required xs:dateTime; give it :class:`UtcTime` values."""


SearchState = tt_enum("SearchState", "Queued", "Searching", "Completed", "Unknown")
RecordingStatus = tt_enum(
    "RecordingStatus", "Initiated", "Recording", "Stopped", "Removing", "Removed", "Unknown"
)


class Capabilities(ComplexModel):
    __namespace__ = TSE
    MetadataSearch = XmlAttribute(Boolean)
    GeneralStartEvents = XmlAttribute(Boolean)
    NLSearch = XmlAttribute(Boolean)
    ImageSearch = XmlAttribute(Boolean)


class RecordingSummary(ComplexModel):
    __namespace__ = TT
    DataFrom = When
    DataUntil = When
    NumberRecordings = required(Integer32)


class TrackInformation(ComplexModel):
    __namespace__ = TT
    TrackToken = required(Unicode)
    TrackType = required(TrackType)
    Description = required(Unicode)
    DataFrom = When
    DataTo = When


class RecordingInformation(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    Source = required(RecordingSourceInformation)
    EarliestRecording = DateTime
    LatestRecording = DateTime
    Content = required(Unicode)
    Track = repeated(TrackInformation)
    RecordingStatus = required(RecordingStatus)


class VideoAttributes(ComplexModel):
    __namespace__ = TT
    Bitrate = Integer32
    Width = required(Integer32)
    Height = required(Integer32)
    Encoding = required(Unicode)
    Framerate = required(Float)


class AudioAttributes(ComplexModel):
    __namespace__ = TT
    Bitrate = Integer32
    Encoding = required(Unicode)
    Samplerate = required(Integer32)


class MetadataAttributes(ComplexModel):
    __namespace__ = TT
    CanContainPTZ = required(Boolean)
    CanContainAnalytics = required(Boolean)
    CanContainNotifications = required(Boolean)
    PtzSpaces = XmlAttribute(Unicode)


class TrackAttributes(ComplexModel):
    __namespace__ = TT
    TrackInformation = required(TrackInformation)
    VideoAttributes = VideoAttributes
    AudioAttributes = AudioAttributes
    MetadataAttributes = MetadataAttributes


class MediaAttributes(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    TrackAttributes = repeated(TrackAttributes)
    From = When
    Until = When


class SourceReference(ComplexModel):
    __namespace__ = TT
    Token = required(Unicode)
    Type = XmlAttribute(AnyUri)


class SearchScope(ComplexModel):
    __namespace__ = TT
    IncludedSources = repeated(SourceReference)
    IncludedRecordings = repeated(Unicode)
    RecordingInformationFilter = Unicode
    Extension = AnyXml


class Vector2D(ComplexModel):
    __namespace__ = TT
    x = XmlAttribute(Float, use="required")
    y = XmlAttribute(Float, use="required")
    space = XmlAttribute(AnyUri)


class Vector1D(ComplexModel):
    __namespace__ = TT
    x = XmlAttribute(Float, use="required")
    space = XmlAttribute(AnyUri)


class PTZVector(ComplexModel):
    __namespace__ = TT
    PanTilt = Vector2D
    Zoom = Vector1D


class PTZPositionFilter(ComplexModel):
    __namespace__ = TT
    MinPosition = required(PTZVector)
    MaxPosition = required(PTZVector)
    EnterOrExit = required(Boolean)


class MetadataFilter(ComplexModel):
    __namespace__ = TT
    MetadataStreamFilter = required(Unicode)


class FindRecordingResultList(ComplexModel):
    __namespace__ = TT
    SearchState = required(SearchState)
    RecordingInformation = repeated(RecordingInformation)


class FindEventResult(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    TrackToken = required(Unicode)
    Time = When
    Event = required(NotificationMessage)
    StartStateEvent = required(Boolean)


class FindEventResultList(ComplexModel):
    __namespace__ = TT
    SearchState = required(SearchState)
    Result = repeated(FindEventResult)


class FindPTZPositionResult(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    TrackToken = required(Unicode)
    Time = When
    Position = required(PTZVector)


class FindPTZPositionResultList(ComplexModel):
    __namespace__ = TT
    SearchState = required(SearchState)
    Result = repeated(FindPTZPositionResult)


class FindMetadataResult(ComplexModel):
    __namespace__ = TT
    RecordingToken = required(Unicode)
    TrackToken = required(Unicode)
    Time = When


class FindMetadataResultList(ComplexModel):
    __namespace__ = TT
    SearchState = required(SearchState)
    Result = repeated(FindMetadataResult)


__all__ = [
    "AudioAttributes",
    "Capabilities",
    "FindEventResult",
    "FindEventResultList",
    "FindMetadataResult",
    "FindMetadataResultList",
    "FindPTZPositionResult",
    "FindPTZPositionResultList",
    "FindRecordingResultList",
    "MediaAttributes",
    "MetadataAttributes",
    "MetadataFilter",
    "PTZPositionFilter",
    "PTZVector",
    "RecordingInformation",
    "RecordingSourceInformation",
    "RecordingSummary",
    "SearchScope",
    "SearchState",
    "SourceReference",
    "TrackAttributes",
    "TrackInformation",
    "UtcTime",
    "Vector1D",
    "Vector2D",
    "VideoAttributes",
    "XmlData",
]
