from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.rtp import (
    ExtensionElement,
    JitterEstimator,
    RtpError,
    RtpExtension,
    RtpPacket,
    SeqStatus,
    SequenceTracker,
    TimestampUnwrapper,
    build_header_extensions,
    build_rtp,
    pack_rtp_into,
    parse_header_extensions,
    parse_rtp,
    rtp_packet_size,
)

# replay.md B.5 worked example (fixed header + 0xABAC extension) followed by a payload.
EXAMPLE = (
    bytes.fromhex("90601267002dc6c01234abcdabac0003eb6d5ca470a3d800a0050000") + b"\x7c\x85payload"
)


def test_parse_worked_example() -> None:
    p = parse_rtp(EXAMPLE)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc) == (96, 4711, 3000000, 0x1234ABCD)
    assert not p.marker
    assert p.csrcs == ()
    assert p.padding == 0
    assert p.extension is not None
    assert p.extension.profile == 0xABAC
    assert bytes(p.extension.data) == bytes.fromhex("eb6d5ca470a3d800a0050000")
    assert p.payload == b"\x7c\x85payload"
    assert p.to_bytes() == EXAMPLE


def test_parse_memoryview_is_zero_copy() -> None:
    buf = bytearray(EXAMPLE)
    p = parse_rtp(memoryview(buf))
    assert isinstance(p.payload, memoryview)
    buf[-1] = ord("X")
    assert bytes(p.payload).endswith(b"X")


def test_marker_csrc_padding() -> None:
    raw = build_rtp(26, 65535, 0xFFFFFFFF, 1, b"jpeg", marker=True, csrcs=(7, 8, 9), padding=4)
    assert raw[0] == 0x80 | 0x20 | 3
    assert raw[1] == 0x80 | 26
    assert raw[-1] == 4 and raw[-4:-1] == b"\0\0\0"
    p = parse_rtp(raw)
    assert p.marker and p.csrcs == (7, 8, 9) and p.padding == 4 and p.payload == b"jpeg"


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b"", "too short"),
        (b"\x80\x60" + bytes(9), "too short"),
        (b"\x40\x60" + bytes(10), "version 1"),
        (b"\x83\x60" + bytes(10) + bytes(8), "CSRC"),
        (b"\x90\x60" + bytes(10) + b"\xab\xac", "extension header"),
        (b"\x90\x60" + bytes(10) + b"\xab\xac\x00\x03" + bytes(8), "overruns"),
        (b"\xa0\x60" + bytes(10) + b"ab\x00", "padding count 0"),
        (b"\xa0\x60" + bytes(10) + b"ab\x05", "padding count 5"),
    ],
)
def test_malformed(raw: bytes, msg: str) -> None:
    with pytest.raises(RtpError, match=msg):
        parse_rtp(raw)


def test_padding_may_consume_whole_payload() -> None:
    p = parse_rtp(b"\xa0\x60" + bytes(10) + b"\x00\x00\x03")
    assert p.payload == b"" and p.padding == 3


def test_build_rejects_bad_values() -> None:
    with pytest.raises(RtpError):
        build_rtp(128, 0, 0, 0, b"")
    with pytest.raises(RtpError):
        build_rtp(96, 65536, 0, 0, b"")
    with pytest.raises(RtpError):
        build_rtp(96, 0, 1 << 32, 0, b"")
    with pytest.raises(RtpError):
        build_rtp(96, 0, 0, 0, b"", csrcs=tuple(range(16)))
    with pytest.raises(RtpError):
        build_rtp(96, 0, 0, 0, b"", extension=RtpExtension(1, b"abc"))
    with pytest.raises(RtpError):
        build_rtp(96, 0, 0, 0, b"", padding=256)


