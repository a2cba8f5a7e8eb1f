"""xs:dateTime ↔ integer microseconds, exactly (no float seconds on the way)."""

from __future__ import annotations

import datetime as dt
from typing import Final

from nvr.events import utc_text

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US: Final = dt.timedelta(microseconds=1)


def datetime_us(moment: dt.datetime) -> int:
    """Microseconds since the epoch; a naive datetime is UTC (the ONVIF rule)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - EPOCH) // _US


def parse_us(text: str) -> int:
    """An xs:dateTime (``Z``, an offset or no zone) as microseconds; ValueError if it is not."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return datetime_us(dt.datetime.fromisoformat(value))


def utc_datetime(time_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=time_us)


format_us = utc_text
"""UTC with ``Z``; milliseconds or microseconds only when there are any."""
