from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nvr.protocol.errors import ProtocolError
from nvr.protocol.ntp import (
    NTP_UNIX_EPOCH_OFFSET,
    UNIX_US_MAX,
    UNIX_US_MIN,
    NtpError,
    datetime_to_ntp,
    datetime_to_unix_us,
    join_ntp,
    ntp_middle32,
    ntp_short_to_us,
    ntp_to_datetime,
    ntp_to_unix_us,
    split_ntp,
    unix_us_to_datetime,
    unix_us_to_ntp,
    us_to_ntp_short,
)

unix_us = st.integers(min_value=UNIX_US_MIN, max_value=UNIX_US_MAX - 1)
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


def test_epoch_offset() -> None:
    assert unix_us_to_ntp(0) == NTP_UNIX_EPOCH_OFFSET << 32
    assert ntp_to_unix_us(NTP_UNIX_EPOCH_OFFSET << 32) == 0


def test_replay_worked_example() -> None:
    # replay.md B.5: 0xeb6d5ca4.70a3d800 is 2025-03-01T10:15:00.440Z (fraction rounded there).
    dt = ntp_to_datetime(0xEB6D5CA4_70A3D800)
    assert dt == datetime(2025, 3, 1, 10, 15, 0, 440000, tzinfo=UTC)
    exact = datetime_to_ntp(dt)
    assert exact >> 32 == 0xEB6D5CA4
    assert exact & 0xFFFFFFFF == 0x70A3D70A  # 0.44 * 2**32, rounded to nearest


def test_half_second_and_rounding() -> None:
    assert unix_us_to_ntp(500_000) & 0xFFFFFFFF == 0x8000_0000
    # one fraction unit below half a microsecond rounds down, at half rounds up
    base = NTP_UNIX_EPOCH_OFFSET << 32
    half_us_units = (1 << 32) // 2_000_000  # 2147 units ~ 0.49999 us
    assert ntp_to_unix_us(base + half_us_units) == 0
    assert ntp_to_unix_us(base + half_us_units + 1) == 1


def test_era_pivot() -> None:
    # 2036-02-07T06:28:16Z is where the 32-bit seconds field wraps to 0 (era 1).
    wrap = datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)
    assert datetime_to_ntp(wrap) == 0
    assert ntp_to_datetime(1 << 32) == wrap + timedelta(seconds=1)
    later = datetime(2050, 1, 1, tzinfo=UTC)
    assert ntp_to_datetime(datetime_to_ntp(later)) == later
    assert ntp_to_datetime(0x8000_0000 << 32) == datetime(1968, 1, 20, 3, 14, 8, tzinfo=UTC)


def test_out_of_range() -> None:
    with pytest.raises(NtpError):
        unix_us_to_ntp(UNIX_US_MAX)
    with pytest.raises(NtpError):
        unix_us_to_ntp(UNIX_US_MIN - 1)
    with pytest.raises(NtpError):
        ntp_to_unix_us(-1)
    with pytest.raises(NtpError):
        ntp_to_unix_us(1 << 64)
    with pytest.raises(ProtocolError):
        datetime_to_ntp(datetime(2025, 1, 1))  # naive
    with pytest.raises(NtpError):
        unix_us_to_datetime(10**20)


def test_aware_non_utc() -> None:
    cet = timezone(timedelta(hours=1))
    dt = datetime(2025, 3, 1, 11, 15, tzinfo=cet)
    assert datetime_to_unix_us(dt) == datetime_to_unix_us(datetime(2025, 3, 1, 10, 15, tzinfo=UTC))
    assert unix_us_to_datetime(datetime_to_unix_us(dt)).tzinfo is UTC


def test_split_join_middle() -> None:
    assert split_ntp(0x11223344_55667788) == (0x11223344, 0x55667788)
    assert join_ntp(0x11223344, 0x55667788) == 0x11223344_55667788
    assert ntp_middle32(0x11223344_55667788) == 0x33445566
    with pytest.raises(NtpError):
        join_ntp(1 << 32, 0)


def test_ntp_short() -> None:
    assert us_to_ntp_short(1_000_000) == 0x10000
    assert us_to_ntp_short(500_000) == 0x8000
    assert ntp_short_to_us(0x18000) == 1_500_000
    assert us_to_ntp_short(10**12) == 0xFFFFFFFF
    with pytest.raises(NtpError):
        us_to_ntp_short(-1)


@given(unix_us)
def test_unix_round_trip_exact(us: int) -> None:
    ntp = unix_us_to_ntp(us)
    assert 0 <= ntp < 1 << 64
    assert ntp_to_unix_us(ntp) == us


@given(u64)
def test_ntp_round_trip_within_half_us(ntp: int) -> None:
    # The last half microsecond before the 2104 rollover rounds to the (exclusive) era end.
    assume(ntp_to_unix_us(ntp) < UNIX_US_MAX)
    back = unix_us_to_ntp(ntp_to_unix_us(ntp))
    diff = (back - ntp + (1 << 63)) % (1 << 64) - (1 << 63)
    assert abs(diff) <= (1 << 32) // 2_000_000 + 1


@given(unix_us)
def test_datetime_round_trip(us: int) -> None:
    dt = unix_us_to_datetime(us)
    assert dt.tzinfo is UTC
    assert datetime_to_unix_us(dt) == us
    assert ntp_to_datetime(unix_us_to_ntp(us)) == dt


@given(unix_us, unix_us)
def test_monotonic(a: int, b: int) -> None:
    if a < b:
        na, nb = unix_us_to_ntp(a), unix_us_to_ntp(b)
        # Ordering holds once the era is accounted for.
        ea = na + (1 << 64 if na >> 63 == 0 else 0)
        eb = nb + (1 << 64 if nb >> 63 == 0 else 0)
        assert ea < eb
