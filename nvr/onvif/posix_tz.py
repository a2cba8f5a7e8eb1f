"""POSIX TZ strings (IEEE 1003.1 §8.3), the time-zone format of ONVIF's tt:TimeZone.

``std offset [dst [offset] [,start[/time],end[/time]]]``, e.g. ``CET-1CEST,M3.5.0,M10.5.0/3``.
Offsets count hours *west* of UTC (``CET-1`` is UTC+1). We validate what a client sets (an
invalid string is ``ter:InvalidTimeZone``) and compute the local time GetSystemDateAndTime
reports; the OS clock and zone are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

_NAME: Final = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)"
_OFFSET: Final = r"[+-]?\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?"
_TIME: Final = r"[+-]?\d{1,3}(?::\d{1,2}(?::\d{1,2})?)?"
_DATE: Final = r"(?:J\d{1,3}|\d{1,3}|M\d{1,2}\.\d\.\d)"
_TZ_RE: Final = re.compile(
    rf"^(?P<std>{_NAME})(?P<std_offset>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dst_offset>{_OFFSET})?"
    rf"(?:,(?P<start>{_DATE})(?:/(?P<start_time>{_TIME}))?"
    rf",(?P<end>{_DATE})(?:/(?P<end_time>{_TIME}))?)?)?$"
)
# Without a rule POSIX leaves DST dates to the implementation; use the common US rule.
_DEFAULT_RULE: Final = ("M3.2.0", 7200, "M11.1.0", 7200)


class InvalidTimeZone(ValueError):
    """Not a POSIX TZ string."""


@dataclass(frozen=True, slots=True)
class PosixTz:
    std: str
    std_offset: int
    """Seconds west of UTC."""
    dst: str | None = None
    dst_offset: int = 0
    start: str = ""
    start_time: int = 7200
    end: str = ""
    end_time: int = 7200

    def utc_offset(self, when: datetime, daylight_savings: bool = True) -> timedelta:
        """Local time minus UTC at the instant ``when`` (naive values are UTC)."""
        if self.dst is not None and daylight_savings and self._in_dst(when):
            return timedelta(seconds=-self.dst_offset)
        return timedelta(seconds=-self.std_offset)

    def _in_dst(self, when: datetime) -> bool:
        utc = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
        year = (utc - timedelta(seconds=self.std_offset)).year
        # The start is given in standard local time, the end in daylight local time.
        start = _transition(year, self.start, self.start_time) + timedelta(seconds=self.std_offset)
        end = _transition(year, self.end, self.end_time) + timedelta(seconds=self.dst_offset)
        if start < end:
            return start <= utc < end
        return not end <= utc < start


def _seconds(text: str | None, default: int, limit: int) -> int:
    if text is None:
        return default
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    hours, minutes, seconds = [*parts, 0, 0][:3]
    if hours > limit or minutes > 59 or seconds > 59:
        raise InvalidTimeZone(f"time {text!r} out of range")
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _check_date(rule: str) -> None:
    if rule.startswith("J"):
        ok = 1 <= int(rule[1:]) <= 365
    elif rule.startswith("M"):
        month, week, day = (int(p) for p in rule[1:].split("."))
        ok = 1 <= month <= 12 and 1 <= week <= 5 and 0 <= day <= 6
    else:
        ok = 0 <= int(rule) <= 365
    if not ok:
        raise InvalidTimeZone(f"date rule {rule!r} out of range")


def _transition(year: int, rule: str, seconds: int) -> datetime:
    """The (naive, local) moment a rule names in ``year``."""
    if rule.startswith("J"):
        day = int(rule[1:])
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        date = datetime(year, 1, 1) + timedelta(days=day - 1 + (1 if leap and day >= 60 else 0))
    elif rule.startswith("M"):
        month, week, weekday = (int(p) for p in rule[1:].split("."))
        first = datetime(year, month, 1)
        shift = (weekday - (first.weekday() + 1) % 7) % 7  # POSIX weekday 0 = Sunday
        date = first + timedelta(days=shift + 7 * (week - 1))
        while date.month != month:  # week 5 means "the last one"
            date -= timedelta(days=7)
    else:
        date = datetime(year, 1, 1) + timedelta(days=int(rule))
    return date + timedelta(seconds=seconds)


def parse(text: str) -> PosixTz:
    """Validate and parse a POSIX TZ string; raises :class:`InvalidTimeZone`."""
    match = _TZ_RE.match(text.strip()) if len(text) <= 128 else None
    if match is None:
        raise InvalidTimeZone(f"{text[:64]!r} is not a POSIX TZ string")
    g = match.groupdict()
    std_offset = _seconds(g["std_offset"], 0, 24)
    if g["dst"] is None:
        return PosixTz(g["std"], std_offset)
    dst_offset = _seconds(g["dst_offset"], std_offset - 3600, 24)
    start, start_time, end, end_time = _DEFAULT_RULE
    if g["start"] is not None:
        start, end = g["start"], g["end"]
        start_time = _seconds(g["start_time"], 7200, 167)
        end_time = _seconds(g["end_time"], 7200, 167)
    _check_date(start)
    _check_date(end)
    return PosixTz(g["std"], std_offset, g["dst"], dst_offset, start, start_time, end, end_time)
