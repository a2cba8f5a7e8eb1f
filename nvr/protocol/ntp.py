"""Exact conversions between NTP timestamps, Unix microseconds and UTC datetimes.

The store keeps capture times as integer Unix microseconds; RTCP sender reports and the ONVIF
replay extension carry 64-bit NTP timestamps (seconds since 1900 in the high 32 bits, a binary
fraction of a second in the low 32 bits). Every conversion here is integer arithmetic so that
times never drift through float rounding.

Rounding: both directions round to the nearest representable value, halves away from minus
infinity (i.e. "round half up"). Because one NTP fraction unit (2^-32 s, about 233 ps) is far
finer than a microsecond, ``ntp_to_unix_us(unix_us_to_ntp(x)) == x`` for every ``x`` in range.

Eras: the 32-bit seconds field wraps on 2036-02-07. Following RFC 4330 section 3, a seconds
value with the top bit set is read as era 0 (1968-2036) and one with the top bit clear as era 1
(2036-2104), so the usable range is 1968-01-20T03:14:08Z up to (excluding) 2104-02-26T09:42:24Z.
An NTP value of 0 conventionally means "no time" (for example in replay sender reports, ONVIF
replay B.9); callers must test for it before converting, since it decodes to 2036-02-07.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nvr.protocol.errors import ProtocolError

__all__ = [
    "NTP_UNIX_EPOCH_OFFSET",
    "UNIX_US_MAX",
    "UNIX_US_MIN",
    "NtpError",
    "datetime_to_ntp",
    "datetime_to_unix_us",
    "join_ntp",
    "ntp_middle32",
    "ntp_short_to_us",
    "ntp_to_datetime",
    "ntp_to_unix_us",
    "split_ntp",
    "unix_us_to_datetime",
    "unix_us_to_ntp",
    "us_to_ntp_short",
]


class NtpError(ProtocolError):
    """An NTP timestamp or time value outside what can be represented."""


#: Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
NTP_UNIX_EPOCH_OFFSET = 2_208_988_800

_US_PER_S = 1_000_000
_OFFSET_US = NTP_UNIX_EPOCH_OFFSET * _US_PER_S
_TWO32 = 1 << 32
_TWO64 = 1 << 64
_HALF32 = 1 << 31
# Era 0 covers NTP seconds 0x80000000..0xFFFFFFFF, era 1 covers 0x00000000..0x7FFFFFFF.
_ERA_PIVOT_S = 0x8000_0000
#: Smallest Unix time (µs) representable under the RFC 4330 era pivot.
UNIX_US_MIN = (_ERA_PIVOT_S - NTP_UNIX_EPOCH_OFFSET) * _US_PER_S
#: One past the largest Unix time (µs) representable under the RFC 4330 era pivot.
UNIX_US_MAX = (_TWO32 + _ERA_PIVOT_S - NTP_UNIX_EPOCH_OFFSET) * _US_PER_S

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_u64(ntp: int) -> None:
    if not 0 <= ntp < _TWO64:
        raise NtpError(f"NTP timestamp {ntp} is not an unsigned 64-bit value")


def split_ntp(ntp: int) -> tuple[int, int]:
    """Split a 64-bit NTP timestamp into its (seconds, fraction) 32-bit halves."""
    _check_u64(ntp)
    return ntp >> 32, ntp & 0xFFFF_FFFF


def join_ntp(seconds: int, fraction: int) -> int:
    """Join 32-bit NTP seconds and fraction into one 64-bit value."""
    if not 0 <= seconds < _TWO32 or not 0 <= fraction < _TWO32:
        raise NtpError(f"NTP seconds {seconds} / fraction {fraction} out of 32-bit range")
    return (seconds << 32) | fraction


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR field of an RTCP report block."""
    _check_u64(ntp)
    return (ntp >> 16) & 0xFFFF_FFFF


def unix_us_to_ntp(unix_us: int) -> int:
    """Unix time in integer microseconds to a 64-bit NTP timestamp (nearest 2^-32 s)."""
    if not UNIX_US_MIN <= unix_us < UNIX_US_MAX:
        raise NtpError(f"Unix time {unix_us} µs is outside the NTP era range 1968-2104")
    full = (((unix_us + _OFFSET_US) << 32) + _US_PER_S // 2) // _US_PER_S
    return full % _TWO64


def ntp_to_unix_us(ntp: int) -> int:
    """A 64-bit NTP timestamp to Unix time in integer microseconds (nearest µs)."""
    _check_u64(ntp)
    if ntp >> 32 < _ERA_PIVOT_S:
        ntp += _TWO64
    return ((ntp * _US_PER_S + _HALF32) >> 32) - _OFFSET_US


def unix_us_to_datetime(unix_us: int) -> datetime:
    """Unix microseconds to an aware UTC datetime (exact)."""
    try:
        return _UNIX_EPOCH + timedelta(microseconds=unix_us)
    except OverflowError as exc:
        raise NtpError(f"Unix time {unix_us} µs is outside the datetime range") from exc


def datetime_to_unix_us(dt: datetime) -> int:
    """An aware datetime to Unix microseconds (exact); naive datetimes are refused."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise NtpError(f"datetime {dt.isoformat()} has no timezone; times must be aware")
    delta = dt - _UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds


def ntp_to_datetime(ntp: int) -> datetime:
    """A 64-bit NTP timestamp to an aware UTC datetime, rounded to the nearest µs."""
    return unix_us_to_datetime(ntp_to_unix_us(ntp))


def datetime_to_ntp(dt: datetime) -> int:
    """An aware datetime to a 64-bit NTP timestamp."""
    return unix_us_to_ntp(datetime_to_unix_us(dt))


def us_to_ntp_short(duration_us: int) -> int:
    """A non-negative duration in µs to 16.16 fixed-point seconds (RTCP DLSR units).

    Rounds to nearest and saturates at 0xFFFFFFFF (about 18.2 hours), since a DLSR that large
    only says "very long ago" anyway.
    """
    if duration_us < 0:
        raise NtpError(f"duration {duration_us} µs is negative")
    value = ((duration_us << 16) + _US_PER_S // 2) // _US_PER_S
    return min(value, 0xFFFF_FFFF)


def ntp_short_to_us(value: int) -> int:
    """16.16 fixed-point seconds (RTCP DLSR/RTT units) to µs, rounded to nearest."""
    if not 0 <= value < _TWO32:
        raise NtpError(f"short NTP value {value} is not an unsigned 32-bit value")
    return (value * _US_PER_S + (1 << 15)) >> 16
