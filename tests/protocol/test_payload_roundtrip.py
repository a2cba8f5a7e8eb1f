"""Property tests shared by every payload format: packetize -> depacketize gives the same units,
and a lossy, duplicating channel never makes a depacketizer emit a wrong unit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.protocol.codecs.annexb import nals_to_length_prefixed
from nvr.protocol.payload import make_depacketizer, make_packetizer
from nvr.protocol.payload.base import Depacketizer, Packetizer
from nvr.protocol.payload.jpeg_headers import (
    DHT,
    SOF0,
    STANDARD_HUFFMAN_TABLES,
    dqt_segment,
    dri_segment,
    parse_jpeg,
    segment,
    sof_segment,
    sos_segment,
)
from tests.protocol.test_payload_support import deliver, packetize_all

AAC_CONFIG = {"mode": "AAC-hbr", "sizelength": "13", "indexlength": "3", "config": "1190"}


# -- access unit strategies -------------------------------------------------------------------


def _h26x_units(header: Callable[[int], bytes], aud: int, slice_types: list[int]):
    """Units of one consistently structured stream: optional AUD, first slice, more slices."""

    @st.composite
    def units(draw: st.DrawFn) -> list[bytes]:
        with_aud = draw(st.booleans())
        out = []
        for _ in range(draw(st.integers(1, 5))):
            nals = [header(aud) + b"\x10"] if with_aud else []
            for n in range(draw(st.integers(1, 3))):
                size = draw(st.integers(1, 3000))
                body = draw(st.binary(min_size=size, max_size=size))
                first = (body[0] | 0x80) if n == 0 else (body[0] & 0x7F)
                nals.append(header(draw(st.sampled_from(slice_types))) + bytes((first,)) + body[1:])
            out.append(nals_to_length_prefixed(nals))
        return out

    return units()


h264_units = _h26x_units(lambda t: bytes((0x60 | t,)), 9, [1, 5])
h265_units = _h26x_units(lambda t: bytes((t << 1, 1)), 35, [1, 19, 21])


@st.composite
def jpeg_streams(draw: st.DrawFn) -> list[bytes]:
    """Frames of one camera stream: fixed size, sampling and Huffman tables (plain RFC 2435 or
    needing the ONVIF extension), random quantization tables, restart interval and scan."""
    grey = draw(st.booleans()) and draw(st.booleans())
    width = draw(st.sampled_from([8, 64, 320, 322, 2040, 2048, 4000]))
    height = draw(st.sampled_from([8, 48, 240, 242, 2040, 3000]))
    sampling = draw(st.sampled_from([0x21, 0x22, 0x11]))
    comps = [(1, sampling, 0)] if grey else [(1, sampling, 0), (2, 0x11, 1), (3, 0x11, 1)]
    huffman = list(STANDARD_HUFFMAN_TABLES)
    if draw(st.booleans()):  # a non-standard (but well-formed) AC luma table
        counts = bytes((0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D))
        huffman[1] = b"\x10" + counts + bytes(range(162))
    frames = []
    for _ in range(draw(st.integers(1, 4))):
        tables = [draw(st.binary(min_size=64, max_size=64)).replace(b"\0", b"\1") for _ in "yc"]
        parts = [
            b"\xff\xd8",
            segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            dqt_segment([(0, 0, tables[0]), (1, 0, tables[1])]),
            sof_segment(SOF0, width, height, comps),
            segment(DHT, b"".join(huffman)),
        ]
        if draw(st.booleans()):
            parts.append(dri_segment(draw(st.integers(1, 200))))
        parts.append(sos_segment([c[0] for c in comps]))
        size = draw(st.integers(1, 6000))
        parts.append(draw(st.binary(min_size=size, max_size=size)).replace(b"\xff", b"\xfe"))
        parts.append(b"\xff\xd9")
        frames.append(b"".join(parts))
    return frames


def _jpeg_canonical(data: bytes) -> tuple:
    """What a rebuilt JPEG must preserve: size, per-component tables, Huffman, restart, scan."""
    img = parse_jpeg(data)
    return (
        img.width,
        img.height,
        [(cid, hv, img.quant[tq]) for cid, hv, tq in img.components],
        sorted(bytes(t) for t in img.huffman) or sorted(STANDARD_HUFFMAN_TABLES),
        img.restart_interval,
        bytes(img.scan),
    )


_XML_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="<>&", exclude_categories=["Cs"]),
    max_size=3000,
)
metadata_docs = st.lists(
    _XML_TEXT.map(
        lambda text: (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
            f"<tt:Extension>{text}</tt:Extension></tt:MetadataStream>"
        ).encode()
    ),
    min_size=1,
    max_size=5,
)


@dataclass(frozen=True)
class Format:
    name: str
    packetizer: Callable[[int], Packetizer]
    depacketizer: Callable[[], Depacketizer]
    units: st.SearchStrategy[list[bytes]]
    ts_step: int
    mtus: st.SearchStrategy[int]
    canonical: Callable[[bytes], object] = bytes


FORMATS = [
    Format(
        "H264",
        lambda mtu: make_packetizer("H264", 90000, mtu=mtu),
        lambda: make_depacketizer("h264", 90000, {"packetization-mode": "1"}),
        h264_units,
        3000,
        st.integers(100, 1500),
    ),
    Format(
        "H265",
        lambda mtu: make_packetizer("H265", 90000, mtu=mtu),
        lambda: make_depacketizer("H265", 90000),
        h265_units,
        3000,
        st.integers(100, 1500),
    ),
    Format(
        "JPEG",
        lambda mtu: make_packetizer("JPEG", 90000, mtu=mtu),
        lambda: make_depacketizer("JPEG", 90000),
        jpeg_streams(),
        3000,
        st.integers(200, 1500),
        _jpeg_canonical,
    ),
    Format(
        "AAC",
        lambda mtu: make_packetizer("MPEG4-GENERIC", 48000, AAC_CONFIG, mtu=mtu),
        lambda: make_depacketizer("mpeg4-generic", 48000, AAC_CONFIG),
        st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=6),
        1024,
        st.integers(50, 1500),
    ),
    Format(
        "PCMU",
        lambda mtu: make_packetizer("PCMU", 8000, mtu=1500),
        lambda: make_depacketizer("pcmu", 8000),
        st.lists(st.binary(min_size=1, max_size=1500), min_size=1, max_size=6),
        1500,
        st.just(1500),
    ),
    Format(
        "metadata",
        lambda mtu: make_packetizer("vnd.onvif.metadata", 90000, mtu=mtu),
        lambda: make_depacketizer("VND.ONVIF.METADATA", 90000),
        metadata_docs,
        9000,
        st.integers(64, 1500),
    ),
]

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@_SETTINGS
@given(data=st.data())
def test_round_trip(fmt: Format, data: st.DataObject) -> None:
    units = data.draw(fmt.units)
    mtu = data.draw(fmt.mtus)
    packets = packetize_all(fmt.packetizer(mtu).packetize, units, fmt.ts_step)
    assert all(
        len(p.payload) + (4 + len(p.extension.data) if p.extension else 0) <= mtu for p in packets
    )
    out = deliver(fmt.depacketizer(), packets)
    assert [fmt.canonical(au.data) for au in out] == [fmt.canonical(u) for u in units]
    assert [au.rtp_timestamp for au in out] == [i * fmt.ts_step for i in range(len(units))]
    assert not any(au.after_loss for au in out)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@_SETTINGS
@given(data=st.data())
def test_lossy_channel_never_emits_a_wrong_unit(fmt: Format, data: st.DataObject) -> None:
    units = data.draw(fmt.units)
    mtu = data.draw(fmt.mtus)
    packets = packetize_all(fmt.packetizer(mtu).packetize, units, fmt.ts_step)
    # The first packet is never dropped: a receiver cannot know about losses before it.
    drop = (
        frozenset(data.draw(st.sets(st.integers(1, len(packets) - 1))))
        if packets[1:]
        else frozenset()
    )
    duplicate = frozenset(data.draw(st.sets(st.integers(0, len(packets) - 1))))
    out = deliver(fmt.depacketizer(), packets, drop, duplicate)

    by_ts = {i * fmt.ts_step: i for i in range(len(units))}
    damaged = {packets[n].unit for n in drop}
    emitted = []
    for au in out:
        assert au.rtp_timestamp in by_ts
        index = by_ts[au.rtp_timestamp]
        assert fmt.canonical(au.data) == fmt.canonical(units[index]), "wrong unit emitted"
        emitted.append(index)
    assert emitted == sorted(set(emitted)), "units out of order or repeated"
    # Once a unit got through (a receiver learns how the camera starts its units), every
    # unit that arrives whole is emitted, and only those.
    if emitted:
        expected = [i for i in range(emitted[0], len(units)) if i not in damaged]
        assert emitted == expected
    # The first unit after a loss says so.
    previous = -1
    for au, index in zip(out, emitted, strict=True):
        lost_between = any(previous < u < index for u in damaged)
        assert au.after_loss == lost_between
        previous = index
