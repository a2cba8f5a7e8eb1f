"""Generic ISO BMFF boxes: header encoding, a mutable box tree, and a walker over bytes or files.

The walker takes either a buffer or a ``read_at(offset, size)`` callable plus the total size, so
a multi-gigabyte export can be inspected by reading only box headers and the boxes one asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from nvr.protocol.mp4.errors import Mp4Error

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, size)`` returns up to ``size`` bytes of the file starting at ``offset``."""

Source = bytes | bytearray | memoryview | ReadAt

_U32_MAX = 0xFFFFFFFF

CONTAINERS: Mapping[bytes, int] = {
    # type -> bytes of own fields between the header and the first child box
    b"moov": 0,
    b"trak": 0,
    b"mdia": 0,
    b"minf": 0,
    b"stbl": 0,
    b"dinf": 0,
    b"mvex": 0,
    b"moof": 0,
    b"traf": 0,
    b"mfra": 0,
    b"udta": 0,
    b"edts": 0,
    b"tref": 0,
    b"sinf": 0,
    b"schi": 0,
    b"meta": 4,  # FullBox in ISO; QuickTime's plain variant is detected (see _meta_skip)
    b"ipro": 6,  # FullBox + protection_count
    b"dref": 8,  # FullBox + entry_count
    b"stsd": 8,  # FullBox + entry_count
}
"""Boxes the walker descends into, by default."""


def fourcc(value: bytes | str) -> bytes:
    """Validate and normalise a four-character code."""
    raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    if len(raw) != 4:
        raise ValueError(f"box type must be 4 bytes, got {raw!r}")
    return raw


def type_name(box_type: bytes) -> str:
    """Printable form of a box type for error messages."""
    return repr(box_type.decode("latin-1"))


def header(
    box_type: bytes | str,
    payload_size: int,
    *,
    usertype: bytes | None = None,
    large: bool = False,
) -> bytes:
    """Encode a box header; switches to the 64-bit ``largesize`` form when the size needs it.

    ``large=True`` forces the 64-bit form, which lets a streaming writer reserve a header before
    it knows whether the box will exceed 4 GiB.
    """
    box_type = fourcc(box_type)
    if payload_size < 0:
        raise ValueError("negative payload size")
    extra = b""
    if box_type == b"uuid":
        if usertype is None or len(usertype) != 16:
            raise ValueError("uuid box needs a 16-byte usertype")
        extra = bytes(usertype)
    elif usertype is not None:
        raise ValueError("usertype is only valid with box type 'uuid'")
    size = 8 + len(extra) + payload_size
    if large or size > _U32_MAX:
        size += 8
        if size >= 1 << 64:
            raise ValueError("box too large")
        return b"\x00\x00\x00\x01" + box_type + size.to_bytes(8, "big") + extra
    return size.to_bytes(4, "big") + box_type + extra


def full_header(version: int, flags: int) -> bytes:
    """The 4-byte version/flags prefix of a FullBox payload."""
    if not 0 <= version <= 0xFF or not 0 <= flags <= 0xFFFFFF:
        raise ValueError(f"bad FullBox version/flags {version}/{flags}")
    return bytes((version,)) + flags.to_bytes(3, "big")


def box(box_type: bytes | str, *parts: bytes, usertype: bytes | None = None) -> bytes:
    """A complete box from payload parts."""
    payload = b"".join(parts)
    return header(box_type, len(payload), usertype=usertype) + payload


def full_box(box_type: bytes | str, version: int, flags: int, *parts: bytes) -> bytes:
    """A complete FullBox from payload parts."""
    return box(box_type, full_header(version, flags), *parts)


@dataclass
class Box:
    """A box under construction: own fields (``payload``) followed by ``children``.

    Children are either :class:`Box` nodes or already-encoded boxes (``bytes``), so a caller can
    graft arbitrary extra boxes (``suep``, ``loci``, ``uuid`` ...) anywhere before encoding.
    """

    type: bytes
    payload: bytes = b""
    children: list[Box | bytes] = field(default_factory=list)
    usertype: bytes | None = None

    @classmethod
    def full(
        cls,
        box_type: bytes | str,
        version: int,
        flags: int,
        payload: bytes = b"",
        children: Iterable[Box | bytes] = (),
    ) -> Box:
        return cls(fourcc(box_type), full_header(version, flags) + payload, list(children))

    def find(self, box_type: bytes | str) -> Box | None:
        """First direct child node of that type (encoded children are not searched)."""
        wanted = fourcc(box_type)
        for child in self.children:
            if isinstance(child, Box) and child.type == wanted:
                return child
        return None

    def find_path(self, *path: bytes | str) -> Box | None:
        node: Box | None = self
        for step in path:
            if node is None:
                return None
            node = node.find(step)
        return node

    def encode(self) -> bytes:
        parts = [self.payload]
        parts.extend(c.encode() if isinstance(c, Box) else bytes(c) for c in self.children)
        return box(self.type, *parts, usertype=self.usertype)


class BoxHeader(NamedTuple):
    """Where a box sits: ``offset`` of its first header byte, ``size`` including the header."""

    type: bytes
    offset: int
    header_size: int
    size: int
    depth: int = 0
    usertype: bytes | None = None

    @property
    def payload_offset(self) -> int:
        return self.offset + self.header_size

    @property
    def payload_size(self) -> int:
        return self.size - self.header_size

    @property
    def end(self) -> int:
        return self.offset + self.size


