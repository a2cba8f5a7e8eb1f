"""JPEG syntax: marker walking, segments, the header parser RTP/JPEG uses, and picture size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.jpeg import (
    DQT,
    DRI,
    SOF0,
    SOF_MARKERS,
    SOS,
    STANDARD_DHT,
    dqt_segment,
    dri_segment,
    iter_markers,
    jpeg_dimensions,
    parse_jpeg,
    segment,
    sof_segment,
    sos_segment,
    split_segments,
)
from nvr.protocol.errors import CodecError
from tests.protocol.test_payload_support import encode_video

COMPONENTS = [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)]


def jpeg(width: int, height: int, marker: int = SOF0, restart: int = 0) -> bytes:
    tables = dqt_segment([(0, 0, bytes(range(1, 65))), (1, 0, bytes([9] * 64))])
    head = [tables, sof_segment(marker, width, height, COMPONENTS), STANDARD_DHT]
    if restart:
        head.append(dri_segment(restart))
    return b"\xff\xd8" + b"".join(head) + sos_segment([1, 2, 3]) + b"\x12\x34" + b"\xff\xd9"


def test_dimensions_of_a_real_image() -> None:
    image = encode_video("mjpeg", 176, 48, 1)[0]
    assert jpeg_dimensions(image) == (176, 48)
    img = parse_jpeg(image)
    assert (img.width, img.height, img.sof_marker) == (176, 48, SOF0)
    # Progressive: the size is known, but RTP/JPEG cannot carry it.
    progressive = image.replace(b"\xff\xc0", b"\xff\xc2", 1)
    assert jpeg_dimensions(progressive) == (176, 48)
    with pytest.raises(CodecError, match="not sequential"):
        parse_jpeg(progressive)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x00", "SOI"),
        (b"\xff\xd8\xff\xd9", "no SOF"),
        (b"\xff\xd8" + sos_segment([1]) + sof_segment(SOF0, 8, 8, COMPONENTS), "no SOF"),
        (b"\xff\xd8\x00\x00\x00\x00", "expected a marker"),
        (b"\xff\xd8\xff\xc4\x00\x01", "length 1"),
        (b"\xff\xd8\xff\xc0\x00", "truncated"),
        (b"\xff\xd8\xff\xc0\x00\x05\x08\x00", "truncated SOF"),
        (b"\xff\xd8\xff\xff\xd0\xff\xc0\x00\x0b\x08\x00\x00\x00\x10\x01", "empty picture"),
    ],
)
def test_dimensions_of_broken_images(data: bytes, error: str) -> None:
    with pytest.raises(CodecError, match=error):
        jpeg_dimensions(data)


@given(
    marker=st.sampled_from(sorted(SOF_MARKERS)),
    width=st.integers(1, 0xFFFF),
    height=st.integers(1, 0xFFFF),
    fill=st.integers(0, 3),
)
def test_dimensions_of_any_frame_header(marker: int, width: int, height: int, fill: int) -> None:
    app0 = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    image = b"\xff\xd8" + app0 + b"\xff" * fill + sof_segment(marker, width, height, COMPONENTS)
    assert jpeg_dimensions(image) == (width, height)


@given(
    st.lists(
        st.tuples(st.sampled_from([0xC4, 0xDB, 0xDD, 0xE0, 0xEE, 0xFE]), st.binary(max_size=40)),
        max_size=6,
    ),
    st.lists(st.integers(0, 3), min_size=8, max_size=8),
)
def test_split_segments_gives_back_what_was_joined(
    segments: list[tuple[int, bytes]], fills: list[int]
) -> None:
    built = [(marker, segment(marker, body)) for marker, body in segments]
    built.append((SOS, sos_segment([1])))
    data = b"".join(b"\xff" * fills[i % 8] + seg for i, (_, seg) in enumerate(built))
    out, end = split_segments(data + b"scan data")
    assert out == built and data[end:] == b"" and end == len(data)
    assert [m for m, _, _ in iter_markers(data)] == [m for m, _ in built]


def test_split_segments_refuses_a_segment_that_overruns() -> None:
    with pytest.raises(CodecError, match="overruns"):
        split_segments(segment(DQT, bytes(64))[:-1])
    ends = [(0xD8, b"\xff\xd8"), (0xD9, b"\xff\xd9")]
    assert split_segments(b"\xff\xd8\xff\xd9\xff\xff") == (ends, 6)  # trailing fill


def test_parse_jpeg_takes_the_header_apart() -> None:
    img = parse_jpeg(jpeg(640, 480, restart=4))
    assert (img.width, img.height, img.components) == (640, 480, COMPONENTS)
    assert img.quant == {0: (0, bytes(range(1, 65))), 1: (0, bytes([9] * 64))}
    assert len(img.huffman) == 4 and img.restart_interval == 4
    assert img.scan_components == [(1, 0x00), (2, 0x11), (3, 0x11)]
    assert bytes(img.scan) == b"\x12\x34"
    assert [m for m, _ in img.header_segments] == [DQT, SOF0, 0xC4, DRI]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8\xff\xd9",
        jpeg(16, 16)[:40],
        jpeg(16, 16).replace(sos_segment([1, 2, 3]), b""),
        jpeg(0, 16),
        jpeg(16, 16).replace(b"\x12\x34", b""),
    ],
)
def test_parse_jpeg_refuses_what_it_cannot_take_apart(data: bytes) -> None:
    with pytest.raises(CodecError):
        parse_jpeg(data)
