"""The in-process event bus: engine parts publish ONVIF-shaped notifications, the Events
service's pull points and the recording-event index subscribe.

Publishing is thread-safe (the store's writer thread and spyne's handler threads publish);
subscribers get events in publication order. Property events (``is_property``) are also kept as
the current state per (topic, source), so a new subscription can be sent the ``Initialized``
messages and ``SetSynchronizationPoint`` can re-send them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger(__name__)

Items = tuple[tuple[str, str], ...]
"""Ordered SimpleItem name/value pairs."""


@dataclass(frozen=True, slots=True)
class Event:
    """One tt:Message: topic (``tns1:...`` form), source and data items, UTC time in us."""

    topic: str
    source: Items = ()
    data: Items = ()
    time_us: int = field(default_factory=lambda: time.time_ns() // 1000)
    is_property: bool = False
    property_operation: str | None = None
    """Initialized, Changed or Deleted for property events; None otherwise."""
    elements: tuple[tuple[str, Any], ...] = ()
    """ElementItems of the Data group as (name, value). The value is an lxml element — the
    single child of ``tt:ElementItem``, e.g. a ``tt:RecordingJobStateInformation`` element in
    the tt namespace — or a zero-argument callable returning one, called when a notification
    is written. The Event service copies the element for every message (it is never moved);
    any other value cannot be written as XML and is left out (logged once per topic/item)."""
    seq: int = 0

    def source_dict(self) -> dict[str, str]:
        return dict(self.source)

    def data_dict(self) -> dict[str, str]:
        return dict(self.data)


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._subscribers: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._properties: dict[tuple[str, Items], Event] = {}

    def subscribe(self, callback: Subscriber) -> int:
        """Register a callback (it must be quick and must not raise); returns its id."""
        with self._lock:
            sid = next(self._ids)
            self._subscribers[sid] = callback
            return sid

    def unsubscribe(self, sid: int) -> None:
        with self._lock:
            self._subscribers.pop(sid, None)

    def publish(self, event: Event) -> Event:
        """Deliver to every subscriber; property events also update the current state."""
        with self._lock:
            event = replace(event, seq=next(self._seq))
            if event.is_property:
                key = (event.topic, event.source)
                if event.property_operation == "Deleted":
                    self._properties.pop(key, None)
                else:
                    self._properties[key] = event
            # Delivered under the (re-entrant) lock so every subscriber sees one global order.
            for callback in list(self._subscribers.values()):
                try:
                    callback(event)
                except Exception:  # a broken subscriber must not stop the others
                    log.exception("event subscriber failed on %s", event.topic)
        return event

    def publish_property(
        self,
        topic: str,
        source: Items,
        data: Items,
        *,
        elements: tuple[tuple[str, Any], ...] = (),
        time_us: int | None = None,
    ) -> Event:
        """Publish a property change: Initialized the first time, Changed after."""
        with self._lock:
            known = (topic, source) in self._properties
        return self.publish(
            Event(
                topic,
                source,
                data,
                time_us=time_us if time_us is not None else time.time_ns() // 1000,
                is_property=True,
                property_operation="Changed" if known else "Initialized",
                elements=elements,
            )
        )

    def delete_property(
        self,
        topic: str,
        source: Items,
        data: Items = (),
        *,
        elements: tuple[tuple[str, Any], ...] = (),
    ) -> Event:
        """Publish a property's deletion, with its last data if given (so subscriptions that
        filter on the data see the deletion of what they were shown)."""
        return self.publish(
            Event(
                topic,
                source,
                data,
                is_property=True,
                property_operation="Deleted",
                elements=elements,
            )
        )

    def current_properties(self) -> list[Event]:
        """The state in force: one event per live property, as Initialized messages."""
        with self._lock:
            events = sorted(self._properties.values(), key=lambda e: e.seq)
        return [replace(e, property_operation="Initialized") for e in events]


DELETE_TRACK_DATA = "tns1:RecordingConfig/DeleteTrackData"


def utc_text(time_us: int) -> str:
    """xs:dateTime in UTC with ``Z`` (ONVIF answers in UTC); milliseconds or microseconds only
    when there are any. The one formatter of event, search and fault times."""
    seconds, micro = divmod(time_us, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if micro % 1000:
        return f"{text}.{micro:06d}Z"
    if micro:
        return f"{text}.{micro // 1000:03d}Z"
    return text + "Z"


def delete_track_data(recording: str, track: str, start_us: int, end_us: int) -> Event:
    """``tns1:RecordingConfig/DeleteTrackData``: recorded data of a track was deleted (by
    retention or explicitly); the search index drops the range and DataFrom moves."""
    return Event(
        DELETE_TRACK_DATA,
        (("RecordingToken", recording), ("TrackToken", track)),
        (("StartTime", utc_text(start_us)), ("EndTime", utc_text(end_us))),
    )
