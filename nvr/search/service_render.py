"""Search results as the spyne models of service_types.py, and request parts as plain values.

Event messages recorded with their own XML (metadata documents, ElementItems) are sent as
recorded; the others are rebuilt by the Event service's renderer, so a history event looks the
same in FindEvents as in PullMessages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from lxml import etree

from nvr.onvif.events_render import message_element
from nvr.onvif.events_types import notification
from nvr.search import service_types as st
from nvr.search.metadata import GENERIC_PAN_TILT, GENERIC_ZOOM
from nvr.search.recordings import MediaAttributes, TrackAttributes
from nvr.search.timefmt import datetime_us
from nvr.search.types import EventRow, MetadataHit, PtzBox, PtzRow, RecordingView, TrackView

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
DEFAULT_KEEPALIVE = 10.0


# ---- requests ------------------------------------------------------------------------------------


def time_us(value: dt.datetime | None) -> int | None:
    return None if value is None else datetime_us(value)


def seconds(value: dt.timedelta | None, default: float | None = None) -> float | None:
    return default if value is None else value.total_seconds()


def keepalive(value: dt.timedelta | None) -> float:
    return seconds(value, DEFAULT_KEEPALIVE) or 0.0


def _bounds(low: Any, high: Any, name: str) -> tuple[float, float] | None:
    a = None if low is None else getattr(low, name, None)
    b = None if high is None else getattr(high, name, None)
    if a is None or b is None:
        return None
    return (min(a, b), max(a, b))


def ptz_box(flt: st.PTZPositionFilter) -> PtzBox:
    """The filter's volume: each component bounded when both Min and Max give it."""
    low, high = flt.MinPosition, flt.MaxPosition
    low_pt, high_pt = (getattr(v, "PanTilt", None) for v in (low, high))
    low_z, high_z = (getattr(v, "Zoom", None) for v in (low, high))
    return PtzBox(
        pan=_bounds(low_pt, high_pt, "x"),
        tilt=_bounds(low_pt, high_pt, "y"),
        zoom=_bounds(low_z, high_z, "x"),
        enter_or_exit=bool(flt.EnterOrExit),
    )


# ---- results -------------------------------------------------------------------------------------


def track_information(view: TrackView) -> st.TrackInformation:
    return st.TrackInformation(
        TrackToken=view.track.token,
        TrackType=view.track.kind,
        Description=view.track.description,
        DataFrom=st.UtcTime.of(view.data.start_us),
        DataTo=st.UtcTime.of(view.data.end_us),
    )


def recording_information(view: RecordingView) -> st.RecordingInformation:
    info = view.recording
    earliest, latest = view.earliest_us, view.latest_us
    return st.RecordingInformation(
        RecordingToken=info.token,
        Source=st.RecordingSourceInformation(
            SourceId=info.source_id,
            Name=info.source_name,
            Location=info.source_location,
            Description=info.source_description,
            Address=info.source_address,
        ),
        EarliestRecording=None if earliest is None else st.UtcTime.of(earliest),
        LatestRecording=None if latest is None else st.UtcTime.of(latest),
        Content=info.content,
        Track=[track_information(t) for t in view.tracks],
        RecordingStatus=view.status,
    )


def _track_attributes(attrs: TrackAttributes) -> st.TrackAttributes:
    kind = attrs.track.track.kind
    model = st.TrackAttributes(TrackInformation=track_information(attrs.track))
    if kind == "Video":
        model.VideoAttributes = st.VideoAttributes(
            Bitrate=attrs.bitrate_kbps,
            Width=attrs.width or 0,
            Height=attrs.height or 0,
            Encoding=attrs.encoding,
            Framerate=attrs.framerate,
        )
    elif kind == "Audio":
        model.AudioAttributes = st.AudioAttributes(
            Bitrate=attrs.bitrate_kbps,
            Encoding=attrs.encoding,
            Samplerate=(attrs.sample_rate or 0) // 1000,
        )
    elif kind == "Metadata":
        model.MetadataAttributes = st.MetadataAttributes(
            CanContainPTZ=attrs.can_contain_ptz,
            CanContainAnalytics=attrs.can_contain_analytics,
            CanContainNotifications=attrs.can_contain_notifications,
            PtzSpaces=attrs.ptz_spaces or None,
        )
    return model


def media_attributes(found: MediaAttributes) -> st.MediaAttributes:
    return st.MediaAttributes(
        RecordingToken=found.recording_token,
        TrackAttributes=[_track_attributes(t) for t in found.tracks],
        From=st.UtcTime.of(found.from_us),
        Until=st.UtcTime.of(found.until_us),
    )


def _message(row: EventRow) -> etree._Element:
    if row.message_xml:
        return etree.fromstring(row.message_xml.encode(), _PARSER)
    return message_element(row.event())


def event_result(row: EventRow) -> st.FindEventResult:
    return st.FindEventResult(
        RecordingToken=row.recording_token,
        TrackToken=row.track_token,
        Time=st.UtcTime.of(row.time_us),
        Event=notification(row.topic, _message(row)),
        StartStateEvent=row.start_state,
    )


def _vector(row: PtzRow) -> st.PTZVector:
    vector = st.PTZVector()
    if row.pan is not None or row.tilt is not None:
        vector.PanTilt = st.Vector2D(
            x=row.pan or 0.0, y=row.tilt or 0.0, space=row.pan_tilt_space or GENERIC_PAN_TILT
        )
    if row.zoom is not None:
        vector.Zoom = st.Vector1D(x=row.zoom, space=row.zoom_space or GENERIC_ZOOM)
    return vector


def ptz_result(row: PtzRow) -> st.FindPTZPositionResult:
    return st.FindPTZPositionResult(
        RecordingToken=row.recording_token,
        TrackToken=row.track_token,
        Time=st.UtcTime.of(row.time_us),
        Position=_vector(row),
    )


def metadata_result(hit: MetadataHit) -> st.FindMetadataResult:
    return st.FindMetadataResult(
        RecordingToken=hit.recording_token,
        TrackToken=hit.track_token,
        Time=st.UtcTime.of(hit.time_us),
    )


def scope_tokens(models: Sequence[Any] | None) -> tuple[str, ...]:
    """Tokens of IncludedSources (tt:SourceReference) or IncludedRecordings."""
    tokens = []
    for model in models or ():
        token = getattr(model, "Token", model)
        if isinstance(token, str) and token.strip():
            tokens.append(token.strip())
    return tuple(tokens)
