"""Get/SetSystemDateAndTime without touching the host clock.

The daemon runs on a host whose clock NTP (or the operator) keeps; an NVR process must not
step it. So SetSystemDateAndTime stores the time zone (validated POSIX TZ), the daylight
savings flag and the date/time type, and accepts ``Manual`` only with a UTCDateTime that
already agrees with our clock (within :data:`MANUAL_TOLERANCE`): that is what a conformance
tool sends — the current time — and it succeeds; asking for a different time gets
``env:Receiver/ter:ActionNotSupported``, which says truthfully that we cannot set clocks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from nvr.onvif import types_tt as tt
from nvr.onvif.device_settings import DateTimeSettings
from nvr.onvif.faults import OnvifFault
from nvr.onvif.posix_tz import InvalidTimeZone, parse

MANUAL_TOLERANCE: Final = 60.0
"""Seconds a Manual UTCDateTime may differ from our clock and still be "already set"."""


def _tt_datetime(value: datetime) -> tt.DateTime:
    return tt.DateTime(
        Time=tt.Time(Hour=value.hour, Minute=value.minute, Second=value.second),
        Date=tt.Date(Year=value.year, Month=value.month, Day=value.day),
    )


def system_date_time(settings: DateTimeSettings, now: float) -> tt.SystemDateTime:
    utc = datetime.fromtimestamp(int(now), UTC)
    try:
        offset = parse(settings.time_zone).utc_offset(utc, settings.daylight_savings)
    except InvalidTimeZone:  # stored values are validated; be safe with hand edits
        offset = timedelta(0)
    return tt.SystemDateTime(
        DateTimeType=settings.date_time_type,
        DaylightSavings=settings.daylight_savings,
        TimeZone=tt.TimeZone(TZ=settings.time_zone),
        UTCDateTime=_tt_datetime(utc),
        LocalDateTime=_tt_datetime(utc + offset),
    )


def _invalid_date(reason: str) -> OnvifFault:
    return OnvifFault.sender("InvalidArgVal", "InvalidDateTime", reason)


def _requested_utc(value: Any) -> datetime:
    time, date = getattr(value, "Time", None), getattr(value, "Date", None)
    parts = [
        getattr(date, "Year", None),
        getattr(date, "Month", None),
        getattr(date, "Day", None),
        getattr(time, "Hour", None),
        getattr(time, "Minute", None),
        getattr(time, "Second", None),
    ]
    if any(p is None for p in parts):
        raise _invalid_date("UTCDateTime needs Time (Hour, Minute, Second) and Date")
    try:
        return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]
    except (ValueError, OverflowError):
        raise _invalid_date("UTCDateTime is not a valid date and time") from None


def apply_set(
    current: DateTimeSettings,
    *,
    date_time_type: str,
    daylight_savings: bool,
    time_zone: Any,
    utc_date_time: Any,
    now: float,
) -> DateTimeSettings:
    """The settings after a SetSystemDateAndTime request, or the fault it deserves."""
    zone = current.time_zone
    if time_zone is not None:
        zone = (getattr(time_zone, "TZ", None) or "").strip()
        try:
            parse(zone)
        except InvalidTimeZone as exc:
            raise OnvifFault.sender("InvalidArgVal", "InvalidTimeZone", str(exc)) from None
    if date_time_type == "Manual":
        if utc_date_time is None:
            raise _invalid_date("DateTimeType Manual needs UTCDateTime")
        wanted = _requested_utc(utc_date_time)
        if abs(wanted.timestamp() - now) > MANUAL_TOLERANCE:
            raise OnvifFault.receiver(
                "ActionNotSupported",
                "this recorder keeps the host clock (set it with NTP); it cannot be set to "
                "another time over ONVIF",
            )
    return DateTimeSettings(date_time_type, bool(daylight_savings), zone)
