"""Bus events as ONVIF notifications: ``tt:Message`` inside a ``wsnt:NotificationMessage``.

Core §9.2: ``UtcTime`` (UTC, ``Z``) and, for properties, ``PropertyOperation``; then Source and
Data item lists (SimpleItems before ElementItems, as tt:ItemList orders them). ElementItem values
follow the convention documented on :attr:`nvr.events.Event.elements`: an lxml element (copied,
since one event goes to many subscribers) or a zero-argument callable returning one. Anything
else cannot be written as XML; it is left out and logged once per topic and item.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable
from typing import Any

from lxml import etree

from nvr.events import Event, utc_text
from nvr.onvif.events_types import NotificationMessage, notification
from nvr.onvif.namespaces import TT, clark

log = logging.getLogger("nvr.onvif.events")

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(topic: str, name: str, reason: str) -> None:
    with _warned_lock:
        if (topic, name) in _warned:
            return
        _warned.add((topic, name))
    log.warning("event %s: ElementItem %s left out: %s", topic, name, reason)


def element_value(topic: str, name: str, value: Any) -> etree._Element | None:
    """The element to place in an ElementItem, or None (logged) if there is none."""
    if callable(value) and not isinstance(value, etree._Element):
        try:
            value = value()
        except Exception:
            log.exception("event %s: rendering ElementItem %s failed", topic, name)
            return None
    if isinstance(value, etree._Element):
        return copy.deepcopy(value)
    _warn_once(topic, name, f"{type(value).__name__} is not an lxml element")
    return None


def _items(
    parent: etree._Element,
    group: str,
    simple: Iterable[tuple[str, str]],
    elements: Iterable[tuple[str, etree._Element]] = (),
) -> None:
    simple, elements = list(simple), list(elements)
    if not simple and not elements:
        return
    node = etree.SubElement(parent, clark(TT, group))
    for name, value in simple:
        etree.SubElement(node, clark(TT, "SimpleItem"), Name=name, Value=str(value))
    for name, value in elements:
        etree.SubElement(node, clark(TT, "ElementItem"), Name=name).append(value)


def message_element(event: Event) -> etree._Element:
    """The ``tt:Message`` of ``event``."""
    message = etree.Element(clark(TT, "Message"), nsmap={"tt": TT})
    message.set("UtcTime", utc_text(event.time_us))
    if event.is_property and event.property_operation:
        message.set("PropertyOperation", event.property_operation)
    _items(message, "Source", event.source)
    rendered = [(name, element_value(event.topic, name, value)) for name, value in event.elements]
    _items(message, "Data", event.data, [(n, e) for n, e in rendered if e is not None])
    return message


def notification_message(event: Event) -> NotificationMessage:
    """``event`` as a wsnt:NotificationMessageHolderType (topic in the ConcreteSet dialect)."""
    return notification(event.topic, message_element(event))
