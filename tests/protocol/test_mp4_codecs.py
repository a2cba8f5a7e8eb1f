"""Codec parameter parsing and the codec configuration records: SPS, avcC, hvcC, ASC, esds,
JPEG size, and every sample entry builder against its parser."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.mp4 import (
    AvcDecoderConfig,
    EsDescriptor,
    HevcDecoderConfig,
    Mp4Error,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    jpeg_dimensions,
    jpeg_entry,
    jpeg_entry_for,
    metx_entry,
    parse_audio_specific_config,
    parse_sample_entry,
)
from nvr.protocol.mp4 import avc as avc_mod
from nvr.protocol.mp4 import hevc as hevc_mod
from nvr.protocol.mp4.bits import BitReader, unescape_rbsp

av = pytest.importorskip("av")


class BitWriter:
    """Test-side encoder for hand-made parameter sets."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> BitWriter:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        n = code.bit_length()
        return self.u(n - 1, 0).u(n, code)

    def se(self, value: int) -> BitWriter:
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 2), st.integers(-(1 << 30), 1 << 30))))
def test_exp_golomb_round_trip(values: list[tuple[int, int]]) -> None:
    w = BitWriter()
    for u, s in values:
        w.ue(u).se(s)
    br = BitReader(w.rbsp(), "test")
    assert [(br.ue(), br.se()) for _ in values] == values


@given(st.binary(max_size=64))
def test_unescape_inverts_escape(rbsp: bytes) -> None:
    assert unescape_rbsp(escape(rbsp)) == rbsp


def test_bit_reader_errors() -> None:
    with pytest.raises(Mp4Error, match="truncated"):
        BitReader(b"\xff", "x").u(9)
    with pytest.raises(Mp4Error, match="longer than 32 bits"):
        BitReader(bytes(8), "x").ue()


# ---------------------------------------------------------------- H.264


def h264_sps(
    *,
    profile: int = 66,
    width_mbs: int = 120,
    height_units: int = 68,
    frame_mbs_only: bool = True,
    crop: tuple[int, int, int, int] | None = None,
    scaling: bool = False,
    chroma: int = 1,
    poc_type: int = 0,
) -> bytes:
    w = BitWriter().u(8, profile).u(8, 0xC0).u(8, 40).ue(0)
    if profile in (100, 110, 122, 244):
        w.ue(chroma)
        if chroma == 3:
            w.u(1, 0)
        w.ue(0).ue(0).u(1, 0).u(1, int(scaling))
        if scaling:
            for i in range(8):
                present = i in (0, 6)
                w.u(1, int(present))
                if present:
                    for j in range(16 if i < 6 else 64):
                        w.se(1 if j == 0 else 0)
    w.ue(0).ue(poc_type)
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.u(1, 0).se(-1).se(2).ue(3).se(1).se(-1).se(0)
    w.ue(1).u(1, 0).ue(width_mbs - 1).ue(height_units - 1).u(1, int(frame_mbs_only))
    if not frame_mbs_only:
        w.u(1, 0)
    w.u(1, 1).u(1, int(crop is not None))
    if crop:
        for c in crop:
            w.ue(c)
    w.u(1, 0)  # vui_parameters_present_flag
    return b"\x67" + escape(w.rbsp())


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        ({}, (1920, 1088)),
        ({"crop": (0, 0, 0, 4)}, (1920, 1080)),
        ({"frame_mbs_only": False, "height_units": 34, "crop": (0, 0, 0, 2)}, (1920, 1080)),
        ({"profile": 100, "scaling": True, "crop": (1, 2, 0, 4), "poc_type": 1}, (1914, 1080)),
        ({"profile": 100, "chroma": 3, "crop": (1, 2, 3, 4), "poc_type": 2}, (1917, 1081)),
        ({"profile": 100, "chroma": 0, "width_mbs": 2, "height_units": 2}, (32, 32)),
    ],
)
def test_h264_sps_size(kwargs: dict, size: tuple[int, int]) -> None:
    info = avc_mod.parse_sps(h264_sps(**kwargs))
    assert (info.width, info.height) == size
    assert info.profile_idc == kwargs.get("profile", 66)
    assert (info.constraint_flags, info.level_idc) == (0xC0, 40)


@pytest.mark.parametrize(
    "nal",
    [
        b"\x68\x00",
        b"\x67",
        b"\x67\x42\x00\x1e",
        h264_sps(crop=(0, 0, 0, 600)),
        h264_sps(width_mbs=5000),
        b"\x67" + BitWriter().u(8, 66).u(16, 0).ue(40).rbsp(),
    ],
)
def test_h264_sps_rejects_bad_input(nal: bytes) -> None:
    with pytest.raises(Mp4Error, match=r"H\.264 SPS"):
        avc_mod.parse_sps(nal)


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


def _annexb(data: bytes) -> list[bytes]:
    parts = data.split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts[1:]]


def test_h264_from_x264_cropped() -> None:
    nals = _annexb(_encode_one("libx264", 170, 90))
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
    nals = _annexb(_encode_one("libx265", 170, 90, **{"x265-params": "log-level=error"}))
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


