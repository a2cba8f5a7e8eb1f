"""Recording schedules: token → weekly time windows, switched on APScheduler.

A recording job with ``@ScheduleToken`` records only while its schedule exists and is active
(recording.md §3). The ONVIF Schedule service (iCalendar) is not implemented yet; the SOAP
layer fills this registry when it is, and until then the registry is the API: :meth:`put`,
:meth:`remove`, :meth:`is_active`. Instead of polling, the registry computes each schedule's
next change and arms one APScheduler ``date`` job for it, so hundreds of idle schedules cost
nothing between their edges.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler

__all__ = ["Schedule", "ScheduleRegistry", "WeeklyWindow"]

log = logging.getLogger(__name__)

_DAY = dt.timedelta(days=1)

Listener = Callable[[str, bool], None]
"""Called with (schedule token, active) whenever a schedule switches or appears/disappears."""


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """Active on ``days`` (0 = Monday … 6 = Sunday) from ``start`` to ``end`` local time.

    ``end <= start`` means the window runs past midnight into the next day (``00:00``-``00:00``
    is a whole day). Days are those on which the window *starts*.
    """

    days: frozenset[int]
    start: dt.time
    end: dt.time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise ValueError(f"window days must be a non-empty subset of 0..6: {self.days}")

    def spans(self, around: dt.date, tz: dt.tzinfo) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        """The (start, end) instants of the occurrences starting from the day before ``around``
        up to a week after it (enough to find any current or next edge)."""
        for offset in range(-1, 8):
            day = around + offset * _DAY
            if day.weekday() not in self.days:
                continue
            start = dt.datetime.combine(day, self.start, tz)
            end_day = day if self.end > self.start else day + _DAY
            yield start, dt.datetime.combine(end_day, self.end, tz)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named set of weekly windows in one time zone (IANA name, default UTC)."""

    token: str
    windows: tuple[WeeklyWindow, ...] = ()
    timezone: str = "UTC"

    def _spans(self, at: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        tz = ZoneInfo(self.timezone)
        local = at.astimezone(tz).date()
        return [span for w in self.windows for span in w.spans(local, tz)]

    def active_at(self, at: dt.datetime) -> bool:
        return any(start <= at < end for start, end in self._spans(at))

    def next_change(self, at: dt.datetime) -> dt.datetime | None:
        """The first instant after ``at`` where :meth:`active_at` differs (None: never; a
        weekly schedule that does not change within a week never does)."""
        spans = self._spans(at)
        now = any(start <= at < end for start, end in spans)
        horizon = at + 7 * _DAY
        edges = sorted({t for span in spans for t in span if at < t <= horizon})
        for edge in edges:
            if any(start <= edge < end for start, end in spans) != now:
                return edge
        return None


class ScheduleRegistry:
    """The schedules of this device and their current on/off state.

    All calls happen on the event loop (APScheduler's AsyncIOScheduler runs its jobs there);
    listeners are told about every switch.
    """

    def __init__(
        self,
        scheduler: BaseScheduler | None = None,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._scheduler = scheduler
        self._clock = clock
        self._schedules: dict[str, Schedule] = {}
        self._active: dict[str, bool] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def put(self, schedule: Schedule) -> None:
        """Add or replace a schedule; its current state takes effect at once."""
        self._schedules[schedule.token] = schedule
        self._evaluate(schedule.token)

    def remove(self, token: str) -> None:
        """Forget a schedule: jobs referring to it stop recording."""
        if self._schedules.pop(token, None) is not None:
            self._evaluate(token)

    def get(self, token: str) -> Schedule | None:
        return self._schedules.get(token)

    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())

    def is_active(self, token: str) -> bool:
        """True while the schedule exists and one of its windows is open."""
        return self._active.get(token, False)

    def close(self) -> None:
        """Disarm every timer (daemon shutdown)."""
        for token in self._schedules:
            self._disarm(token)

    def _evaluate(self, token: str) -> None:
        """Recompute one schedule's state, re-arm its timer, tell listeners on a change."""
        schedule = self._schedules.get(token)
        now = self._clock()
        active = schedule is not None and schedule.active_at(now)
        self._disarm(token)
        if schedule is not None:
            edge = schedule.next_change(now)
            if edge is not None and self._scheduler is not None:
                self._scheduler.add_job(
                    self._fire,
                    "date",
                    run_date=edge,
                    args=(token,),
                    id=self._job_id(token),
                    replace_existing=True,
                    misfire_grace_time=None,
                )
        was_active = self._active.pop(token, False)
        if schedule is not None:
            self._active[token] = active
        if was_active == active:
            return
        log.info("schedule %s is now %s", token, "active" if active else "inactive")
        for listener in list(self._listeners):
            try:
                listener(token, active)
            except Exception:
                log.exception("schedule listener failed")

    async def _fire(self, token: str) -> None:
        """The timer at a schedule's edge; a coroutine so APScheduler runs it on the loop."""
        self._evaluate(token)

    def _disarm(self, token: str) -> None:
        if self._scheduler is None:
            return
        job = self._scheduler.get_job(self._job_id(token))
        if job is not None:
            job.remove()

    @staticmethod
    def _job_id(token: str) -> str:
        return f"schedule:{token}"
