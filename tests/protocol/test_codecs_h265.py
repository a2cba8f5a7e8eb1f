"""H.265 SPS parsing and parameter-set ids: hand-built SPSs for sub-layers, chroma formats and
conformance windows, a size property, and the SPSs of real libx265 streams."""

from __future__ import annotations

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.annexb import length_prefixed_to_nals
from nvr.protocol.codecs.h265 import HevcSps, nal_type, parameter_set_id, parse_sps
from nvr.protocol.errors import CodecError
from tests.protocol.codec_bitstreams import BitWriter, h265_sps
from tests.protocol.test_payload_support import encode_video, h26x_access_units

VPS = bytes.fromhex("40010c01ffff016000000300900000030000030078959809")
PPS = bytes.fromhex("4401c172b46240")


@pytest.mark.parametrize(
    ("sub_layers", "chroma", "crop", "size"),
    [
        (1, 1, (0, 0, 0, 8), (3840, 2160)),
        (3, 1, (1, 2, 0, 8), (3834, 2160)),
        (7, 2, (1, 0, 3, 1), (3838, 2172)),
        (2, 3, (1, 1, 1, 1), (3838, 2174)),
        (1, 0, (1, 1, 1, 1), (3838, 2174)),
    ],
)
def test_sps_fields(
    sub_layers: int, chroma: int, crop: tuple[int, int, int, int], size: tuple[int, int]
) -> None:
    nal = h265_sps(sub_layers, crop, chroma)
    info = parse_sps(nal)
    assert isinstance(info, HevcSps) and info.codec == "h265"
    assert (info.width, info.height) == size
    assert (info.profile_space, info.tier_flag, info.profile_idc, info.level_idc) == (0, 1, 2, 153)
    assert info.profile_compatibility_flags == 0x20000000
    assert info.constraint_indicator_flags == 0x900000000000
    assert (info.max_sub_layers, info.bit_depth_luma, info.bit_depth_chroma) == (sub_layers, 10, 10)
    assert info.temporal_id_nesting and info.chroma_format_idc == chroma
    assert info.ptl == bytes.fromhex("222000000090000000000099")
    assert info.codec_string == "hvc1.2.4.H153.90"


# Conformance window units per chroma_format_idc (SubWidthC, SubHeightC).
_WINDOW_UNITS = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


@given(
    chroma=st.integers(0, 3),
    sub_layers=st.integers(1, 7),
    width=st.integers(1, 8192),
    height=st.integers(1, 4320),
    sps_id=st.integers(0, 15),
)
def test_window_gives_back_any_display_size(
    chroma: int, sub_layers: int, width: int, height: int, sps_id: int
) -> None:
    unit_x, unit_y = _WINDOW_UNITS[chroma]
    width = max(unit_x, width - width % unit_x)
    height = max(unit_y, height - height % unit_y)
    coded = (-(-width // 8) * 8, -(-height // 8) * 8)
    crop = (0, (coded[0] - width) // unit_x, 0, (coded[1] - height) // unit_y)
    nal = h265_sps(sub_layers, crop, chroma, size=coded, sps_id=sps_id)
    info = parse_sps(nal)
    assert (info.width, info.height, info.sps_id) == (width, height, sps_id)
    assert parameter_set_id(nal) == sps_id


@pytest.mark.parametrize(
    "nal",
    [
        b"",
        PPS,
        VPS,
        h265_sps(1, (0, 0, 0, 8))[:8],
        h265_sps(1, (0, 0, 0, 8))[:20],
        h265_sps(1, (0, 0, 0, 1200)),
        h265_sps(1, (0, 0, 0, 0), sps_id=16),
        bytes((33 << 1, 1)) + b"\x01" + b"\xff" * 20,
        b"\x42\x01" + BitWriter().u(4, 0).u(3, 7).rbsp(),  # eight sub-layers
    ],
)
def test_bad_sps_is_refused(nal: bytes) -> None:
    with pytest.raises(CodecError, match=r"H\.265"):
        parse_sps(nal)


def test_parameter_set_ids_and_types() -> None:
    assert (nal_type(VPS), nal_type(PPS)) == (32, 34)
    assert parameter_set_id(VPS) == 0 and parameter_set_id(b"\x40\x01\x3c") == 3
    assert parameter_set_id(PPS) == 0
    assert parameter_set_id(b"\x44\x01" + BitWriter().ue(9).rbsp()) == 9
    with pytest.raises(CodecError, match="2-byte header"):
        nal_type(b"\x42")


@pytest.mark.parametrize(("width", "height"), [(322, 242), (640, 360)])
def test_sps_of_real_streams(width: int, height: int) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("libx265 not in PyAV")
    packet = encode_video("libx265", width, height, 1, **{"x265-params": "log-level=none"})[0]
    units = h26x_access_units("libx265", width, height, 1)
    sps = next(n for n in length_prefixed_to_nals(units[0]) if nal_type(n) == 33)
    info = parse_sps(sps)
    assert packet and (info.width, info.height) == (width, height)
    assert info.profile_idc == 1 and info.chroma_format_idc == 1
    assert info.codec == "h265" and len(info.ptl) == 12
    assert info.codec_string.startswith("hvc1.1.6.L")