def test_pack_into_with_interleaved_prefix() -> None:
    ext = RtpExtension(0xABAC, bytes(12))
    size = rtp_packet_size(5, extension_len=12)
    buf = bytearray(4 + size)
    end = pack_rtp_into(buf, 4, 96, 1, 2, 3, b"hello", marker=True, extension=ext)
    assert end == len(buf)
    struct.pack_into("!BBH", buf, 0, 0x24, 0, size)
    assert bytes(buf[4:]) == build_rtp(96, 1, 2, 3, b"hello", marker=True, extension=ext)
    with pytest.raises(RtpError):
        pack_rtp_into(bytearray(10), 0, 96, 1, 2, 3, b"hello")
    with pytest.raises(RtpError):
        pack_rtp_into(bytearray(14), 0, 96, 1, 2, 3, b"hello")


def test_pack_into_padding_and_csrcs() -> None:
    buf = bytearray(rtp_packet_size(3, csrc_count=2, padding=5))
    pack_rtp_into(buf, 0, 0, 9, 9, 9, b"abc", csrcs=(1, 2), padding=5)
    assert bytes(buf) == build_rtp(0, 9, 9, 9, b"abc", csrcs=(1, 2), padding=5)


payloads = st.binary(max_size=64)
ext_strategy = st.none() | st.builds(
    RtpExtension,
    st.integers(0, 0xFFFF),
    st.integers(0, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=payloads,
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=ext_strategy,
    padding=st.integers(0, 255),
)


@given(packets)
def test_round_trip(pkt: RtpPacket) -> None:
    raw = pkt.to_bytes()
    back = parse_rtp(raw)
    assert back == pkt
    assert parse_rtp(memoryview(raw)) == pkt
    assert back.to_bytes() == raw
    buf = bytearray(len(raw) + 3)
    end = pack_rtp_into(
        buf,
        3,
        pkt.payload_type,
        pkt.sequence,
        pkt.timestamp,
        pkt.ssrc,
        pkt.payload,
        marker=pkt.marker,
        csrcs=pkt.csrcs,
        extension=pkt.extension,
        padding=pkt.padding,
    )
    assert end == len(buf)
    assert bytes(buf[3:]) == raw


# ---- RFC 8285 -------------------------------------------------------------------------------


def test_rfc8285_one_byte_example() -> None:
    # id 1 len 1, padding, id 2 len 3, then padding to a word
    ext = RtpExtension(0xBEDE, bytes([0x10, 0xAA, 0x00, 0x22, 1, 2, 3, 0]))
    assert parse_header_extensions(ext) == [
        ExtensionElement(1, b"\xaa"),
        ExtensionElement(2, b"\x01\x02\x03"),
    ]


def test_rfc8285_one_byte_id15_stops() -> None:
    ext = RtpExtension(0xBEDE, bytes([0x10, 0xAA, 0xF0, 0x21, 0, 0, 0, 0]))
    assert parse_header_extensions(ext) == [ExtensionElement(1, b"\xaa")]


def test_rfc8285_two_byte() -> None:
    ext = RtpExtension(0x1003, bytes([5, 0, 0, 200, 2, 9, 8, 0]))
    assert parse_header_extensions(ext) == [
        ExtensionElement(5, b""),
        ExtensionElement(200, b"\t\x08"),
    ]


def test_rfc8285_errors() -> None:
    with pytest.raises(RtpError, match="overruns"):
        parse_header_extensions(RtpExtension(0xBEDE, bytes([0x13, 1, 2, 0])))
    with pytest.raises(RtpError, match="length byte"):
        parse_header_extensions(RtpExtension(0x1000, bytes([0, 0, 0, 7])))
    with pytest.raises(RtpError, match="not an RFC 8285"):
        parse_header_extensions(RtpExtension(0xABAC, bytes(12)))
    with pytest.raises(RtpError):
        build_header_extensions([ExtensionElement(0, b"x")])
    with pytest.raises(RtpError):
        build_header_extensions([ExtensionElement(1, b"")], two_byte=False)


elements = st.lists(
    st.builds(ExtensionElement, st.integers(1, 255), st.binary(max_size=20)), max_size=6
)


@given(elements)
def test_rfc8285_round_trip(elems: list[ExtensionElement]) -> None:
    ext = build_header_extensions(elems)
    assert len(ext.data) % 4 == 0
    assert parse_header_extensions(ext) == elems
    # and through a whole packet
    pkt = parse_rtp(build_rtp(96, 1, 2, 3, b"x", extension=ext))
    assert pkt.extension is not None
    assert parse_header_extensions(pkt.extension) == elems


@given(
    st.lists(st.builds(ExtensionElement, st.integers(1, 14), st.binary(min_size=1, max_size=16)))
)
def test_rfc8285_one_byte_chosen_when_possible(elems: list[ExtensionElement]) -> None:
    ext = build_header_extensions(elems)
    assert ext.profile == 0xBEDE
    assert parse_header_extensions(ext) == elems


# ---- sequence tracker -----------------------------------------------------------------------


def test_tracker_in_order_across_wrap() -> None:
    tr = SequenceTracker()
    seqs = [(65530 + i) & 0xFFFF for i in range(20)]
    results = [tr.update(s) for s in seqs]
    assert results[0].status is SeqStatus.FIRST
    assert all(r.status is SeqStatus.IN_ORDER for r in results[1:])
    assert [r.ext_seq for r in results] == list(range(65530, 65550))
    assert tr.max_ext == 65549
    assert tr.expected == 20 and tr.received == 20 and tr.cumulative_lost == 0


def test_tracker_gap_reorder_duplicate() -> None:
    tr = SequenceTracker()
    tr.update(65534)
    r = tr.update(2)  # 65535, 0, 1 missing
    assert r.status is SeqStatus.GAP and r.missing == 3 and r.ext_seq == 65538
    assert tr.cumulative_lost == 3
    r = tr.update(0)
    assert r.status is SeqStatus.REORDERED and r.ext_seq == 65536
    assert tr.cumulative_lost == 2
    r = tr.update(0)
    assert r.status is SeqStatus.DUPLICATE and r.ext_seq == 65536
    r = tr.update(2)
    assert r.status is SeqStatus.DUPLICATE
    assert tr.cumulative_lost == 2
    assert tr.update(3).status is SeqStatus.IN_ORDER


def test_tracker_packet_before_first() -> None:
    tr = SequenceTracker()
    tr.update(0)
    r = tr.update(65535)
    assert r.status is SeqStatus.REORDERED and r.ext_seq == -1
    assert tr.expected == 2 and tr.cumulative_lost == 0


def test_tracker_jump_and_resync() -> None:
    tr = SequenceTracker()
    for s in range(100, 110):
        tr.update(s)
    r = tr.update(40000)
    assert r.status is SeqStatus.JUMP
    assert tr.max_ext == 109  # not accepted yet
    assert tr.update(110).status is SeqStatus.IN_ORDER
    assert tr.update(40000).status is SeqStatus.JUMP
    r = tr.update(40001)
    assert r.status is SeqStatus.RESYNC
    assert r.ext_seq > 110 and r.ext_seq & 0xFFFF == 40001
    assert tr.received == 2 and tr.expected == 2 and tr.cumulative_lost == 0
    assert tr.update(40002).status is SeqStatus.IN_ORDER
    assert tr.update(40000).status is SeqStatus.DUPLICATE


def test_tracker_interval() -> None:
    tr = SequenceTracker()
    for s in (1, 2, 4, 5):
        tr.update(s)
    assert tr.take_interval() == (5, 4)
    for s in (6, 7):
        tr.update(s)
    assert tr.take_interval() == (2, 2)
    tr.reset()
    assert tr.update(9).status is SeqStatus.FIRST


@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, 50), min_size=1, max_size=300))
def test_tracker_extended_matches_truth(start: int, steps: list[int]) -> None:
    """Forward steps (gaps allowed) across any number of wraps give exact extended numbers."""
    tr = SequenceTracker()
    tr.update(start)
    truth = start
    for step in steps:
        truth += step
        r = tr.update(truth & 0xFFFF)
        assert r.ext_seq == truth
        assert r.status is (SeqStatus.IN_ORDER if step == 1 else SeqStatus.GAP)
    assert tr.max_ext == truth
    assert tr.cumulative_lost == truth - start + 1 - (len(steps) + 1)


