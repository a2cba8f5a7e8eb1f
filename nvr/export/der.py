"""Just enough DER (X.690) for ``sigC``'s AlgorithmIdentifier: SEQUENCE, OID, INTEGER, NULL and
explicit context tags. Certificates themselves are parsed by ``cryptography``."""

from __future__ import annotations

_SEQUENCE = 0x30
_OID = 0x06
_INTEGER = 0x02
_NULL = 0x05


class DerError(ValueError):
    """Malformed or unexpected DER."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(_SEQUENCE, b"".join(parts))


def tagged(number: int, content: bytes) -> bytes:
    """Explicit, constructed context-specific tag ``[number]``."""
    return tlv(0xA0 | number, content)


def null() -> bytes:
    return tlv(_NULL, b"")


def integer(value: int) -> bytes:
    if value < 0:
        raise DerError("negative INTEGER not supported")
    return tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_oid(text: str) -> bytes:
    arcs = [int(a) for a in text.split(".")]
    body = bytearray((arcs[0] * 40 + arcs[1],))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(_OID, bytes(body))


def oid_text(raw: bytes) -> str:
    if not raw:
        raise DerError("empty OID")
    first = raw[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if raw[-1] & 0x80:
        raise DerError("truncated OID")
    return ".".join(map(str, arcs))


class DerReader:
    """Sequential reader over DER contents."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def _read(self) -> tuple[int, bytes]:
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise DerError("truncated element")
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first & 0x80:
            n = first & 0x7F
            if n == 0 or n > 4 or pos + n > len(data):
                raise DerError("bad length")
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        else:
            length = first
        if pos + length > len(data):
            raise DerError("element runs past its container")
        self.pos = pos + length
        return tag, data[pos : pos + length]

    def _expect(self, tag: int, what: str) -> bytes:
        got, content = self._read()
        if got != tag:
            raise DerError(f"expected {what}, found tag 0x{got:02x}")
        return content

    def sequence(self) -> DerReader:
        return DerReader(self._expect(_SEQUENCE, "SEQUENCE"))

    def sequence_only(self) -> DerReader:
        """The input is exactly one SEQUENCE: a reader over its contents."""
        inner = self.sequence()
        if not self.at_end():
            raise DerError("trailing bytes after the SEQUENCE")
        return inner

    def oid(self) -> bytes:
        return self._expect(_OID, "OBJECT IDENTIFIER")

    def integer(self) -> int:
        raw = self._expect(_INTEGER, "INTEGER")
        if not raw:
            raise DerError("empty INTEGER")
        return int.from_bytes(raw, "big", signed=True)

    def context(self) -> tuple[int, DerReader]:
        tag, content = self._read()
        if tag & 0xE0 != 0xA0:
            raise DerError(f"expected a context tag, found 0x{tag:02x}")
        return tag & 0x1F, DerReader(content)
