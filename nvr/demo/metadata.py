"""ONVIF metadata documents for the demo camera (streaming.md §7, metadatastream.xsd).

One ``tt:MetadataStream`` document per second: a ``tt:VideoAnalytics`` frame with one object
gliding across the picture, a ``tt:PTZ`` status whose position sweeps slowly, and every 10 s a
``tt:Event`` carrying a ``tns1:VideoSource/MotionAlarm`` notification whose ``State`` alternates
true/false. Everything is a pure function of the capture time, so the same instant always gives
the same document: recordings, exports and searches can be checked against it.
"""

from __future__ import annotations

import datetime as dt
import math

__all__ = [
    "EVENT_PERIOD_S",
    "MOTION_TOPIC",
    "NS_TNS1",
    "NS_TT",
    "NS_WSNT",
    "SOURCE_TOKEN",
    "VIDEO_SOURCE_TOKEN",
    "metadata_document",
    "motion_state",
    "utc_text",
]

NS_TT = "http://www.onvif.org/ver10/schema"
NS_WSNT = "http://docs.oasis-open.org/wsn/b-2"
NS_TNS1 = "http://www.onvif.org/ver10/topics"
TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
MOTION_TOPIC = "tns1:VideoSource/MotionAlarm"
SOURCE_TOKEN = "VideoSourceConfig_1"
"""Value of the event's ``VideoSourceConfigurationToken`` source item."""
VIDEO_SOURCE_TOKEN = "VideoSource_1"
EVENT_PERIOD_S = 10
_PAN_SPACE = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
_ZOOM_SPACE = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"


def utc_text(unix_us: int) -> str:
    """xs:dateTime in UTC with milliseconds, e.g. ``2025-03-01T10:15:02.500Z``."""
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=unix_us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def motion_state(unix_us: int) -> bool | None:
    """The MotionAlarm state announced at this instant, None when no event is due.

    Events fall on whole seconds divisible by 10; the state is true in even decades.
    """
    seconds, fraction = divmod(unix_us, 1_000_000)
    if fraction >= 1_000_000 // 2 or seconds % EVENT_PERIOD_S:
        return None
    return (seconds // EVENT_PERIOD_S) % 2 == 0


def _f(value: float) -> str:
    return f"{round(value, 4) + 0.0:.4f}"  # + 0.0 turns -0.0 into 0.0


def _object_box(t: float) -> tuple[float, float, float, float]:
    """Normalised (-1..1, y up) bounding box of the moving object: left, top, right, bottom."""
    x = 0.8 * math.sin(2 * math.pi * t / 20)  # across the picture and back every 20 s
    y = 0.4 * math.cos(2 * math.pi * t / 30)
    return x - 0.15, y + 0.2, x + 0.15, y - 0.2


def metadata_document(unix_us: int, *, event: bool = True) -> bytes:
    """The document for capture time ``unix_us`` (UTF-8 XML with declaration).

    ``event=False`` leaves the MotionAlarm out even when one is due (a caller that already sent
    it for this second).
    """
    t = unix_us / 1_000_000
    when = utc_text(unix_us)
    left, top, right, bottom = _object_box(t)
    pan = math.sin(2 * math.pi * t / 60)
    tilt = 0.5 * math.sin(2 * math.pi * t / 90)
    zoom = 0.5 + 0.5 * math.sin(2 * math.pi * t / 120)
    moving = "MOVING"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<tt:MetadataStream xmlns:tt="{NS_TT}" xmlns:wsnt="{NS_WSNT}" xmlns:tns1="{NS_TNS1}">',
        "<tt:VideoAnalytics>",
        f'<tt:Frame UtcTime="{when}" Source="{VIDEO_SOURCE_TOKEN}">',
        '<tt:Object ObjectId="1"><tt:Appearance><tt:Shape>',
        f'<tt:BoundingBox bottom="{_f(bottom)}" top="{_f(top)}" right="{_f(right)}"'
        f' left="{_f(left)}"/>',
        f'<tt:CenterOfGravity x="{_f((left + right) / 2)}" y="{_f((top + bottom) / 2)}"/>',
        "</tt:Shape>",
        '<tt:Class><tt:Type Likelihood="0.9">Human</tt:Type></tt:Class>',
        "</tt:Appearance></tt:Object>",
        "</tt:Frame>",
        "</tt:VideoAnalytics>",
        "<tt:PTZ><tt:PTZStatus>",
        "<tt:Position>",
        f'<tt:PanTilt x="{_f(pan)}" y="{_f(tilt)}" space="{_PAN_SPACE}"/>',
        f'<tt:Zoom x="{_f(zoom)}" space="{_ZOOM_SPACE}"/>',
        "</tt:Position>",
        f"<tt:MoveStatus><tt:PanTilt>{moving}</tt:PanTilt><tt:Zoom>{moving}</tt:Zoom>"
        "</tt:MoveStatus>",
        f"<tt:UtcTime>{when}</tt:UtcTime>",
        "</tt:PTZStatus></tt:PTZ>",
    ]
    state = motion_state(unix_us) if event else None
    if state is not None:
        parts += [
            "<tt:Event><wsnt:NotificationMessage>",
            f'<wsnt:Topic Dialect="{TOPIC_DIALECT}">{MOTION_TOPIC}</wsnt:Topic>',
            "<wsnt:Message>",
            f'<tt:Message UtcTime="{when}" PropertyOperation="Changed">',
            "<tt:Source>",
            f'<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="{SOURCE_TOKEN}"/>',
            "</tt:Source>",
            "<tt:Data>",
            f'<tt:SimpleItem Name="State" Value="{"true" if state else "false"}"/>',
            "</tt:Data>",
            "</tt:Message>",
            "</wsnt:Message>",
            "</wsnt:NotificationMessage></tt:Event>",
        ]
    parts.append("</tt:MetadataStream>")
    return "".join(parts).encode("utf-8")
