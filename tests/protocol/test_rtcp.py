from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.ntp import ntp_middle32
from nvr.protocol.rtcp import (
    PT_PSFB,
    SDES_CNAME,
    App,
    Bye,
    Feedback,
    ReceiverReport,
    ReceptionStatistics,
    ReportBlock,
    RtcpError,
    Sdes,
    SdesChunk,
    SenderReport,
    UnknownRtcp,
    build_pli,
    build_receiver_report,
    build_rtcp,
    parse_rtcp,
)
from nvr.protocol.rtp import SeqStatus


def _hdr(count: int, pt: int, words: int, padding: bool = False) -> bytes:
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, words)


def test_parse_handmade_sr_sdes() -> None:
    sr = _hdr(1, 200, 12) + struct.pack(
        "!IQIII", 0xAABBCCDD, 0xEB6D5CA4_70A3D800, 3000000, 10, 12345
    )
    sr += struct.pack("!IIIIII", 0x11, (5 << 24) | 0xFFFFFF, 70000, 30, 0x5CA470A3, 0x8000)
    sdes_body = struct.pack("!I", 0xAABBCCDD) + bytes([1, 5]) + b"a@cam" + b"\0"  # 10 bytes
    sdes_body += bytes(-len(sdes_body) % 4)
    sdes = _hdr(1, 202, len(sdes_body) // 4) + sdes_body
    pkts = parse_rtcp(sr + sdes)
    assert len(pkts) == 2
    s = pkts[0]
    assert isinstance(s, SenderReport)
    assert s.ssrc == 0xAABBCCDD and s.ntp_timestamp == 0xEB6D5CA4_70A3D800
    assert (s.rtp_timestamp, s.packet_count, s.octet_count) == (3000000, 10, 12345)
    assert s.reports == [ReportBlock(0x11, 5, -1, 70000, 30, 0x5CA470A3, 0x8000)]
    d = pkts[1]
    assert isinstance(d, Sdes)
    assert d.chunks[0].ssrc == 0xAABBCCDD and d.chunks[0].cname == "a@cam"
    assert build_rtcp(pkts) == sr + sdes


def test_replay_sr_with_zero_times() -> None:
    # replay.md B.9: Rate-Control no -> SR with NTP 0 and RTP timestamp 0.
    raw = SenderReport(0x1234ABCD, 0, 0, 100, 5000).to_bytes()
    (sr,) = parse_rtcp(raw)
    assert isinstance(sr, SenderReport) and sr.ntp_timestamp == 0 and sr.rtp_timestamp == 0


def test_bye_with_reason_and_padding() -> None:
    raw = Bye([1, 2], "camera shutting down").to_bytes()
    assert len(raw) % 4 == 0
    assert parse_rtcp(raw) == [Bye([1, 2], "camera shutting down")]
    assert parse_rtcp(Bye([3]).to_bytes()) == [Bye([3], None)]


def test_padding_bit_honoured() -> None:
    body = struct.pack("!I", 42) + b"\0\0\0\x04"
    raw = _hdr(0, 201, 2, padding=True) + body
    assert parse_rtcp(raw) == [ReceiverReport(42)]


def test_unknown_skipped_or_kept() -> None:
    xr = _hdr(0, 207, 1) + b"\0\0\0\x09"
    rr = ReceiverReport(7).to_bytes()
    assert parse_rtcp(rr + xr) == [ReceiverReport(7)]
    kept = parse_rtcp(rr + xr, keep_unknown=True)
    assert kept[1] == UnknownRtcp(207, 0, b"\0\0\0\x09")
    assert build_rtcp(kept) == rr + xr


def test_app_and_feedback() -> None:
    app = App(3, 99, b"ONVF", b"\1\2\3\4")
    fb = parse_rtcp(build_pli(1, 2))
    assert fb == [Feedback(PT_PSFB, 1, 1, 2)]
    assert parse_rtcp(app.to_bytes()) == [app]
    with pytest.raises(RtcpError):
        App(0, 1, b"abc").to_bytes()
    with pytest.raises(RtcpError):
        Feedback(200, 1, 1, 2).to_bytes()


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b"\x80\xc9\x00", "too short"),
        (b"\x40\xc9\x00\x01" + bytes(4), "version 1"),
        (b"\x80\xc9\x00\x05" + bytes(4), "claims 24 bytes"),
        (b"\x81\xc9\x00\x01" + bytes(4), "report blocks"),
        (b"\x80\xc8\x00\x01" + bytes(4), "sender info"),
        (b"\x81\xca\x00\x01" + b"\0\0\0\1", "terminating null"),
        (b"\x81\xca\x00\x02" + b"\0\0\0\1" + b"\x01\x09ab", "overruns"),
        (b"\x82\xcb\x00\x01" + bytes(4), "BYE announces 2"),
        (b"\x81\xcb\x00\x02" + bytes(4) + b"\x09abc", "reason of 9"),
        (b"\x80\xcc\x00\x01" + bytes(4), "APP body"),
        (b"\x81\xce\x00\x01" + bytes(4), "feedback body"),
        (b"\xa0\xc9\x00\x01" + b"\0\0\0\x09", "padding count 9"),
        (b"\xa0\xc9\x00\x01" + b"\0\0\0\x00", "padding count 0"),
        (ReceiverReport(1).to_bytes() + b"\x80\xc9", "trailing"),
    ],
)
def test_malformed(raw: bytes, msg: str) -> None:
    with pytest.raises(RtcpError, match=msg):
        parse_rtcp(raw)


