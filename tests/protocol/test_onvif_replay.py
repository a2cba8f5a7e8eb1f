from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.ntp import datetime_to_ntp, ntp_to_datetime
from nvr.protocol.onvif_replay import (
    FLAG_C,
    FLAG_D,
    FLAG_E,
    FLAG_T,
    JPEG_PROFILE_FIRST,
    JPEG_PROFILE_NEXT,
    REPLAY_PROFILE,
    OnvifReplayError,
    ReplayExtension,
    build_replay_header,
    pack_replay_words,
    parse_replay_extension,
)
from nvr.protocol.rtp import RtpExtension, build_rtp, parse_rtp

# replay.md B.5 worked example.
EXAMPLE = bytes.fromhex("90601267002dc6c01234abcdabac0003eb6d5ca470a3d800a0050000") + b"\x65\x88"


def test_worked_example() -> None:
    ext = ReplayExtension.from_packet(parse_rtp(EXAMPLE))
    assert ext is not None
    assert ntp_to_datetime(ext.ntp_timestamp) == datetime(2025, 3, 1, 10, 15, 0, 440000, tzinfo=UTC)
    assert ext.clean_point and ext.discontinuity
    assert not ext.end_of_block and not ext.terminal
    assert ext.cseq == 5
    assert ext.flags == 0xA0
    assert ext.extra == b""
    assert ext.to_data() == EXAMPLE[16:28]


def test_build_packet_like_the_example() -> None:
    ntp = datetime_to_ntp(datetime(2025, 3, 1, 10, 15, 0, 440000, tzinfo=UTC))
    ext = ReplayExtension(ntp, clean_point=True, discontinuity=True, cseq=5)
    raw = build_rtp(96, 4711, 3000000, 0x1234ABCD, b"\x65\x88", extension=ext.to_extension())
    # identical except for the NTP fraction, which the example rounded
    assert raw[:20] == EXAMPLE[:20]
    assert raw[24:] == EXAMPLE[24:]


def test_flag_bits() -> None:
    assert (FLAG_C, FLAG_E, FLAG_D, FLAG_T) == (0x80, 0x40, 0x20, 0x10)
    for flag, attr in [
        (FLAG_C, "clean_point"),
        (FLAG_E, "end_of_block"),
        (FLAG_D, "discontinuity"),
        (FLAG_T, "terminal"),
    ]:
        ext = parse_replay_extension(REPLAY_PROFILE, pack_replay_words(1, flag, 0))
        assert getattr(ext, attr)
        assert ext.flags == flag


def test_cseq_low_byte_and_reserved_ignored() -> None:
    assert pack_replay_words(0, 0, 0x1234)[9] == 0x34
    data = bytes(8) + b"\x8f\x07\xff\xff"  # reserved nibble and padding set: ignored
    ext = parse_replay_extension(REPLAY_PROFILE, data)
    assert ext.clean_point and ext.cseq == 7 and ext.flags == FLAG_C
    assert ext.to_data() == bytes(8) + b"\x80\x07\x00\x00"


def test_errors() -> None:
    with pytest.raises(OnvifReplayError, match="0xABAC"):
        parse_replay_extension(0xFFD8, bytes(12))
    with pytest.raises(OnvifReplayError, match="at least 12"):
        parse_replay_extension(REPLAY_PROFILE, bytes(8))
    with pytest.raises(OnvifReplayError, match="whole"):
        parse_replay_extension(REPLAY_PROFILE, bytes(14))
    with pytest.raises(OnvifReplayError):
        pack_replay_words(0, 0x01, 0)
    with pytest.raises(OnvifReplayError):
        pack_replay_words(1 << 64, 0, 0)
    with pytest.raises(OnvifReplayError):
        ReplayExtension(0, extra=b"abc").to_data()


def test_not_a_replay_packet() -> None:
    assert ReplayExtension.from_packet(parse_rtp(build_rtp(96, 1, 2, 3, b"x"))) is None
    other = build_rtp(96, 1, 2, 3, b"x", extension=RtpExtension(0xBEDE, bytes(4)))
    assert ReplayExtension.from_packet(parse_rtp(other)) is None


