"""xs:duration and xs:dateTime as the Event service reads them (Timeout, termination times).

WS-BaseNotification's AbsoluteOrRelativeTimeType is either; Core §9.1 requires both forms.
Years and months have no fixed length: they count as 365 and 30 days, which only matters for
requests we clamp anyway.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

_DURATION: Final = re.compile(
    r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?|\.\d+)S)?)?$"
)
_FACTORS: Final = (365 * 86400, 30 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """Seconds of an xs:duration (negative if signed); ValueError if it is not one."""
    text = text.strip()
    match = _DURATION.match(text)
    if match is None or text.endswith(("P", "T")):
        raise ValueError(f"not an xs:duration: {text[:40]!r}")
    parts = match.groups()[1:]
    if all(p is None for p in parts):
        raise ValueError(f"not an xs:duration: {text[:40]!r}")
    seconds = sum(float(p) * f for p, f in zip(parts, _FACTORS, strict=True) if p is not None)
    return -seconds if match.group(1) else seconds


def parse_datetime(text: str) -> float:
    """Epoch seconds of an xs:dateTime; no zone means UTC (the ONVIF rule)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def parse_absolute_or_relative(text: str, now: float) -> float:
    """Epoch seconds of a wsnt:AbsoluteOrRelativeTimeType value."""
    value = text.strip()
    if value.startswith(("P", "-P")):
        return now + parse_duration(value)
    return parse_datetime(value)


def format_duration(seconds: float) -> str:
    return f"PT{seconds:g}S"
