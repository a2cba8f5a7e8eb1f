"""Pull points: per-subscription queues fed by the event bus, and the long-poll PullMessages.

One :class:`PullPointManager` per daemon subscribes once to the :class:`~nvr.events.EventBus`
and fans events out to the pull points whose filter matches. Each pull point has a bounded
queue: when a client stops pulling, the oldest messages are dropped and counted, so a stalled
VMS never grows the daemon's memory. Everything happens under one lock; each pull point has its
own condition on it, so a new event wakes exactly the PullMessages waiting for it.

Properties (Core §9.2.1): the manager keeps the current property instances *as delivered to
it*, so creating a pull point can queue their ``Initialized`` messages and register the pull
point atomically with respect to live events — none is sent twice and none is missed. (The
bus's own ``current_properties()`` cannot be combined atomically with a subscription; it only
seeds this copy at start, merged by sequence number.)

PullMessages blocks its worker thread for at most the request's Timeout, itself capped at
``MAX_TIMEOUT``; a second PullMessages on the same pull point is refused instead of waiting,
so at most one thread per pull point ever waits and the service's thread pool is sized for
that. Expired pull points are removed by :meth:`PullPointManager.reap` (a periodic job, and
before each creation).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from nvr.events import Event, EventBus, Items
from nvr.onvif.events_filter import EventFilter
from nvr.onvif.events_topics import describe
from nvr.onvif.resources_filter import signature

log = logging.getLogger("nvr.onvif.events")

MAX_TIMEOUT: Final = 300.0
"""Longest PullMessages Timeout accepted (Core: at least one minute)."""
MAX_MESSAGE_LIMIT: Final = 1000
"""Most messages in one PullMessagesResponse (more may be asked; fewer are sent)."""
DEFAULT_LIFETIME: Final = 60.0
"""Termination time when CreatePullPointSubscription gives none."""
MAX_LIFETIME: Final = 3600.0
"""Longest lifetime granted at once (longer requests are shortened, and the answer says so)."""

Key = tuple[str, Items]


class UnknownPullPoint(LookupError):
    """No such pull point, or it has expired or was unsubscribed."""


class PullPointsExhausted(RuntimeError):
    """MaxPullPoints pull points exist already."""


class PullInProgress(RuntimeError):
    """Another PullMessages is already waiting on this pull point."""


@dataclass(eq=False)
class PullPoint:
    id: str
    filter: EventFilter
    changed_only: bool
    keepalive: float
    """Seconds each PullMessages keeps the pull point alive for at least."""
    termination: float
    """Epoch seconds."""
    condition: threading.Condition
    queue: deque[Event] = field(default_factory=deque)
    dropped: int = 0
    """Messages lost to a full queue, over the pull point's life."""
    unreported: int = 0
    pulling: bool = False
    closed: bool = False
    shown: dict[Key, Hashable] = field(default_factory=dict)
    """What a SelectFilter let through of each property, last time (see :meth:`visible`)."""

    def wants(self, event: Event) -> bool:
        if self.changed_only and event.property_operation in ("Initialized", "Deleted"):
            return False
        return self.filter.matches(event)

    def visible(self, event: Event) -> Event | None:
        """``event`` as this pull point shows it (SelectFilter); None for a Changed property
        whose selected items did not change (ResourceQuery §6.2: e.g. an Offline flip is
        no change to a subscriber that did not select Offline)."""
        view = self.filter.view(event)
        if view is event or not view.is_property:
            return view
        key = (view.topic, view.source)
        if view.property_operation == "Deleted":
            self.shown.pop(key, None)
            return view
        selected = signature(view)
        if view.property_operation == "Changed" and self.shown.get(key) == selected:
            return None
        self.shown[key] = selected
        return view


