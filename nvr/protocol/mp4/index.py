"""Movie fragment random access: ``mfra`` with one ``tfra`` per track and the trailing ``mfro``.

``mfro`` at the very end gives the size of ``mfra``, so a reader finds the index of a large
file from its last 16 bytes without scanning the fragments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from nvr.protocol.mp4.box import Reader, Source, box, full_box, iter_boxes
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error


class RandomAccessEntry(NamedTuple):
    """A sync sample: presentation ``time`` (track timescale) and where to find it.

    ``traf_number``, ``trun_number`` and ``sample_number`` are 1-based, as in ``tfra``.
    """

    time: int
    moof_offset: int
    traf_number: int
    trun_number: int
    sample_number: int


def _width(values: Iterable[int]) -> int:
    top = max(values, default=0)
    for n in (1, 2, 3, 4):
        if top < 1 << (8 * n):
            return n
    raise ValueError(f"tfra number {top} does not fit 32 bits")


def build_tfra(track_id: int, entries: Iterable[RandomAccessEntry]) -> bytes:
    rows = list(entries)
    widths = (
        _width(e.traf_number for e in rows),
        _width(e.trun_number for e in rows),
        _width(e.sample_number for e in rows),
    )
    out = bytearray()
    out += track_id.to_bytes(4, "big")
    out += (((widths[0] - 1) << 4) | ((widths[1] - 1) << 2) | (widths[2] - 1)).to_bytes(4, "big")
    out += len(rows).to_bytes(4, "big")
    for e in rows:
        out += e.time.to_bytes(8, "big") + e.moof_offset.to_bytes(8, "big")
        out += e.traf_number.to_bytes(widths[0], "big")
        out += e.trun_number.to_bytes(widths[1], "big")
        out += e.sample_number.to_bytes(widths[2], "big")
    return full_box(b"tfra", 1, 0, bytes(out))


def build_mfra(entries: Mapping[int, Iterable[RandomAccessEntry]]) -> bytes:
    """``mfra`` for the given per-track entries; tracks without entries get no ``tfra``."""
    tfras = []
    for track_id, rows in entries.items():
        rows = list(rows)
        if rows:
            tfras.append(build_tfra(track_id, rows))
    body = b"".join(tfras)
    total = 8 + len(body) + 16
    return box(b"mfra", body, full_box(b"mfro", 0, 0, total.to_bytes(4, "big")))


def parse_tfra(payload: bytes) -> tuple[int, list[RandomAccessEntry]]:
    """Track id and entries of a ``tfra`` payload (after the box header)."""
    cur = Cursor(payload, "tfra")
    version, _ = cur.full_box()
    if version > 1:
        raise cur.fail(f"unsupported version {version}")
    track_id = cur.u32("track_ID")
    sizes = cur.u32("length sizes")
    wa, wb, wc = ((sizes >> 4) & 3) + 1, ((sizes >> 2) & 3) + 1, (sizes & 3) + 1
    count = cur.u32("number_of_entry")
    tw = 8 if version else 4
    row = 2 * tw + wa + wb + wc
    if count * row > cur.remaining:
        raise cur.fail(f"{count} entries of {row} bytes do not fit in {cur.remaining} bytes")
    rows = [
        RandomAccessEntry(cur.uint(tw), cur.uint(tw), cur.uint(wa), cur.uint(wb), cur.uint(wc))
        for _ in range(count)
    ]
    return track_id, rows


def parse_mfra(data: bytes) -> dict[int, list[RandomAccessEntry]]:
    """Entries per track id from a complete ``mfra`` box."""
    hdrs = list(iter_boxes(data))
    if len(hdrs) != 1 or hdrs[0].type != b"mfra":
        raise Mp4Error("mfra: expected one complete 'mfra' box")
    out: dict[int, list[RandomAccessEntry]] = {}
    for hdr in iter_boxes(data, hdrs[0].payload_offset, hdrs[0].end):
        if hdr.type == b"tfra":
            track_id, rows = parse_tfra(data[hdr.payload_offset : hdr.end])
            out.setdefault(track_id, []).extend(rows)
    return out


def read_mfra(source: Source, size: int | None = None) -> dict[int, list[RandomAccessEntry]] | None:
    """Locate ``mfra`` through the trailing ``mfro`` and parse it; ``None`` if there is none."""
    reader = Reader(source, size)
    if reader.size < 16:
        return None
    tail = reader.read(reader.size - 16, 16, "mfro")
    if tail[4:8] != b"mfro" or int.from_bytes(tail[:4], "big") != 16:
        return None
    length = int.from_bytes(tail[12:16], "big")
    if not 16 <= length <= reader.size:
        raise Mp4Error(f"mfro: mfra size {length} does not fit the file")
    data = reader.read(reader.size - length, length, "mfra")
    if data[4:8] != b"mfra":
        raise Mp4Error("mfro: size does not point at an 'mfra' box")
    return parse_mfra(data)
