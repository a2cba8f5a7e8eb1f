"""RTP/JPEG (RFC 2435 + ONVIF extension): header reconstruction decoded by PyAV, the ONVIF
inheritance rules, the replay form of the extension, and loss and garbage handling."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import pytest

from nvr.protocol.payload import make_depacketizer
from nvr.protocol.payload.base import Extension, PayloadError
from nvr.protocol.payload.jpeg import JpegDepacketizer, JpegPacketizer
from nvr.protocol.payload.jpeg_headers import (
    DQT,
    SOF0,
    STANDARD_DHT,
    dqt_segment,
    jpeg_dimensions,
    parse_jpeg,
    quant_tables_for_q,
    segment,
    sof_segment,
    sos_segment,
    split_segments,
)
from tests.protocol.test_payload_support import deliver, encode_video, packetize_all


def decode_jpeg(data: bytes) -> tuple[int, int, bytes]:
    ctx = av.CodecContext.create("mjpeg", "r")
    (frame,) = ctx.decode(av.Packet(data))
    return frame.width, frame.height, bytes(frame.planes[0])


def round_trip(images: list[bytes], mtu: int = 1400) -> tuple[list, list[bytes]]:
    packets = packetize_all(JpegPacketizer(mtu).packetize, images, 3600)
    out = deliver(JpegDepacketizer(), packets)
    assert all(au.key and not au.after_loss for au in out)
    return packets, [au.data for au in out]


def with_tables(image: bytes, tables: bytes) -> bytes:
    """The same scan with other quantization tables (still decodable, different picture)."""
    img = parse_jpeg(image)
    dqt = dqt_segment([(0, 0, tables[:64]), (1, 0, tables[64:])])
    comps = [(cid, hv, 0 if n == 0 else 1) for n, (cid, hv, _) in enumerate(img.components)]
    head = [dqt, sof_segment(SOF0, img.width, img.height, comps), STANDARD_DHT]
    return b"\xff\xd8" + b"".join(head) + img.sos + bytes(img.scan) + b"\xff\xd9"


def test_plain_rfc2435_frames_decode_identically() -> None:
    images = encode_video("mjpeg", 320, 240, 3, huffman="default")
    packets, out = round_trip(images)
    assert all(p.extension is None for p in packets)
    assert [decode_jpeg(o) for o in out] == [decode_jpeg(i) for i in images]


def test_q_below_100_sends_no_tables_and_rebuilds_them() -> None:
    image = with_tables(encode_video("mjpeg", 320, 240, 1, huffman="default")[0],
                        quant_tables_for_q(75))  # fmt: skip
    packets, (out,) = round_trip([image])
    assert packets[0].payload[5] == 75 and packets[0].extension is None
    assert packets[0].payload[8:16] == parse_jpeg(image).scan[:8]  # no table header
    assert decode_jpeg(out) == decode_jpeg(image)
    img = parse_jpeg(out)
    assert img.quant[0][1] + img.quant[1][1] == quant_tables_for_q(75)


@pytest.mark.parametrize(
    ("width", "height", "options"),
    [
        (322, 242, {"huffman": "default"}),  # not a multiple of 8
        (2560, 64, {"huffman": "default"}),  # wider than 2040
        (320, 240, {"pix_fmt": "yuvj444p"}),  # sampling RFC 2435 has no type for
        (320, 240, {"pix_fmt": "yuvj422p", "slice_threads": "4"}),  # with restart markers
    ],
)
def test_frames_needing_the_onvif_extension_decode_identically(
    width: int, height: int, options: dict[str, str]
) -> None:
    images = encode_video("mjpeg", width, height, 2, **options)
    packets, out = round_trip(images, mtu=1000)
    first = [p for p in packets if p.payload[1:4] == b"\x00\x00\x00"]
    assert first and all(p.extension and p.extension.profile == 0xFFD8 for p in first[:1])
    assert [decode_jpeg(o) for o in out] == [decode_jpeg(i) for i in images]
    assert jpeg_dimensions(out[0]) == (width, height)


def test_restart_markers_in_plain_mode() -> None:
    images = encode_video("mjpeg", 320, 240, 2, huffman="default", slice_threads="4")
    assert parse_jpeg(images[0]).restart_interval
    packets, out = round_trip(images, mtu=500)
    assert all(p.payload[4] == 64 + 1 and p.extension is None for p in packets)
    assert [decode_jpeg(o) for o in out] == [decode_jpeg(i) for i in images]


def test_extension_larger_than_a_packet_is_spread_over_leading_packets() -> None:
    image = encode_video("mjpeg", 322, 242, 1, huffman="default")[0]
    packets, (out,) = round_trip([image], mtu=200)
    lead = [p for p in packets if p.payload[1:4] == b"\x00\x00\x00"]
    assert len(lead) > 2 and [p.extension.profile for p in lead[:2]] == [0xFFD8, 0xFFFF]
    assert decode_jpeg(out) == decode_jpeg(image)


def test_replay_form_of_the_extension_is_accepted() -> None:
    image = encode_video("mjpeg", 322, 242, 1, huffman="default")[0]
    packets = packetize_all(JpegPacketizer(600).packetize, [image], 0)
    for p in packets:
        if p.extension:
            e = p.extension
            words = bytes(12) + e.profile.to_bytes(2, "big") + (len(e.data) // 4).to_bytes(2, "big")
            p.extension = Extension(0xABAC, words + e.data)
    (au,) = deliver(JpegDepacketizer(), packets)
    assert decode_jpeg(au.data) == decode_jpeg(image)


@pytest.mark.gstreamer
@pytest.mark.parametrize("quality", [20, 50, 90])
def test_tables_for_q_match_libjpeg_through_gstreamer(tmp_path: Path, quality: int) -> None:
    """RFC 2435 Appendix A scaling is libjpeg's: GStreamer's jpegenc at quality Q must produce
    exactly the tables we compute for Q, and such frames travel with Q instead of tables."""
    if not shutil.which("gst-launch-1.0"):
        pytest.skip("GStreamer not installed")
    path = tmp_path / "q.jpg"
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=1", "!",
         "video/x-raw,width=320,height=240,format=I420", "!", "jpegenc", f"quality={quality}",
         "!", "filesink", f"location={path}"],
        check=True, timeout=60,
    )  # fmt: skip
    image = path.read_bytes()
    img = parse_jpeg(image)
    assert img.quant[0][1] + img.quant[1][1] == quant_tables_for_q(quality)
    packets, (out,) = round_trip([image])
    assert packets[0].payload[5] == quality
    assert decode_jpeg(out) == decode_jpeg(image)


# -- hand-built packets ------------------------------------------------------------------------


def rtp_jpeg(
    offset: int,
    data: bytes,
    q: int = 255,
    jpeg_type: int = 1,
    size: tuple[int, int] = (40, 30),
    tables: bytes | None = None,
) -> bytes:
    head = bytes((0,)) + offset.to_bytes(3, "big") + bytes((jpeg_type, q, *size))
    if jpeg_type >= 64:
        head += (16).to_bytes(2, "big") + b"\xff\xff"
    if q >= 128 and offset == 0:
        t = quant_tables_for_q(50) if tables is None else tables
        head += b"\x00\x00" + len(t).to_bytes(2, "big") + t
    return head + data


SCAN = bytes(range(1, 200)) * 3


class Feeder:
    def __init__(self) -> None:
        self.dep = JpegDepacketizer()
        self.seq = 0

    def __call__(
        self, payload: bytes, ts: int, marker: bool = True, skip: int = 0, ext: object = None
    ) -> list:
        self.seq += 1 + skip
        return self.dep.push(payload, marker, ts, self.seq, ext)


def test_rebuilt_headers_follow_rfc2435() -> None:
    feed = Feeder()
    (au,) = feed(rtp_jpeg(0, SCAN, q=50, jpeg_type=65, size=(40, 30)), 0)
    img = parse_jpeg(au.data)
    assert (img.width, img.height) == (320, 240)
    assert img.components == [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)]
    assert img.restart_interval == 16
    assert img.quant[0][1] + img.quant[1][1] == quant_tables_for_q(50)
    assert bytes(img.scan) == SCAN and au.data.endswith(b"\xff\xd9")
    assert sorted(bytes(t) for t in img.huffman) == sorted(
        bytes(t) for t in parse_jpeg(au.data).huffman
    )
    # An EOI sent by the camera is not doubled.
    (au,) = feed(rtp_jpeg(0, SCAN + b"\xff\xd9"), 3000)
    assert au.data.endswith(SCAN + b"\xff\xd9")


def test_tables_sent_once_per_q_are_reused() -> None:
    feed = Feeder()
    tables = quant_tables_for_q(30)
    (first,) = feed(rtp_jpeg(0, SCAN, q=200, tables=tables), 0)
    (second,) = feed(rtp_jpeg(0, SCAN, q=200, tables=b""), 3000)
    assert first.data == second.data
    assert feed(rtp_jpeg(0, SCAN, q=201, tables=b""), 6000) == []  # never sent for Q=201
    assert feed.dep.stats.malformed_packets == 1


def test_onvif_inheritance_of_tables_size_and_huffman() -> None:
    feed = Feeder()
    huffman = STANDARD_DHT
    sof = sof_segment(SOF0, 3000, 16, [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)])
    ext_data = huffman + sof
    ext_data += b"\xff" * (-len(ext_data) % 4)
    (au,) = feed(rtp_jpeg(0, SCAN, size=(0, 0)), 0, ext=Extension(0xFFD8, ext_data))
    assert jpeg_dimensions(au.data) == (3000, 16)
    # Q=0 and a zero size: tables and frame header of the previous frame.
    (au2,) = feed(rtp_jpeg(0, SCAN, q=0, size=(0, 0)), 3000)
    first, second = parse_jpeg(au.data), parse_jpeg(au2.data)
    assert (first.width, first.height, first.quant, first.components, first.huffman) == (
        second.width, second.height, second.quant, second.components, second.huffman
    )  # fmt: skip
    # A DQT in the extension overrides Q.
    dqt = dqt_segment([(0, 0, bytes([2] * 64)), (1, 0, bytes([3] * 64))])
    (au3,) = feed(rtp_jpeg(0, SCAN, q=0, size=(0, 0)), 6000, ext=Extension(0xFFD8, dqt))
    assert parse_jpeg(au3.data).quant[1] == (0, bytes([3] * 64))
    # A greyscale frame header in the extension gets a matching scan header.
    grey = sof_segment(SOF0, 64, 64, [(1, 0x11, 0)])
    grey += b"\xff" * (-len(grey) % 4)
    (au4,) = feed(rtp_jpeg(0, SCAN, jpeg_type=0), 9000, ext=Extension(0xFFD8, grey))
    assert parse_jpeg(au4.data).scan_components == [(1, 0x00)]
    # Q=0 before any tables were seen is unusable.
    fresh = Feeder()
    assert fresh(rtp_jpeg(0, SCAN, q=0), 0) == []


def test_extension_sos_is_used_and_fill_bytes_are_skipped() -> None:
    feed = Feeder()
    sos = sos_segment([1, 2, 3])
    ext = b"\xff\xff" + dqt_segment([(0, 0, bytes([1] * 64)), (1, 0, bytes([1] * 64))])
    ext += b"\xff" * (-(len(ext) + len(sos)) % 4) + sos
    (au,) = feed(rtp_jpeg(0, SCAN), 0, ext=Extension(0xFFD8, ext))
    segs, _ = split_segments(au.data[2:])
    assert [m for m, _ in segs].count(DQT) == 1 and segs[-1][1] == sos


def test_lost_packet_drops_the_frame_and_flags_the_next() -> None:
    feed = Feeder()
    assert feed(rtp_jpeg(0, SCAN[:100]), 0, marker=False) == []
    assert feed(rtp_jpeg(200, SCAN[200:]), 0, skip=1) == []  # offset 100 lost
    (au,) = feed(rtp_jpeg(0, SCAN), 3000)
    assert au.after_loss and feed.dep.stats.dropped_units == 1


def test_frame_start_missing_is_skipped_and_counted_once() -> None:
    feed = Feeder()
    feed(rtp_jpeg(0, SCAN), 0)
    assert feed(rtp_jpeg(100, SCAN[100:150]), 3000, marker=False, skip=1) == []
    assert feed(rtp_jpeg(150, SCAN[150:]), 3000) == []
    (au,) = feed(rtp_jpeg(0, SCAN), 6000)
    assert au.after_loss and feed.dep.stats.dropped_units == 1


def test_missing_marker_ends_the_frame_at_the_next_timestamp() -> None:
    feed = Feeder()
    assert feed(rtp_jpeg(0, SCAN), 0, marker=False) == []
    (au,) = feed(rtp_jpeg(0, SCAN), 3000, marker=False)
    assert au.rtp_timestamp == 0 and not au.after_loss


def test_a_later_extension_packet_without_its_ffd8_start_is_not_a_frame() -> None:
    image = encode_video("mjpeg", 322, 242, 2, huffman="default")
    packets = packetize_all(JpegPacketizer(200).packetize, image, 3000)
    out = deliver(JpegDepacketizer(), packets, drop=frozenset({len(packets) // 2 + 1}))
    assert len(out) <= 1
    assert all(decode_jpeg(au.data) in (decode_jpeg(image[0]), decode_jpeg(image[1])) for au in out)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x00\x00",  # shorter than the main header
        rtp_jpeg(0, SCAN, q=110),  # reserved Q
        rtp_jpeg(0, SCAN, jpeg_type=5),  # unknown type without an extension
        rtp_jpeg(0, b"", q=50),  # no scan data
        b"\x00\x00\x00\x00\x41\x32\x05\x05\x00",  # truncated restart header
        b"\x00\x00\x00\x00\x01\xff\x05\x05\x00\x00\x00\x80",  # tables longer than the packet
    ],
)
def test_garbage_is_dropped_and_counted(payload: bytes) -> None:
    feed = Feeder()
    assert feed(payload, 0) == []
    assert feed.dep.stats.malformed_packets == 1
    (au,) = feed(rtp_jpeg(0, SCAN), 3000)
    assert au.after_loss


def test_packetizer_rejects_what_rtp_jpeg_cannot_carry() -> None:
    pk = JpegPacketizer()
    image = encode_video("mjpeg", 64, 48, 1, huffman="default")[0]
    progressive = image.replace(b"\xff\xc0", b"\xff\xc2", 1)
    for bad in (b"", b"\xff\xd8\xff\xd9", progressive, image[:40]):
        with pytest.raises(PayloadError):
            pk.packetize(bad)
    with pytest.raises(ValueError):
        JpegPacketizer(mtu=100)
    assert make_depacketizer("jpeg", 90000).clock_rate == 90000
    assert segment(0xFE, b"x") == b"\xff\xfe\x00\x03x"