class PullPointManager:
    def __init__(
        self,
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.time,
        max_pull_points: int = 64,
        queue_limit: int = 1000,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self.max_pull_points = max_pull_points
        self.queue_limit = queue_limit
        self._lock = threading.Lock()
        self._points: dict[str, PullPoint] = {}
        self._properties: dict[Key, Event] = {}
        self._deleted: dict[Key, int] | None = {}
        """Deletions seen while seeding (seq); None once seeded."""
        self._subscription: int | None = None
        self._closed = False
        self._unknown_topics: set[str] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the bus, then merge its current properties under the newer live ones."""
        self._subscription = self._bus.subscribe(self._on_event)
        current = self._bus.current_properties()
        with self._lock:
            deleted = self._deleted or {}
            for event in current:
                key = (event.topic, event.source)
                if key in self._properties or deleted.get(key, 0) > event.seq:
                    continue
                self._properties[key] = event
            self._deleted = None

    def close(self) -> None:
        """Leave the bus and end every waiting PullMessages now (daemon shutdown)."""
        if self._subscription is not None:
            self._bus.unsubscribe(self._subscription)
            self._subscription = None
        with self._lock:
            self._closed = True
            for point in self._points.values():
                point.condition.notify_all()

    def now(self) -> float:
        return self._clock()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._points)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "pull_points": len(self._points),
                "queued": sum(len(p.queue) for p in self._points.values()),
                "dropped": sum(p.dropped for p in self._points.values()),
            }

    # --- bus side -----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Bus callback (publisher's thread, under the bus lock): keep it short."""
        if describe(event.topic) is None and event.topic not in self._unknown_topics:
            self._unknown_topics.add(event.topic)
            log.warning("event topic %s is not in the published TopicSet", event.topic)
        with self._lock:
            if event.is_property:
                key = (event.topic, event.source)
                if event.property_operation == "Deleted":
                    self._properties.pop(key, None)
                    if self._deleted is not None:
                        self._deleted[key] = event.seq
                else:
                    self._properties[key] = event
            for point in self._points.values():
                if point.wants(event):
                    self._offer(point, event)

    def _offer(self, point: PullPoint, event: Event) -> None:
        visible = point.visible(event)
        if visible is None:
            return
        if len(point.queue) >= self.queue_limit:
            point.queue.popleft()
            point.dropped += 1
            point.unreported += 1
            if point.unreported == 1:
                log.warning(
                    "pull point %s is not being read: dropping its oldest messages", point.id
                )
        point.queue.append(visible)
        point.condition.notify()

    def _initialized(self, point: PullPoint) -> list[Event]:
        """Current properties matching the pull point's filter, as Initialized, in order."""
        events = sorted(self._properties.values(), key=lambda e: e.seq)
        return [
            replace(e, property_operation="Initialized") for e in events if point.filter.matches(e)
        ]

    # --- pull point operations ----------------------------------------------------------------

    def create(
        self, event_filter: EventFilter, termination: float | None, changed_only: bool = False
    ) -> PullPoint:
        """A new pull point, its queue primed with the Initialized property states."""
        now = self._clock()
        termination = self.clamp(
            now, DEFAULT_LIFETIME + now if termination is None else termination
        )
        with self._lock:
            self._reap(now)
            if len(self._points) >= self.max_pull_points:
                raise PullPointsExhausted(f"{self.max_pull_points} pull points exist already")
            point = PullPoint(
                id=secrets.token_hex(16),
                filter=event_filter,
                changed_only=changed_only,
                keepalive=termination - now,
                termination=termination,
                condition=threading.Condition(self._lock),
            )
            if not changed_only:
                for event in self._initialized(point):
                    self._offer(point, event)
            self._points[point.id] = point
        return point

    def clamp(self, now: float, termination: float) -> float:
        """A requested termination time, shortened to MAX_LIFETIME from now."""
        return min(termination, now + MAX_LIFETIME)

    def get(self, point_id: str) -> PullPoint:
        with self._lock:
            point = self._points.get(point_id)
            if point is None or point.closed:
                raise UnknownPullPoint(point_id)
            if not point.pulling and point.termination <= self._clock():
                self._remove(point)
                raise UnknownPullPoint(point_id)
            return point

    def pull(self, point: PullPoint, timeout: float, limit: int) -> list[Event]:
        """Up to ``limit`` messages: at once if any are queued, else the first ones to arrive
        within ``timeout`` seconds, else none once ``timeout`` has passed."""
        deadline = time.monotonic() + min(max(timeout, 0.0), MAX_TIMEOUT)
        with self._lock:
            if point.closed:
                raise UnknownPullPoint(point.id)
            if point.pulling:
                raise PullInProgress(point.id)
            point.pulling = True
            try:
                while not point.queue and not point.closed and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    point.condition.wait(remaining)
                if point.closed:
                    raise UnknownPullPoint(point.id)
                count = min(max(limit, 1), MAX_MESSAGE_LIMIT, len(point.queue))
                events = [point.queue.popleft() for _ in range(count)]
                if point.unreported:
                    log.warning("pull point %s lost %d messages", point.id, point.unreported)
                    point.unreported = 0
            finally:
                point.pulling = False
            keep = max(timeout, point.keepalive)
            point.termination = max(point.termination, self._clock() + keep)
            return events

    def renew(self, point: PullPoint, termination: float) -> float:
        now = self._clock()
        termination = self.clamp(now, termination)
        with self._lock:
            if point.closed:
                raise UnknownPullPoint(point.id)
            point.termination = termination
            point.keepalive = termination - now
        return termination

    def unsubscribe(self, point: PullPoint) -> None:
        with self._lock:
            if point.closed:
                raise UnknownPullPoint(point.id)
            self._remove(point)

    def synchronize(self, point: PullPoint) -> None:
        """SetSynchronizationPoint: queue every matching property state as Initialized."""
        with self._lock:
            if point.closed:
                raise UnknownPullPoint(point.id)
            for event in self._initialized(point):
                self._offer(point, event)

    def reap(self) -> int:
        """Remove expired pull points (none that a PullMessages is waiting on)."""
        with self._lock:
            return self._reap(self._clock())

    def _reap(self, now: float) -> int:
        expired = [p for p in self._points.values() if p.termination <= now and not p.pulling]
        self._remove_all(expired)
        if expired:
            log.info("%d expired pull point(s) removed", len(expired))
        return len(expired)

    def _remove(self, point: PullPoint) -> None:
        self._remove_all([point])

    def _remove_all(self, points: Iterable[PullPoint]) -> None:
        for point in points:
            self._points.pop(point.id, None)
            point.closed = True
            point.queue.clear()
            point.condition.notify_all()
