"""What ``avcC`` and ``hvcC`` (ISO/IEC 14496-15) share: the version byte, lengthSizeMinusOne,
and lists of parameter-set NAL units behind 16-bit lengths."""

from __future__ import annotations

from collections.abc import Iterable

from nvr.protocol.codecs.annexb import nals_to_length_prefixed
from nvr.protocol.mp4.cursor import Cursor

LENGTH_SIZES = (1, 2, 4)  # NALUnitLength field sizes a sample may use


def check_length_size(box: str, length_size: int) -> None:
    if length_size not in LENGTH_SIZES:
        raise ValueError(f"{box}: length_size must be 1, 2 or 4")


def pack_nal_units(nals: Iterable[bytes]) -> bytes:
    """NAL units each behind its 16-bit length, as the records list them."""
    return nals_to_length_prefixed(nals, 2)


def read_version(cur: Cursor) -> None:
    if cur.u8("configurationVersion") != 1:
        raise cur.fail("unsupported configurationVersion")


def read_length_size(cur: Cursor, byte: int) -> int:
    """The NALUnitLength size from the byte holding lengthSizeMinusOne in its low bits."""
    length_size = (byte & 3) + 1
    if length_size not in LENGTH_SIZES:
        raise cur.fail("lengthSizeMinusOne of 2 is not allowed")
    return length_size


def read_nal_units(cur: Cursor, count: int, what: str) -> tuple[bytes, ...]:
    """``count`` NAL units each behind its 16-bit length."""
    return tuple(cur.take(cur.u16(f"{what} length"), what) for _ in range(count))
