"""H.264 SPS parsing and parameter-set ids: hand-built SPSs for every cropping and profile case,
a size property, and the SPSs of real libx264 streams."""

from __future__ import annotations

import base64

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.annexb import split_annexb
from nvr.protocol.codecs.h264 import AvcSps, nal_type, parameter_set_id, parse_sps
from nvr.protocol.errors import CodecError
from tests.protocol.codec_bitstreams import BitWriter, escape, h264_sps
from tests.protocol.test_payload_support import encode_video

SPS = base64.b64decode("Z2QAHqyyAUB7QgAAAwACAAADAGUeLFyQ")  # libx264, 640x480 High
PPS = base64.b64decode("aOvDyyLA")


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
def test_sps_size_and_fields(kwargs: dict, size: tuple[int, int]) -> None:
    nal = h264_sps(**kwargs)
    info = parse_sps(nal)
    assert isinstance(info, AvcSps) and info.codec == "h264"
    assert (info.width, info.height) == size
    assert info.profile_idc == kwargs.get("profile", 66)
    assert (info.constraint_flags, info.level_idc, info.sps_id) == (0xC0, 40, 0)
    assert info.chroma_format_idc == kwargs.get("chroma", 1)
    assert info.ptl == nal[1:4] and info.codec_string == "avc1." + nal[1:4].hex()


# Crop units per chroma_format_idc (Table 6-1: SubWidthC, SubHeightC; 1 for monochrome).
_CROP_UNITS = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


@given(
    chroma=st.integers(0, 3),
    frame_mbs_only=st.booleans(),
    width=st.integers(1, 4096),
    height=st.integers(1, 2304),
)
def test_cropping_gives_back_any_display_size(
    chroma: int, frame_mbs_only: bool, width: int, height: int
) -> None:
    unit_x, unit_y = _CROP_UNITS[chroma]
    fields = 1 if frame_mbs_only else 2  # a map unit is 16 rows of each field
    unit_y *= fields
    width = max(unit_x, width - width % unit_x)
    height = max(unit_y, height - height % unit_y)
    width_mbs, height_units = -(-width // 16), -(-height // (16 * fields))
    crop_right = (16 * width_mbs - width) // unit_x
    crop_bottom = (16 * fields * height_units - height) // unit_y
    crop = (0, crop_right, 0, crop_bottom)
    nal = h264_sps(
        profile=100,
        chroma=chroma,
        frame_mbs_only=frame_mbs_only,
        width_mbs=width_mbs,
        height_units=height_units,
        crop=crop,
    )
    info = parse_sps(nal)
    assert (info.width, info.height) == (width, height)


@pytest.mark.parametrize(
    "nal",
    [
        b"",
        b"\x68\x00",
        PPS,
        b"\x67",
        b"\x67\x42\x00\x1e",
        SPS[:5],
        b"\x67" + b"\xff" * 3 + b"\x00" * 8,
        h264_sps(crop=(0, 0, 0, 600)),
        h264_sps(width_mbs=5000),
        h264_sps(sps_id=32),
        h264_sps(poc_type=3),
        b"\x67" + BitWriter().u(8, 66).u(16, 0).ue(40).rbsp(),
        b"\x67" + escape(BitWriter().u(8, 100).u(16, 0).ue(0).ue(4).rbsp()),  # chroma 4
        b"\x67" + escape(BitWriter().u(8, 100).u(16, 0).ue(0).ue(1).ue(7).ue(0).rbsp()),
    ],
)
def test_bad_sps_is_refused(nal: bytes) -> None:
    with pytest.raises(CodecError, match=r"H\.264 SPS"):
        parse_sps(nal)


def test_parameter_set_ids() -> None:
    assert parameter_set_id(h264_sps(sps_id=5)) == 5
    assert parameter_set_id(b"\x68" + BitWriter().ue(17).ue(3).rbsp()) == 17  # PPS
    assert parameter_set_id(PPS) == 0 and parameter_set_id(SPS) == 0
    assert nal_type(SPS) == 7 and nal_type(PPS) == 8
    with pytest.raises(CodecError):
        nal_type(b"")


@pytest.mark.parametrize(
    ("width", "height", "profile"),
    [(322, 242, "high"), (1920, 1080, "baseline"), (176, 144, "main")],
)
def test_sps_of_real_streams(width: int, height: int, profile: str) -> None:
    if "libx264" not in av.codecs_available:
        pytest.skip("libx264 not in PyAV")
    (packet,) = encode_video("libx264", width, height, 1, profile=profile, tune="zerolatency")
    sps = next(n for n in split_annexb(packet) if nal_type(n) == 7)
    info = parse_sps(sps)
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == {"baseline": 66, "main": 77, "high": 100}[profile]
    assert info.codec_string == "avc1." + sps[1:4].hex()
    assert info.chroma_format_idc == 1 and info.bit_depth_luma == 8
    assert info.ptl == sps[1:4] and info.sps_id == 0