def test_build_validation() -> None:
    with pytest.raises(RtcpError):
        ReceiverReport(1, [ReportBlock(1, 256, 0, 0, 0, 0, 0)]).to_bytes()
    with pytest.raises(RtcpError):
        ReceiverReport(1, [ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0)]).to_bytes()
    with pytest.raises(RtcpError):
        ReceiverReport(1, [ReportBlock(1, 0, 0, 1 << 32, 0, 0, 0)]).to_bytes()
    with pytest.raises(RtcpError):
        ReceiverReport(1, [ReportBlock(1, 0, 0, 0, 0, 0, 0)] * 32).to_bytes()
    with pytest.raises(RtcpError):
        Sdes([SdesChunk(1, [(SDES_CNAME, b"x" * 256)])]).to_bytes()
    with pytest.raises(RtcpError):
        Sdes([SdesChunk(1, [(0, b"x")])]).to_bytes()
    with pytest.raises(RtcpError):
        Bye([1], "é" * 200).to_bytes()
    with pytest.raises(RtcpError):
        SenderReport(1, 1 << 64, 0, 0, 0).to_bytes()


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    u32,
    st.integers(0, 255),
    st.integers(-(1 << 23), (1 << 23) - 1),
    u32,
    u32,
    u32,
    u32,
)
words = st.integers(0, 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
sr = st.builds(
    SenderReport,
    u32,
    st.integers(0, (1 << 64) - 1),
    u32,
    u32,
    u32,
    st.lists(blocks, max_size=31),
    words,
)
rr = st.builds(ReceiverReport, u32, st.lists(blocks, max_size=31), words)
sdes = st.builds(
    Sdes,
    st.lists(
        st.builds(
            SdesChunk,
            u32,
            st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=4),
        ),
        max_size=5,
    ),
)
bye = st.builds(
    Bye,
    st.lists(u32, max_size=31),
    st.none() | st.text(max_size=30).filter(lambda t: len(t.encode()) <= 255),
)
app = st.builds(App, st.integers(0, 31), u32, st.binary(min_size=4, max_size=4), words)
fb = st.builds(Feedback, st.sampled_from([205, 206]), st.integers(0, 31), u32, u32, words)
unknown = st.builds(UnknownRtcp, st.integers(207, 255), st.integers(0, 31), words)
any_packet = st.one_of(sr, rr, sdes, bye, app, fb, unknown)


@given(st.lists(any_packet, min_size=1, max_size=6))
def test_compound_round_trip(pkts: list) -> None:
    raw = build_rtcp(pkts)
    back = parse_rtcp(raw, keep_unknown=True)
    assert back == pkts
    assert build_rtcp(back) == raw
    assert parse_rtcp(raw) == [p for p in pkts if not isinstance(p, UnknownRtcp)]


# ---- receiver report bookkeeping ------------------------------------------------------------


def test_reception_statistics_report_block() -> None:
    stats = ReceptionStatistics(0xCAFE, 90000)
    assert stats.report_block(0) is None
    t = 1_000_000
    seq = 65530
    for i in range(20):
        if i in (5, 6, 7):  # lose three packets
            continue
        stats.on_rtp((seq + i) & 0xFFFF, (i * 3000) & 0xFFFFFFFF, t + i * 33_333)
    sr = SenderReport(0xCAFE, 0xEB6D5CA4_70A3D800, 0, 0, 0)
    stats.on_sender_report(sr, 2_000_000)
    block = stats.report_block(2_500_000)
    assert block is not None
    assert block.ssrc == 0xCAFE
    assert block.highest_seq == 65530 + 19
    assert block.cumulative_lost == 3
    assert block.fraction_lost == (3 << 8) // 20
    assert block.lsr == ntp_middle32(0xEB6D5CA4_70A3D800)
    assert block.dlsr == 0x8000  # 0.5 s
    assert block.jitter >= 0
    # next interval: nothing lost
    stats.on_rtp((seq + 20) & 0xFFFF, 60000, 3_000_000)
    block = stats.report_block(3_000_000)
    assert block is not None and block.fraction_lost == 0 and block.cumulative_lost == 3
    # duplicates do not count
    assert stats.on_rtp((seq + 20) & 0xFFFF, 60000, 3_000_100).status is SeqStatus.DUPLICATE


def test_build_receiver_report_compound() -> None:
    block = ReportBlock(1, 0, 0, 5, 0, 0, 0)
    raw = build_receiver_report(0xBEEF, [block], cname="nvr@host")
    pkts = parse_rtcp(raw)
    assert pkts[0] == ReceiverReport(0xBEEF, [block])
    assert isinstance(pkts[1], Sdes) and pkts[1].chunks[0].cname == "nvr@host"
    empty = parse_rtcp(build_receiver_report(0xBEEF, [], cname="x"))
    assert empty[0] == ReceiverReport(0xBEEF, [])
    many = parse_rtcp(build_receiver_report(1, [block] * 40, cname="x"))
    assert [len(p.reports) for p in many[:2]] == [31, 9]


def test_cumulative_lost_clamped_and_wrapped_highest() -> None:
    stats = ReceptionStatistics(1, 8000)
    stats.on_rtp(0, 0, 0)
    # fake a long-running tracker past 2**32 extended sequence numbers
    stats.tracker.max_ext = (1 << 32) + 5
    stats.tracker.base_ext = 0
    block = stats.report_block(0)
    assert block is not None
    assert block.highest_seq == 5
    assert block.cumulative_lost == 0x7FFFFF
    assert parse_rtcp(ReceiverReport(2, [block]).to_bytes())[0].reports == [block]
