"""What the search index takes from a recorded ``tt:MetadataStream`` document (streaming.md §7).

* every ``tt:Event/wsnt:NotificationMessage``: its topic (``tns1:`` when the prefix names the
  ONVIF topic namespace, else as written), the ``tt:Message`` items and the message itself;
* every PTZ position: ``tt:PTZ/tt:PTZStatus/tt:Position`` and the ``tt:PTZStatus`` a
  ``tt:VideoAnalytics/tt:Frame`` may carry;
* whether the document holds analytics frames (tt:MetadataAttributes/CanContainAnalytics).

Documents come from cameras: the parser never resolves entities or fetches anything, and a
document that is not XML is skipped by the caller (logged once per track), never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from nvr.onvif.events_topics import TNS1, TOPIC_PREFIX
from nvr.onvif.namespaces import TT, WSNT, clark

GENERIC_PAN_TILT: Final = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
GENERIC_ZOOM: Final = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"

_STREAM: Final = clark(TT, "MetadataStream")
_NOTIFICATIONS: Final = f"{{{TT}}}Event/{{{WSNT}}}NotificationMessage"
_MESSAGE: Final = f"{{{WSNT}}}Message/{{{TT}}}Message"
_POSITIONS: Final = (
    f"{{{TT}}}PTZ/{{{TT}}}PTZStatus/{{{TT}}}Position",
    f"{{{TT}}}VideoAnalytics/{{{TT}}}Frame/{{{TT}}}PTZStatus/{{{TT}}}Position",
)
_FRAMES: Final = f"{{{TT}}}VideoAnalytics/{{{TT}}}Frame"
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
)

Items = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notification:
    topic: str
    is_property: bool
    property_operation: str | None
    source: Items
    data: Items
    message_xml: str


@dataclass(frozen=True, slots=True)
class Position:
    pan: float | None
    tilt: float | None
    zoom: float | None
    pan_tilt_space: str | None
    """None for the generic position space."""
    zoom_space: str | None


@dataclass(slots=True)
class Contents:
    notifications: list[Notification] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    has_analytics: bool = False


def topic_text(element: etree._Element) -> str:
    """The topic of a ``wsnt:Topic``; the ONVIF namespace always gets the ``tns1`` prefix."""
    text = (element.text or "").strip()
    prefix, colon, rest = text.partition(":")
    if colon and element.nsmap.get(prefix) == TNS1:
        return f"{TOPIC_PREFIX}:{rest}"
    return text


def _items(message: etree._Element, group: str) -> Items:
    node = message.find(clark(TT, group))
    if node is None:
        return ()
    return tuple(
        (item.get("Name", ""), item.get("Value", ""))
        for item in node.iterchildren(clark(TT, "SimpleItem"))
    )


def _notification(holder: etree._Element) -> Notification | None:
    topic = holder.find(clark(WSNT, "Topic"))
    message = holder.find(_MESSAGE)
    if topic is None or message is None:
        return None
    operation = message.get("PropertyOperation")
    return Notification(
        topic=topic_text(topic),
        is_property=operation is not None,
        property_operation=operation,
        source=_items(message, "Source"),
        data=_items(message, "Data"),
        message_xml=etree.tostring(message, encoding="unicode"),
    )


def _float(element: etree._Element | None, name: str) -> float | None:
    if element is None:
        return None
    try:
        return float(element.get(name, ""))
    except ValueError:
        return None


def _space(element: etree._Element | None, generic: str) -> str | None:
    space = None if element is None else element.get("space")
    return None if space in (None, "", generic) else space


def _position(element: etree._Element) -> Position | None:
    pan_tilt = element.find(clark(TT, "PanTilt"))
    zoom = element.find(clark(TT, "Zoom"))
    position = Position(
        pan=_float(pan_tilt, "x"),
        tilt=_float(pan_tilt, "y"),
        zoom=_float(zoom, "x"),
        pan_tilt_space=_space(pan_tilt, GENERIC_PAN_TILT),
        zoom_space=_space(zoom, GENERIC_ZOOM),
    )
    if position.pan is None and position.tilt is None and position.zoom is None:
        return None
    return position


def parse_document(data: bytes) -> Contents:
    """The index's view of one document; ValueError if it is not a tt:MetadataStream."""
    root = parse_tree(data)
    if root.tag != _STREAM:
        raise ValueError(f"root element is {root.tag[:80]}, not tt:MetadataStream")
    contents = Contents(has_analytics=root.find(_FRAMES) is not None)
    for holder in root.iterfind(_NOTIFICATIONS):
        notification = _notification(holder)
        if notification is not None:
            contents.notifications.append(notification)
    for path in _POSITIONS:
        for element in root.iterfind(path):
            position = _position(element)
            if position is not None:
                contents.positions.append(position)
    return contents


def parse_tree(data: bytes) -> etree._Element:
    """The document as a tree (FindMetadata evaluates its filter on it)."""
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None


def spaces_of(position: Position) -> set[str]:
    """The PTZ spaces a position is expressed in (tt:MetadataAttributes/@PtzSpaces)."""
    spaces: set[str] = set()
    if position.pan is not None or position.tilt is not None:
        spaces.add(position.pan_tilt_space or GENERIC_PAN_TILT)
    if position.zoom is not None:
        spaces.add(position.zoom_space or GENERIC_ZOOM)
    return spaces
