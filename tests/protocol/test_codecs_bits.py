"""The bit reader, Exp-Golomb codes and RBSP unescaping shared by every codec parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.bits import BitReader, unescape_rbsp
from nvr.protocol.errors import CodecError, Mp4Error, PayloadError
from tests.protocol.codec_bitstreams import BitWriter, escape


def test_codec_errors_are_payload_and_mp4_errors() -> None:
    assert issubclass(CodecError, PayloadError) and issubclass(CodecError, Mp4Error)


@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 2), st.integers(-(1 << 30), 1 << 30))))
def test_exp_golomb_round_trip(values: list[tuple[int, int]]) -> None:
    w = BitWriter()
    for u, s in values:
        w.ue(u).se(s)
    r = BitReader(w.rbsp())
    assert [(r.ue(), r.se()) for _ in values] == values


def test_signed_exp_golomb_order() -> None:
    r = BitReader(BitWriter().ue(0).ue(1).ue(2).ue(3).ue(4).rbsp())
    assert [r.se() for _ in range(5)] == [0, 1, -1, 2, -2]


@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, (1 << 40) - 1)), max_size=20))
def test_fixed_width_fields_and_position(fields: list[tuple[int, int]]) -> None:
    w = BitWriter()
    for n, value in fields:
        w.u(n, value % (1 << n))
    r = BitReader(w.bytes())
    for n, value in fields:
        start = r.pos
        assert r.u(n) == value % (1 << n) and r.pos == start + n
    assert r.remaining == -len(w.bits) % 8


def test_bit_reader_limits() -> None:
    r = BitReader(b"\xa5")
    assert (r.u(0), r.u(3), r.u(5), r.remaining) == (0, 5, 5, 0)
    with pytest.raises(CodecError, match="truncated"):
        r.u(1)
    with pytest.raises(CodecError, match="truncated"):
        BitReader(b"\x01").skip(9)
    assert BitReader(b"\x80", 0).flag() and not BitReader(b"\x80", 1).flag()


def test_bit_reader_errors_name_what_is_read() -> None:
    with pytest.raises(CodecError, match="x: truncated"):
        BitReader(b"\xff", what="x").u(9)
    with pytest.raises(CodecError, match="longer than 32 bits"):
        BitReader(bytes(8)).ue()


def _unescape_reference(nal: bytes) -> bytes:
    """7.3.1 read literally: a 03 after two zero bytes is emulation prevention."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


_nal_bytes = st.lists(st.sampled_from([0, 0, 0, 1, 2, 3, 3, 0x65, 0xFF]), max_size=64).map(bytes)


@given(_nal_bytes)
def test_unescape_matches_the_standard(nal: bytes) -> None:
    assert unescape_rbsp(nal) == _unescape_reference(nal)


@given(st.binary(max_size=64) | _nal_bytes)
def test_unescape_inverts_escape(rbsp: bytes) -> None:
    assert unescape_rbsp(escape(rbsp)) == rbsp
    assert unescape_rbsp(memoryview(escape(rbsp))) == rbsp


def test_unescape_rbsp() -> None:
    assert (
        unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03")
        == b"\x00\x00\x01\x00\x00\x00\x00"
    )
    assert unescape_rbsp(b"\x00\x00\x03\x03") == b"\x00\x00\x03"
