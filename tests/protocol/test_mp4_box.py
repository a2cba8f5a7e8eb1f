"""Box headers, the box tree and the walker (over buffers and ranged reads)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.errors import ProtocolError
from nvr.protocol.mp4 import Box, Mp4Error, box, decode_header, full_box, header, iter_boxes, walk
from nvr.protocol.mp4.box import Reader, child_map, fourcc

box_types = st.binary(min_size=4, max_size=4).filter(lambda t: t != b"uuid")


@given(box_types, st.integers(0, (1 << 40)), st.booleans())
def test_header_round_trip(box_type: bytes, payload_size: int, large: bool) -> None:
    raw = header(box_type, payload_size, large=large)
    expect_large = large or payload_size + 8 > 0xFFFFFFFF
    assert len(raw) == (16 if expect_large else 8)
    size = len(raw) + payload_size
    hdr = decode_header(raw, 0, size)
    assert (hdr.type, hdr.offset, hdr.header_size, hdr.size) == (box_type, 0, len(raw), size)
    assert hdr.payload_size == payload_size and hdr.end == size


@given(st.binary(min_size=16, max_size=16), st.binary(max_size=64), st.booleans())
def test_uuid_round_trip(usertype: bytes, payload: bytes, large: bool) -> None:
    raw = header(b"uuid", len(payload), usertype=usertype, large=large) + payload
    hdr = decode_header(raw, 0, len(raw))
    assert hdr.usertype == usertype
    assert hdr.header_size == (32 if large else 24)
    assert raw[hdr.payload_offset : hdr.end] == payload


@given(st.lists(st.tuples(box_types, st.binary(max_size=40)), max_size=8))
def test_iter_boxes_round_trip(boxes: list[tuple[bytes, bytes]]) -> None:
    data = b"".join(box(t, p) for t, p in boxes)
    got = [(h.type, data[h.payload_offset : h.end]) for h in iter_boxes(data)]
    assert got == boxes


def test_header_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        header(b"abc", 0)
    with pytest.raises(ValueError):
        header(b"uuid", 0)
    with pytest.raises(ValueError):
        header(b"free", 0, usertype=bytes(16))
    with pytest.raises(ValueError):
        full_box(b"free", 256, 0)
    assert fourcc("moov") == b"moov"


def test_size_zero_extends_to_end() -> None:
    data = box(b"ftyp", b"isom") + b"\x00\x00\x00\x00mdat" + b"x" * 100
    hdrs = list(walk(data))
    assert hdrs[1].type == b"mdat" and hdrs[1].end == len(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x10moov" + bytes(4), "runs past the end"),
        (b"\x00\x00\x00\x04free", "smaller than header"),
        (b"\x00\x00\x00\x01free\x00\x00\x00\x00\x00\x00\x00\x08", "smaller than header"),
        (b"\x00\x00\x00\x01free\x00\x00", "truncated largesize"),
        (b"\x00\x00\x00\x18uuid" + bytes(8), "truncated usertype"),
        (b"\x00\x00\x00", "truncated"),
        (box(b"moov", b"\x00\x00\x00\x20trak"), "'trak' at offset 8: size 32 runs past"),
        (box(b"moov", b"junk!"), r"offset 8: truncated \(5 bytes left\)"),
        (box(b"stsd", b"\x00"), "'stsd' at offset 0: payload of 1 bytes is too short"),
    ],
)
def test_walk_errors_name_the_box(data: bytes, message: str) -> None:
    with pytest.raises(Mp4Error, match=message) as info:
        list(walk(data))
    assert isinstance(info.value, ProtocolError)


def test_container_zero_terminator_tolerated() -> None:
    data = box(b"udta", box(b"name", b"x"), bytes(4))
    assert [h.type for h in walk(data)] == [b"udta", b"name"]


def _sample_tree() -> bytes:
    stsd = full_box(b"stsd", 0, 0, (1).to_bytes(4, "big"), box(b"avc1", bytes(78)))
    stbl = box(b"stbl", stsd, full_box(b"stts", 0, 0, bytes(4)))
    trak = box(b"trak", box(b"mdia", box(b"minf", stbl)))
    iso_meta = full_box(b"meta", 0, 0, full_box(b"hdlr", 0, 0, bytes(20)), box(b"suep", b"x"))
    qt_meta = box(b"meta", full_box(b"hdlr", 0, 0, bytes(20)), box(b"ilst"))
    ipro = full_box(b"ipro", 0, 0, b"\x00\x01", box(b"sinf", box(b"schi", box(b"sibo", bytes(8)))))
    moov = box(b"moov", trak, box(b"udta", qt_meta))
    return box(b"ftyp", b"isom") + moov + box(b"meta", iso_meta[8:]) + ipro


def test_walk_descends_containers() -> None:
    data = _sample_tree()
    got = [(h.depth, h.type) for h in walk(data)]
    assert got == [
        (0, b"ftyp"),
        (0, b"moov"),
        (1, b"trak"),
        (2, b"mdia"),
        (3, b"minf"),
        (4, b"stbl"),
        (5, b"stsd"),
        (6, b"avc1"),
        (5, b"stts"),
        (1, b"udta"),
        (2, b"meta"),  # QuickTime style: no version/flags
        (3, b"hdlr"),
        (3, b"ilst"),
        (0, b"meta"),  # ISO FullBox
        (1, b"hdlr"),
        (1, b"suep"),
        (0, b"ipro"),
        (1, b"sinf"),
        (2, b"schi"),
        (3, b"sibo"),
    ]
    assert [h.type for h in walk(data, containers={})] == [b"ftyp", b"moov", b"meta", b"ipro"]
    assert max(h.depth for h in walk(data, max_depth=2)) == 1
    assert set(child_map(data)) == {b"ftyp", b"moov", b"meta", b"ipro"}


def test_walk_with_read_at_matches_buffer() -> None:
    data = _sample_tree()
    calls: list[tuple[int, int]] = []

    def read_at(offset: int, size: int) -> bytes:
        calls.append((offset, size))
        return data[offset : offset + size]

    assert list(walk(read_at, size=len(data))) == list(walk(data))
    with pytest.raises(ValueError):
        list(walk(read_at))


def test_walk_ten_gigabytes_reads_only_headers() -> None:
    """A virtual 10 GiB file: the walker touches headers, never the mdat payload."""
    head = box(b"ftyp", b"isom") + box(b"moov", box(b"mvex"))
    mdat_payload = 10 << 30
    mdat = header(b"mdat", mdat_payload)
    assert len(mdat) == 16
    tail = box(b"moof", full_box(b"mfhd", 0, 0, bytes(4)), box(b"traf")) + box(b"free")
    mdat_end = len(head) + len(mdat) + mdat_payload
    total = mdat_end + len(tail)
    fetched = 0

    def read_at(offset: int, size: int) -> bytes:
        nonlocal fetched
        fetched += size
        out = bytearray()
        for start, chunk, end in ((0, head + mdat, mdat_end), (mdat_end, tail, total)):
            lo, hi = max(offset, start), min(offset + size, end)
            if lo < hi:
                piece = chunk[lo - start : hi - start]
                out += piece + bytes(hi - lo - len(piece))  # mdat payload reads as zeros
        return bytes(out)

    got = [(h.type, h.offset, h.size) for h in walk(read_at, size=total)]
    assert [t for t, _, _ in got] == [
        b"ftyp",
        b"moov",
        b"mvex",
        b"mdat",
        b"moof",
        b"mfhd",
        b"traf",
        b"free",
    ]
    assert got[3] == (b"mdat", len(head), 16 + mdat_payload)
    assert got[4][1] == mdat_end
    assert fetched < 1000


def test_reader_short_read_is_protocol_error() -> None:
    reader = Reader(lambda offset, size: b"ab", size=100)
    with pytest.raises(Mp4Error, match="short read"):
        reader.read(0, 10)
    with pytest.raises(Mp4Error, match="outside the file"):
        reader.read(95, 10)


def test_box_tree_accepts_injected_children() -> None:
    udta = Box(b"udta", children=[box(b"loci", b"somewhere")])
    moov = Box(b"moov", children=[Box.full(b"mvhd", 1, 0, bytes(4)), udta])
    found = moov.find_path("udta")
    assert found is udta
    assert moov.find(b"trak") is None and moov.find_path("trak", "mdia") is None
    udta.children.append(Box(b"uuid", b"payload", usertype=bytes(range(16))))
    data = moov.encode()
    got = [(h.depth, h.type) for h in walk(data)]
    assert got == [(0, b"moov"), (1, b"mvhd"), (1, b"udta"), (2, b"loci"), (2, b"uuid")]
    mvhd = next(h for h in walk(data) if h.type == b"mvhd")
    assert data[mvhd.payload_offset : mvhd.payload_offset + 4] == b"\x01\x00\x00\x00"