def test_jpeg_extension_appended() -> None:
    markers = b"\xff\xdd\x00\x04\x00\x08"  # DRI segment, 6 bytes -> padded to 8 with 0xFF
    jpeg = ReplayExtension.jpeg_words(JPEG_PROFILE_FIRST, markers)
    assert jpeg[:4] == b"\xff\xd8\x00\x02"
    ext = ReplayExtension(123, clean_point=True, cseq=9, extra=jpeg)
    raw = build_rtp(26, 1, 2, 3, b"scan", extension=ext.to_extension())
    pkt = parse_rtp(raw)
    assert pkt.extension is not None
    assert len(pkt.extension.data) // 4 == 3 + 1 + 2  # length covers both extensions
    back = ReplayExtension.from_packet(pkt)
    assert back == ext
    assert back.jpeg_extension() == (JPEG_PROFILE_FIRST, markers + b"\xff\xff")


def test_jpeg_extension_detection() -> None:
    assert ReplayExtension(0).jpeg_extension() is None
    assert ReplayExtension(0, extra=b"\x12\x34\x00\x00").jpeg_extension() is None
    with pytest.raises(OnvifReplayError, match="claims 5 words"):
        ReplayExtension(0, extra=b"\xff\xff\x00\x05" + bytes(4)).jpeg_extension()
    with pytest.raises(OnvifReplayError):
        ReplayExtension.jpeg_words(0xABCD, b"")


@given(
    st.builds(
        ReplayExtension,
        st.integers(0, (1 << 64) - 1),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.integers(0, 255),
        st.integers(0, 6).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    )
)
def test_round_trip(ext: ReplayExtension) -> None:
    data = ext.to_data()
    assert len(data) == 12 + len(ext.extra)
    assert parse_replay_extension(REPLAY_PROFILE, data) == ext
    pkt = parse_rtp(memoryview(build_rtp(96, 0, 0, 0, b"p", extension=ext.to_extension())))
    assert ReplayExtension.from_packet(pkt) == ext


@given(st.sampled_from([JPEG_PROFILE_FIRST, JPEG_PROFILE_NEXT]), st.binary(max_size=100))
def test_jpeg_round_trip(profile: int, markers: bytes) -> None:
    ext = ReplayExtension(1, extra=ReplayExtension.jpeg_words(profile, markers))
    got = parse_replay_extension(REPLAY_PROFILE, ext.to_data()).jpeg_extension()
    assert got is not None
    assert got[0] == profile
    assert got[1][: len(markers)] == markers
    assert set(got[1][len(markers) :]) <= {0xFF}


@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 15).map(lambda f: f << 4),
    st.integers(0, 0xFFFF),
    st.booleans(),
    st.binary(max_size=40),
)
def test_fast_header_matches_generic_build(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    ntp: int,
    flags: int,
    cseq: int,
    marker: bool,
    payload: bytes,
) -> None:
    header = build_replay_header(pt, seq, ts, ssrc, ntp, flags, cseq, marker=marker)
    assert len(header) == 28
    ext = parse_replay_extension(REPLAY_PROFILE, pack_replay_words(ntp, flags, cseq))
    generic = build_rtp(pt, seq, ts, ssrc, payload, marker=marker, extension=ext.to_extension())
    assert header + payload == generic
    pkt = parse_rtp(header + payload)
    assert pkt.marker == marker and pkt.payload == payload
    assert ReplayExtension.from_packet(pkt) == ext


def test_fast_header_errors() -> None:
    with pytest.raises(OnvifReplayError):
        build_replay_header(128, 0, 0, 0, 0, 0, 0)
    with pytest.raises(OnvifReplayError):
        build_replay_header(96, 0, 0, 0, 0, 0x08, 0)
    with pytest.raises(OnvifReplayError):
        build_replay_header(96, 1 << 16, 0, 0, 0, 0, 0)
    with pytest.raises(OnvifReplayError):
        build_replay_header(96, 0, 0, 0, 1 << 64, 0, 0)