@given(st.integers(0, 0xFFFF), st.permutations(list(range(40))), st.integers(1, 5))
def test_tracker_shuffled_window(start: int, order: list[int], dup_every: int) -> None:
    """Any arrival order of a window smaller than max_misorder: each packet counted once."""
    tr = SequenceTracker()
    first = order[0]
    for i, k in enumerate(order):
        r = tr.update((start + k) & 0xFFFF)
        assert r.ext_seq - k == ((start + first) & 0xFFFF) - first  # one consistent extension
        assert r.status is not SeqStatus.DUPLICATE
        if i % dup_every == 0:
            assert tr.update((start + k) & 0xFFFF).status is SeqStatus.DUPLICATE
    assert tr.received == 40
    assert tr.expected == 40
    assert tr.cumulative_lost == 0


# ---- timestamp unwrapper --------------------------------------------------------------------


def test_unwrapper_across_wrap_with_b_frames() -> None:
    uw = TimestampUnwrapper()
    start = 0xFFFFFFFF - 3600 * 2
    out = []
    # decode order I P B B P ... with 3600-tick frames, crossing the 32-bit wrap
    pts_frames = [0, 3, 1, 2, 6, 4, 5]
    for f in pts_frames:
        out.append(uw.unwrap((start + f * 3600) & 0xFFFFFFFF))
    assert out == [start + f * 3600 for f in pts_frames]
    assert uw.last == start + 5 * 3600


