"""Plain values shared by the search modules: time ranges, keyset positions, result rows.

Times are integer microseconds since the Unix epoch (UTC), as everywhere in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nvr.events import Event
from nvr.store.types import Interval, RecordingInfo, TrackInfo


class SearchError(ValueError):
    """A request the search cannot run; ``reason`` names the ONVIF subcode to answer with."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A search interval: ``[lo, hi]`` inclusive, walked forward or backward.

    ``EndPoint < StartPoint`` means backward (search.md §4); ``live`` marks a forward range
    reaching into the future, whose end is only reached as time passes.
    """

    start_us: int
    end_us: int
    forward: bool
    live: bool = False

    @classmethod
    def of(cls, start_us: int, end_us: int | None, now_us: int) -> TimeRange:
        if end_us is None:
            return cls(start_us, max(start_us, now_us), True)
        if end_us < start_us:
            return cls(start_us, end_us, False)
        return cls(start_us, end_us, True, live=end_us > now_us)

    @property
    def lo(self) -> int:
        return min(self.start_us, self.end_us)

    @property
    def hi(self) -> int:
        return max(self.start_us, self.end_us)


Keyset = tuple[int, int]
"""(time_us, id) of the last row a page walked past: the next page starts after it."""


@dataclass(frozen=True, slots=True)
class EventRow:
    """One result of FindEvents: a row of the event index, or a virtual start-state event."""

    recording_token: str
    track_token: str
    time_us: int
    topic: str
    is_property: bool
    property_operation: str | None
    source: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    message_xml: str | None = None
    start_state: bool = False

    def event(self, elements: tuple[tuple[str, Any], ...] = ()) -> Event:
        """The row as a bus event (its ElementItems, kept only in ``message_xml``, if given)."""
        return Event(
            self.topic,
            self.source,
            self.data,
            time_us=self.time_us,
            is_property=self.is_property,
            property_operation=self.property_operation,
            elements=elements,
        )


@dataclass(frozen=True, slots=True)
class PtzRow:
    recording_token: str
    track_token: str
    time_us: int
    pan: float | None
    tilt: float | None
    zoom: float | None
    pan_tilt_space: str | None
    zoom_space: str | None


@dataclass(frozen=True, slots=True)
class MetadataHit:
    recording_token: str
    track_token: str
    time_us: int


@dataclass(frozen=True, slots=True)
class TrackView:
    track: TrackInfo
    data: Interval


@dataclass(frozen=True, slots=True)
class RecordingView:
    """What tt:RecordingInformation says about a recording (tracks without data omitted)."""

    recording: RecordingInfo
    tracks: tuple[TrackView, ...]
    status: str

    @property
    def earliest_us(self) -> int | None:
        return min((t.data.start_us for t in self.tracks), default=None)

    @property
    def latest_us(self) -> int | None:
        return max((t.data.end_us for t in self.tracks), default=None)


@dataclass(frozen=True, slots=True)
class PtzBox:
    """tt:PTZPositionFilter: the volume between Min and Max, components given in both."""

    pan: tuple[float, float] | None
    tilt: tuple[float, float] | None
    zoom: tuple[float, float] | None
    enter_or_exit: bool

    def contains(self, row: Any) -> bool:
        for bounds, value in ((self.pan, row.pan), (self.tilt, row.tilt), (self.zoom, row.zoom)):
            if bounds is None:
                continue
            if value is None or not bounds[0] <= value <= bounds[1]:
                return False
        return True
