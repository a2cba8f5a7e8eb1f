"""Replay packets (replay.md B.5): the 0xABAC extension on the first packet of each access
unit, the JPEG extension appended after the replay words (B.5.2), sender reports (B.9)."""

from __future__ import annotations

from fractions import Fraction

import av

from nvr.playback.replay_rtp import TrackSender
from nvr.playback.replay_sdp import SdpTrack, build_description, position_of_control, rtp_format
from nvr.protocol.ntp import unix_us_to_ntp
from nvr.protocol.onvif_replay import FLAG_C, FLAG_D, FLAG_T, ReplayExtension
from nvr.protocol.payload import make_packetizer
from nvr.protocol.rtcp import Bye, SenderReport, parse_rtcp
from nvr.protocol.rtp import parse_rtp
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