def h265_sps(sub_layers: int, crop: tuple[int, int, int, int], chroma: int = 1) -> bytes:
    w = BitWriter().u(4, 0).u(3, sub_layers - 1).u(1, 1)
    w.u(2, 0).u(1, 1).u(5, 2).u(32, 0x20000000).u(48, 0x900000000000).u(8, 153)
    for _ in range(sub_layers - 1):
        w.u(1, 1).u(1, 1)
    if sub_layers > 1:
        w.u(2 * (9 - sub_layers), 0)
    for _ in range(sub_layers - 1):
        w.u(88, 0).u(8, 120)
    w.ue(0).ue(chroma)
    if chroma == 3:
        w.u(1, 0)
    w.ue(3840).ue(2176).u(1, 1)
    for c in crop:
        w.ue(c)
    w.ue(2).ue(2)
    return b"\x42\x01" + escape(w.rbsp())


@pytest.mark.parametrize(
    ("sub_layers", "chroma", "crop", "size"),
    [
        (1, 1, (0, 0, 0, 8), (3840, 2160)),
        (3, 1, (1, 2, 0, 8), (3834, 2160)),
        (7, 2, (1, 0, 3, 1), (3838, 2172)),
        (2, 3, (1, 1, 1, 1), (3838, 2174)),
    ],
)
def test_h265_sps_fields(
    sub_layers: int, chroma: int, crop: tuple[int, int, int, int], size: tuple[int, int]
) -> None:
    info = hevc_mod.parse_sps(h265_sps(sub_layers, crop, chroma))
    assert (info.width, info.height) == size
    assert (info.tier_flag, info.profile_idc, info.level_idc) == (1, 2, 153)
    assert info.constraint_indicator_flags == 0x900000000000
    assert (info.max_sub_layers, info.bit_depth_luma, info.bit_depth_chroma) == (sub_layers, 10, 10)


# ---------------------------------------------------------------- AAC


def asc(aot: int, rate_index: int, channels: int, explicit_rate: int = 0) -> BitWriter:
    w = BitWriter()
    if aot >= 31:
        w.u(5, 31).u(6, aot - 32)
    else:
        w.u(5, aot)
    w.u(4, rate_index)
    if rate_index == 15:
        w.u(24, explicit_rate)
    return w.u(4, channels)


def _bytes(w: BitWriter) -> bytes:
    bits = w.bits + [0] * (-len(w.bits) % 8)
    return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b"\x14\x08", (2, 16000, 1)),
        (b"\x12\x10", (2, 44100, 2)),
        (b"\x15\x88V\xe5\x00", (2, 8000, 1)),
        (_bytes(asc(2, 15, 1, 12345)), (2, 12345, 1)),
        (_bytes(asc(42, 3, 6)), (42, 48000, 6)),
        (_bytes(asc(5, 6, 2).u(4, 3).u(5, 2)), (2, 48000, 2)),
        (_bytes(asc(29, 15, 1, 24000).u(4, 15).u(24, 48000).u(5, 2)), (2, 48000, 1)),
    ],
)
def test_audio_specific_config(config: bytes, expected: tuple[int, int, int]) -> None:
    info = parse_audio_specific_config(config)
    assert (info.object_type, info.sample_rate, info.channels) == expected


@pytest.mark.parametrize("config", [b"", b"\x17\x88", _bytes(asc(2, 15, 1, 0)), b"\x12"])
def test_audio_specific_config_errors(config: bytes) -> None:
    with pytest.raises(Mp4Error, match="AudioSpecificConfig"):
        parse_audio_specific_config(config)


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


def test_jpeg_dimensions() -> None:
    image = _encode_one("mjpeg", 176, 48, fmt="yuvj420p")
    assert jpeg_dimensions(image) == (176, 48)
    entry = jpeg_entry_for(image)
    assert (entry.fourcc, entry.width, entry.height, entry.handler) == (b"jpeg", 176, 48, b"vide")
    with pytest.raises(Mp4Error, match="SOI"):
        jpeg_dimensions(b"\x00\x00")
    with pytest.raises(Mp4Error, match="no SOF"):
        jpeg_dimensions(b"\xff\xd8\xff\xd9")
    with pytest.raises(Mp4Error, match="expected a marker"):
        jpeg_dimensions(b"\xff\xd8\x00\x00\x00\x00")
    with pytest.raises(Mp4Error, match="empty picture"):
        jpeg_dimensions(b"\xff\xd8\xff\xff\xd0\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x01")


def test_sample_entries_parse_back() -> None:
    sps = h264_sps(crop=(0, 0, 0, 4))
    built = [
        avc_entry([sps], [b"\x68\xee"]),
        aac_entry(b"\x12\x10", avg_bitrate=64000),
        aac_entry(_bytes(asc(2, 0, 2))),  # 96 kHz: too big for the 16.16 field
        g711_entry("ulaw"),
        g711_entry("PCMA"),
        jpeg_entry(640, 480),
        metx_entry(),
        metx_entry(content_encoding="gzip", schema_location="x.xsd"),
    ]
    for entry in built:
        assert parse_sample_entry(entry.box, entry.handler) == entry
    avc, aac, aac96, ulaw, alaw, jpeg, metx, metx_gz = built
    assert (avc.width, avc.height) == (1920, 1080)
    assert (aac.sample_rate, aac.channels, aac.es and aac.es.avg_bitrate) == (44100, 2, 64000)
    assert aac96.sample_rate == 96000
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
