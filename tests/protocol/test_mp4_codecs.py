"""The codec configuration records (avcC, hvcC, esds) and every sample entry builder against
its parser; the codec bitstream parsers themselves are tested in test_codecs_*."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.annexb import split_annexb
from nvr.protocol.mp4 import (
    AvcDecoderConfig,
    EsDescriptor,
    HevcDecoderConfig,
    Mp4Error,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    jpeg_entry,
    jpeg_entry_for,
    metx_entry,
    parse_sample_entry,
)
from nvr.protocol.mp4 import hevc as hevc_mod
from tests.protocol.codec_bitstreams import asc, h264_sps

av = pytest.importorskip("av")


# ---------------------------------------------------------------- H.264


def _encode_one(codec: str, width: int, height: int, fmt: str = "yuv420p", **opts: str) -> bytes:
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV has no {codec} encoder")
    cc = av.CodecContext.create(codec, "w")
    cc.width, cc.height, cc.pix_fmt = width, height, fmt
    cc.time_base = Fraction(1, 25)
    cc.options = opts
    frame = av.VideoFrame(width, height, fmt)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts = 0
    packets = cc.encode(frame) + cc.encode(None)
    return bytes(packets[0])


def test_h264_from_x264_cropped() -> None:
    nals = split_annexb(_encode_one("libx264", 170, 90))
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    entry = avc_entry([sps], [pps])
    assert (entry.width, entry.height, entry.fourcc) == (170, 90, b"avc1")
    assert entry.avc is not None and entry.avc.sps == (sps,) and entry.avc.pps == (pps,)
    assert entry.avc.length_size == 4
    assert AvcDecoderConfig.parse(entry.avc.encode()) == entry.avc


def test_avcc_round_trip_and_variants() -> None:
    sps = h264_sps(profile=100)
    config = AvcDecoderConfig.from_parameter_sets([sps], [b"\x68\xee"])
    assert (config.chroma_format_idc, config.bit_depth_luma) == (1, 8)
    raw = config.encode()
    assert AvcDecoderConfig.parse(raw) == config
    # The High-profile extension is often missing in the wild: still parsed.
    parsed = AvcDecoderConfig.parse(raw[:-4])
    assert parsed.sps == config.sps and parsed.chroma_format_idc is None
    base = AvcDecoderConfig.from_parameter_sets([h264_sps()], [b"\x68\xee"])
    assert base.chroma_format_idc is None and AvcDecoderConfig.parse(base.encode()) == base
    with pytest.raises(Mp4Error):
        AvcDecoderConfig.from_parameter_sets([sps], [])
    with pytest.raises(Mp4Error, match="not a PPS"):
        AvcDecoderConfig.from_parameter_sets([sps], [sps])
    with pytest.raises(Mp4Error, match="avcC"):
        AvcDecoderConfig.parse(raw[:9])
    with pytest.raises(Mp4Error, match="configurationVersion"):
        AvcDecoderConfig.parse(b"\x02" + raw[1:])
    with pytest.raises(ValueError):
        avc_entry([sps], [b"\x68\xee"], fourcc=b"h264")


# ---------------------------------------------------------------- H.265


def test_h265_from_x265_cropped() -> None:
    nals = split_annexb(_encode_one("libx265", 170, 90, **{"x265-params": "log-level=error"}))
    by_type = {}
    for nal in nals:
        by_type.setdefault(hevc_mod.nal_type(nal), nal)
    vps, sps, pps = by_type[32], by_type[33], by_type[34]
    info = hevc_mod.parse_sps(sps)
    assert (info.width, info.height) == (170, 90)
    assert (info.profile_idc, info.chroma_format_idc, info.bit_depth_luma) == (1, 1, 8)
    for fourcc, complete in ((b"hvc1", True), (b"hev1", False)):
        entry = hevc_entry([vps], [sps], [pps], fourcc=fourcc)
        assert (entry.width, entry.height, entry.fourcc) == (170, 90, fourcc)
        config = entry.hevc
        assert config is not None
        assert config.nalus(32) == (vps,) and config.nalus(33) == (sps,)
        assert config.nalus(34) == (pps,)
        assert all(a.complete == complete for a in config.arrays)
        assert HevcDecoderConfig.parse(config.encode()) == config
        assert config.level_idc == info.level_idc
    with pytest.raises(Mp4Error, match="NAL unit of type 33"):
        HevcDecoderConfig.from_parameter_sets([sps], [sps], [pps])
    with pytest.raises(Mp4Error, match="not an SPS"):
        hevc_mod.parse_sps(pps)
    with pytest.raises(Mp4Error, match=r"H\.265 SPS"):
        hevc_mod.parse_sps(sps[:8])


# ---------------------------------------------------------------- AAC


@given(
    st.binary(max_size=300),
    st.integers(0, (1 << 24) - 1),
    st.integers(0, (1 << 32) - 1),
    st.integers(0, (1 << 32) - 1),
    st.integers(0, 0xFFFF),
)
def test_esds_round_trip(info: bytes, buf: int, top: int, avg: int, es_id: int) -> None:
    es = EsDescriptor(info, buffer_size=buf, max_bitrate=top, avg_bitrate=avg, es_id=es_id)
    assert EsDescriptor.parse(es.encode()) == es


def test_esds_long_size_fields_and_flags() -> None:
    """Writers such as FFmpeg pad descriptor sizes to 4 bytes; ES flags add optional fields."""

    def desc(tag: int, body: bytes) -> bytes:
        n = len(body)
        return bytes((tag, 0x80, 0x80, 0x80, n)) + body

    config = desc(4, b"\x40\x15" + bytes(11) + desc(5, b"\x12\x10"))
    body = (
        b"\x00\x01" + b"\xe0" + b"\x00\x02" + b"\x03abc" + b"\x00\x03" + config + desc(6, b"\x02")
    )
    es = EsDescriptor.parse(desc(3, body))
    assert (es.decoder_specific_info, es.es_id, es.object_type) == (b"\x12\x10", 1, 0x40)
    with pytest.raises(Mp4Error, match="no DecoderConfigDescriptor"):
        EsDescriptor.parse(desc(3, b"\x00\x01\x00" + desc(6, b"\x02")))
    with pytest.raises(Mp4Error, match="not an ES_Descriptor"):
        EsDescriptor.parse(desc(4, b""))
    with pytest.raises(Mp4Error, match="longer than 4 bytes"):
        EsDescriptor.parse(b"\x03\x80\x80\x80\x80\x01")


# ---------------------------------------------------------------- JPEG and sample entries


def test_jpeg_entry_for_a_real_image() -> None:
    image = _encode_one("mjpeg", 176, 48, fmt="yuvj420p")
    entry = jpeg_entry_for(image)
    assert (entry.fourcc, entry.width, entry.height, entry.handler) == (b"jpeg", 176, 48, b"vide")
    with pytest.raises(Mp4Error, match="SOI"):
        jpeg_entry_for(b"\x00\x00")


def test_sample_entries_parse_back() -> None:
    sps = h264_sps(crop=(0, 0, 0, 4))
    built = [
        avc_entry([sps], [b"\x68\xee"]),
        aac_entry(b"\x12\x10", avg_bitrate=64000),
        aac_entry(asc(2, 0, 2).bytes()),  # 96 kHz: too big for the 16.16 field
        aac_entry(asc(5, 6, 2).u(4, 3).u(5, 2).bytes()),  # HE-AAC: 24 kHz core, 48 kHz out
        g711_entry("ulaw"),
        g711_entry("PCMA"),
        jpeg_entry(640, 480),
        metx_entry(),
        metx_entry(content_encoding="gzip", schema_location="x.xsd"),
    ]
    for entry in built:
        assert parse_sample_entry(entry.box, entry.handler) == entry
    avc, aac, aac96, he_aac, ulaw, alaw, jpeg, metx, metx_gz = built
    assert (avc.width, avc.height) == (1920, 1080)
    assert (aac.sample_rate, aac.channels, aac.es and aac.es.avg_bitrate) == (44100, 2, 64000)
    assert aac96.sample_rate == 96000
    assert he_aac.sample_rate == 48000 and he_aac.audio_config is not None
    assert (he_aac.audio_config.sample_rate, he_aac.audio_config.output_rate) == (24000, 48000)
    assert (ulaw.fourcc, ulaw.sample_rate, ulaw.channels) == (b"ulaw", 8000, 1)
    assert alaw.fourcc == b"alaw"
    # ffmpeg's mov demuxer expects a version-0 sound description with samplesize 16.
    assert ulaw.box[8 + 8 : 8 + 10] == b"\x00\x00" and ulaw.box[8 + 18 : 8 + 20] == b"\x00\x10"
    assert (jpeg.width, jpeg.height) == (640, 480)
    assert (metx.namespace, metx.content_encoding, metx.schema_location) == (
        "http://www.onvif.org/ver10/schema",
        "",
        "",
    )
    assert (metx_gz.content_encoding, metx_gz.schema_location) == ("gzip", "x.xsd")
    assert len(metx.box) == 8 + 8 + 1 + len(metx.namespace) + 1 + 1
    with pytest.raises(ValueError):
        g711_entry("g722")
    with pytest.raises(ValueError):
        jpeg_entry(0, 10)
    with pytest.raises(ValueError):
        metx_entry(namespace="a\x00b")


def test_sample_entry_foreign_and_malformed() -> None:
    # A QuickTime version-1 sound description has 16 more bytes before its children.
    fields = bytes(6) + b"\x00\x01" + b"\x00\x01" + bytes(6) + b"\x00\x02\x00\x10" + bytes(4)
    fields += (44100 << 16).to_bytes(4, "big") + bytes(16)
    raw = (8 + len(fields)).to_bytes(4, "big") + b"twos" + fields
    entry = parse_sample_entry(raw, b"soun")
    assert (entry.fourcc, entry.channels, entry.sample_rate) == (b"twos", 2, 44100)
    unknown = parse_sample_entry(b"\x00\x00\x00\x10stpp" + bytes(8), b"subt")
    assert unknown.fourcc == b"stpp" and unknown.width == 0
    with pytest.raises(Mp4Error, match="expected exactly one box"):
        parse_sample_entry(b"", b"vide")
    with pytest.raises(Mp4Error, match="sample entry 'avc1'"):
        parse_sample_entry(b"\x00\x00\x00\x10avc1" + bytes(8), b"vide")
    bad = fields[:8] + b"\x00\x07" + fields[10:]
    with pytest.raises(Mp4Error, match="sound description version 7"):
        parse_sample_entry((8 + len(bad)).to_bytes(4, "big") + b"twos" + bad, b"soun")