def test_unwrapper_first_value_and_negative() -> None:
    uw = TimestampUnwrapper()
    assert uw.unwrap(5) == 5
    assert uw.unwrap(0xFFFFFFFF) == -1
    uw.reset()
    assert uw.last is None
    assert uw.unwrap(0xFFFFFFFF) == 0xFFFFFFFF


@given(
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.integers(-(1 << 30), 1 << 30), max_size=200),
)
def test_unwrapper_matches_truth(start: int, deltas: list[int]) -> None:
    uw = TimestampUnwrapper()
    truth = start
    assert uw.unwrap(start) == truth
    for d in deltas:
        truth += d
        assert uw.unwrap(truth & 0xFFFFFFFF) == truth


def test_unwrapper_16_bit() -> None:
    uw = TimestampUnwrapper(bits=16)
    vals = [uw.unwrap(v & 0xFFFF) for v in range(65000, 70000, 500)]
    assert vals == list(range(65000, 70000, 500))


# ---- jitter ---------------------------------------------------------------------------------


def test_jitter_zero_for_perfect_pacing() -> None:
    j = JitterEstimator(90000)
    for i in range(100):
        j.update((i * 3600) & 0xFFFFFFFF, 1_000_000 + i * 40_000)
    assert j.jitter == 0


def test_jitter_converges_to_constant_deviation() -> None:
    j = JitterEstimator(8000)
    # alternate 0 / 10 ms late arrivals: |D| is always 80 ticks, J converges to 80
    for i in range(2000):
        late = 10_000 if i % 2 else 0
        j.update(0xFFFFFF00 + i * 160, i * 20_000 + late)
    assert 78 <= j.jitter <= 80


def test_jitter_handles_timestamp_wrap() -> None:
    j = JitterEstimator(90000)
    for i in range(50):
        j.update((0xFFFFFFFF - 10 * 3600 + i * 3600) & 0xFFFFFFFF, i * 40_000)
    assert j.jitter == 0
