"""Replay packets (replay.md B.5): the 0xABAC extension on the first packet of each access
unit, the JPEG extension appended after the replay words (B.5.2), sender reports (B.9)."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.playback import replay_wire
from nvr.playback.replay_rtp import TrackSender
from nvr.playback.replay_sdp import SdpTrack, build_description, position_of_control, rtp_format
from nvr.protocol.ntp import unix_us_to_ntp
from nvr.protocol.onvif_replay import FLAG_C, FLAG_D, FLAG_T, ReplayExtension
from nvr.protocol.payload import PayloadError, make_packetizer
from nvr.protocol.rtcp import Bye, SenderReport, parse_rtcp
from nvr.protocol.rtp import parse_rtp
from nvr.protocol.rtsp import RtspParser
from nvr.protocol.sdp import parse_sdp
from nvr.store.types import SampleEntrySpec
from tests.playback.replay_footage import T0, encoded_video, h264_entry


def test_h264_access_unit_gets_the_extension_on_its_first_packet_only() -> None:
    data, key, _ = encoded_video()[0]
    assert key
    entry = h264_entry(data)
    fmt = rtp_format(entry, 1)
    assert fmt is not None
    sender = TrackSender(0, fmt.media, fmt.payload_type, fmt.clock_rate, fmt.packetizer(entry, 200))
    first_seq = sender.seq.next_seq
    ntp = unix_us_to_ntp(T0)
    packets = [parse_rtp(p) for p in sender.packets(data, 1234, ntp, FLAG_C | FLAG_D, 0x1FF)]
    assert len(packets) > 2
    assert [p.sequence for p in packets] == [(first_seq + n) & 0xFFFF for n in range(len(packets))]
    assert {p.timestamp for p in packets} == {1234}
    assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
    ext = ReplayExtension.from_packet(packets[0])
    assert ext is not None and ext.ntp_timestamp == ntp
    assert (ext.clean_point, ext.discontinuity, ext.end_of_block, ext.terminal) == (
        True,
        True,
        False,
        False,
    )
    assert ext.cseq == 0xFF  # the low byte of the PLAY's CSeq
    assert all(p.extension is None for p in packets[1:])
    assert sender.seq.packet_count == len(packets)


def test_jpeg_extension_follows_the_replay_words() -> None:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = 2048, 16, "yuvj420p"  # too wide for RFC 2435
    codec.time_base = Fraction(1, 25)
    picture = av.VideoFrame(2048, 16, "yuvj420p")
    for plane in picture.planes:
        plane.update(bytes([128]) * (plane.line_size * plane.height))
    jpeg = b"".join(bytes(p) for p in [*codec.encode(picture), *codec.encode(None)])
    sender = TrackSender(0, "video", 26, 90_000, make_packetizer("JPEG", 90_000))
    packets = [parse_rtp(p) for p in sender.packets(jpeg, 0, 5, FLAG_C | FLAG_T, 7)]
    ext = ReplayExtension.from_packet(packets[0])
    assert ext is not None and (ext.ntp_timestamp, ext.cseq, ext.terminal) == (5, 7, True)
    jpeg_ext = ext.jpeg_extension()
    assert jpeg_ext is not None and jpeg_ext[0] == 0xFFD8
    assert jpeg_ext[1].startswith(b"\xff")  # JPEG marker segments


def _pair(encoding: str, mtu: int) -> tuple[TrackSender, TrackSender]:
    """Two senders that number packets alike."""
    a, b = (
        TrackSender(0, "video", 96, 90_000, make_packetizer(encoding, 90_000, mtu=mtu))
        for _ in "ab"
    )
    b.seq.ssrc, b.seq.next_seq, b.seq.ts_origin = a.seq.ssrc, a.seq.next_seq, a.seq.ts_origin
    return a, b


def _check_framed_equals_packets(
    encoding: str, mtu: int, units: list[tuple[bytes, int]], seq: int | None = None
) -> None:
    """``frame_into`` (the Rate-Control no fast path) writes, as ``$`` frames, exactly the
    packets ``packets`` builds, and numbers them alike (from sequence number ``seq``)."""
    by_packets, by_frames = _pair(encoding, mtu)
    if seq is not None:
        by_packets.seq.next_seq = by_frames.seq.next_seq = seq
    wire = bytearray()
    expected = []
    for n, (data, flags) in enumerate(units):
        args = (data, 0xFFFFFF00 + 3000 * n, unix_us_to_ntp(T0 + n), flags, 0x1FF + n)
        try:
            packets = by_packets.packets(*args)
        except PayloadError:
            with pytest.raises(PayloadError):
                by_frames.frame_into(wire, 6, *args)
            continue
        expected += packets
        assert by_frames.frame_into(wire, 6, *args) == len(packets)
    parser = RtspParser()
    parser.feed(bytes(wire))
    frames = list(parser)
    assert [(f.channel, f.payload) for f in frames] == [(6, p) for p in expected]
    a, b = by_packets.seq, by_frames.seq
    assert (a.next_seq, a.packet_count, a.octet_count) == (
        b.next_seq,
        b.packet_count,
        b.octet_count,
    )


def test_framed_access_units_equal_the_packets_of_a_real_stream() -> None:
    units = [
        (data, (FLAG_C if key else 0) | (FLAG_D if n == 0 else 0))
        for n, (data, key, _) in enumerate(encoded_video()[:60])
    ]
    for mtu in (1400, 300, 100):
        _check_framed_equals_packets("H264", mtu, units)


def _nal(header: bytes, body: bytes) -> bytes:
    nal = header + body
    return len(nal).to_bytes(4, "big") + nal


@settings(max_examples=150, deadline=None)
@given(
    encoding=st.sampled_from(["H264", "H265"]),
    mtu=st.integers(20, 1500),
    units=st.lists(
        st.tuples(
            st.lists(
                st.tuples(st.binary(min_size=2, max_size=2), st.integers(0, 4000)),
                min_size=1,
                max_size=3,
            ),
            st.sampled_from([0, FLAG_C, FLAG_C | FLAG_D, FLAG_T]),
        ),
        min_size=1,
        max_size=6,
    ),
    seq=st.one_of(st.integers(0xFF00, 0xFFFF), st.integers(0, 0xFFFF)),
)
def test_framed_access_units_equal_the_packets(
    encoding: str, mtu: int, units: list[tuple[list[tuple[bytes, int]], int]], seq: int
) -> None:
    """Any NAL unit types (slices, key frames, parameter sets, garbage), sizes around the MTU,
    sequence numbers that wrap inside an access unit."""
    header_len = 1 if encoding == "H264" else 2
    built = [
        (b"".join(_nal(h[:header_len], bytes([n]) * size) for h, size in nals), flags)
        for n, (nals, flags) in enumerate(units)
    ]
    _check_framed_equals_packets(encoding, mtu, built, seq)


def test_sender_report_zeros_and_bye() -> None:
    sender = TrackSender(2, "audio", 0, 8000, make_packetizer("PCMU", 8000), cname="x")
    sender.packets(bytes(160), 0, 1, FLAG_C, 1)
    sr, _, bye = parse_rtcp(sender.report(0, 0, bye=True))
    assert isinstance(sr, SenderReport) and (sr.ntp_timestamp, sr.rtp_timestamp) == (0, 0)
    assert (sr.packet_count, sr.octet_count) == (1, 160)
    assert isinstance(bye, Bye) and bye.ssrcs == [sender.seq.ssrc]


def test_sdp_names_tracks_by_position_and_leaves_out_what_cannot_be_sent() -> None:
    data = encoded_video()[0][0]
    tracks = [
        SdpTrack(1, "VIDEO001", h264_entry(data), T0, T0 + 10, live=False),
        SdpTrack(2, "AUDIO001", SampleEntrySpec("AAC", 16_000), T0, T0 + 10, live=False),
        SdpTrack(3, "META001", SampleEntrySpec("ONVIF-METADATA", 90_000), T0, T0 + 20, True),
    ]
    description = build_description(tracks, session_id=1)
    assert [t.control for t in description.tracks] == ["track1", "track3"]  # AAC: no config
    sd = parse_sdp(description.sdp.decode())
    assert sd.range == "clock=20250615T150640Z-"  # still recording: open
    assert sd.media[1].rtpmap(98).encoding_name == "vnd.onvif.metadata"
    assert position_of_control("rtsp://h/recordings/R/track12") == 12
    assert position_of_control("rtsp://h/recordings/R/video") is None


def test_native_layout_is_built() -> None:
    """The install builds the C module (a compiler is part of the set-up); without it replay
    would fall back to the Python packetizer, correct but at about twice the CPU."""
    assert replay_wire.NATIVE


def test_without_the_native_layout_every_unit_takes_the_packetizers_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_wire, "_wire", None)
    units = [(data, FLAG_C if key else 0) for data, key, _ in encoded_video()[:12]]
    _check_framed_equals_packets("H264", 300, units)
    sender = TrackSender(0, "video", 96, 90_000, make_packetizer("H264", 90_000))
    assert sender._fragment is None


def test_any_cseq_gives_its_low_byte() -> None:
    """RTSP does not bound CSeq: the replay words carry its low 8 bits on either path."""
    by_packets, by_frames = _pair("H264", 60)
    data = next(d for d, key, _ in encoded_video() if not key and len(d) > 120)
    wire = bytearray()
    cseq = 2**70 + 0x1AB
    assert by_frames.frame_into(wire, 0, data, 0, 5, 0, cseq) > 1
    packets = by_packets.packets(data, 0, 5, 0, cseq)
    assert ReplayExtension.from_packet(parse_rtp(packets[0])).cseq == 0xAB  # type: ignore[union-attr]
    parser = RtspParser()
    parser.feed(bytes(wire))
    assert [f.payload for f in parser] == packets