def decode_header(buf: bytes, offset: int, limit: int, depth: int = 0, base: int = 0) -> BoxHeader:
    """Parse the header of a box at file offset ``offset`` that must end by ``limit``.

    ``buf[0]`` sits at file offset ``base``; it needs at most 32 bytes from ``offset``.
    A size of 0 ("to the end") resolves to ``limit``.
    """
    rel = offset - base
    avail = min(len(buf) - rel, limit - offset)
    if avail < 8:
        raise Mp4Error(f"box header at offset {offset}: truncated ({max(avail, 0)} bytes left)")
    size = int.from_bytes(buf[rel : rel + 4], "big")
    box_type = bytes(buf[rel + 4 : rel + 8])
    hsize = 8
    if size == 1:
        if avail < 16:
            raise Mp4Error(f"box {type_name(box_type)} at offset {offset}: truncated largesize")
        size = int.from_bytes(buf[rel + 8 : rel + 16], "big")
        hsize = 16
    elif size == 0:
        size = limit - offset
    usertype = None
    if box_type == b"uuid":
        if avail < hsize + 16:
            raise Mp4Error(f"box 'uuid' at offset {offset}: truncated usertype")
        usertype = bytes(buf[rel + hsize : rel + hsize + 16])
        hsize += 16
    if size < hsize:
        raise Mp4Error(
            f"box {type_name(box_type)} at offset {offset}: size {size} smaller than header"
        )
    if offset + size > limit:
        raise Mp4Error(
            f"box {type_name(box_type)} at offset {offset}: size {size} runs past the end "
            f"of its container at {limit}"
        )
    return BoxHeader(box_type, offset, hsize, size, depth, usertype)


class Reader:
    """Uniform random access over a buffer or a ``read_at`` callable."""

    __slots__ = ("_buf", "_read", "size")

    def __init__(self, source: Source, size: int | None = None) -> None:
        if isinstance(source, bytes | bytearray | memoryview):
            self._buf: bytes | bytearray | memoryview | None = source
            self._read: ReadAt | None = None
            self.size = len(source) if size is None else min(size, len(source))
        else:
            if size is None:
                raise ValueError("size is required with a read_at callable")
            self._buf = None
            self._read = source
            self.size = size

    def read(self, offset: int, n: int, what: str = "data") -> bytes:
        """Exactly ``n`` bytes at ``offset`` or :class:`Mp4Error`."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise Mp4Error(f"{what}: range {offset}+{n} is outside the file ({self.size} bytes)")
        if self._buf is not None:
            return bytes(self._buf[offset : offset + n])
        assert self._read is not None
        data = self._read(offset, n)
        if len(data) != n:
            raise Mp4Error(f"{what}: short read at {offset} ({len(data)} of {n} bytes)")
        return bytes(data)

    def peek(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``, fewer at the end of the data."""
        n = max(0, min(n, self.size - offset))
        return self.read(offset, n) if n else b""

    def header(self, offset: int, limit: int, depth: int = 0) -> BoxHeader:
        if self._buf is not None:
            return decode_header(self._buf, offset, min(limit, self.size), depth)
        raw = self.peek(offset, min(32, limit - offset))
        return decode_header(raw, offset, limit, depth, base=offset)

    def box_bytes(self, hdr: BoxHeader) -> bytes:
        """The whole box, header included."""
        return self.read(hdr.offset, hdr.size, f"box {type_name(hdr.type)}")


def _meta_skip(reader: Reader, hdr: BoxHeader) -> int:
    """ISO ``meta`` is a FullBox; QuickTime's is not. Tell them apart by where ``hdlr`` sits."""
    head = reader.peek(hdr.payload_offset, 8)
    if len(head) == 8 and head[4:8] == b"hdlr":
        return 0
    return 4


def walk(
    source: Source,
    *,
    size: int | None = None,
    start: int = 0,
    end: int | None = None,
    containers: Mapping[bytes, int] = CONTAINERS,
    max_depth: int = 16,
) -> Iterator[BoxHeader]:
    """Yield every box header in file order (pre-order), descending into ``containers``.

    Raises :class:`Mp4Error` on a header that is truncated or does not fit in its parent.
    Up to 7 zero bytes at the end of a container (QuickTime's terminator) are tolerated.
    """
    reader = Reader(source, size)
    limit = reader.size if end is None else min(end, reader.size)
    stack: list[tuple[int, int]] = [(start, limit)]  # (next offset, container end)
    while stack:
        pos, cend = stack[-1]
        if pos >= cend:
            stack.pop()
            continue
        depth = len(stack) - 1
        if cend - pos < 8:
            tail = reader.peek(pos, cend - pos)
            if depth > 0 and not any(tail):
                stack.pop()
                continue
            raise Mp4Error(f"box header at offset {pos}: truncated ({cend - pos} bytes left)")
        hdr = reader.header(pos, cend, depth)
        stack[-1] = (hdr.end, cend)
        yield hdr
        skip = containers.get(hdr.type)
        if skip is None or depth + 1 >= max_depth:
            continue
        if hdr.type == b"meta" and skip:
            skip = _meta_skip(reader, hdr)
        if skip > hdr.payload_size:
            raise Mp4Error(
                f"box {type_name(hdr.type)} at offset {hdr.offset}: payload of "
                f"{hdr.payload_size} bytes is too short for its {skip}-byte fields"
            )
        stack.append((hdr.payload_offset + skip, hdr.end))


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[BoxHeader]:
    """The boxes directly in ``data[start:end]``, without descending."""
    yield from walk(data, start=start, end=end, containers={})


def child_map(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, BoxHeader]:
    """First box of each type directly in ``data[start:end]``."""
    out: dict[bytes, BoxHeader] = {}
    for hdr in iter_boxes(data, start, end):
        out.setdefault(hdr.type, hdr)
    return out
