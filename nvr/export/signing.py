"""Sealing export files: the signature input, streaming hash-then-sign, repeated signing.

Readings of the spec's open points (export.md B.7), applied here and in ``verify.py``:

* The signature covers every byte of the file, box headers included, with the new
  signature's ``sibo`` payload present but zero-filled (the reserved length is the RSA
  modulus size, so sizes never change when the signature is written).
* The file-level ``meta`` (``hdlr``, ``suep``, ``ipro``) sits right after ``ftyp``, before
  ``moov``: ``suep`` as early as practical, and the whole file can be hashed as it is
  written (the zero-filled ``sibo`` is already in place), then the signature is patched in.
* We write no ``mfra``: the spec says it "does not require the protection seal", so a
  verifier may or may not hash it; without one both readings agree. (It would also point at
  wrong offsets after a repeated signing grew the early ``meta``.) When verifying other
  producers' files, a trailing ``mfra`` is first hashed with the rest, then left out.
* ``cstb`` goes in the ``sinf`` of the instance (before ``schm``), as the box tree draws it;
  when reading we also accept it in ``schi`` and directly in ``meta``.
* ``cert`` holds the signer's certificate alone (DER, as the box is defined); an operator's
  intermediates are not in the file: a verifier is given them with its trust anchors.
* Repeated signing appends a ``sinf`` after the last one in ``ipro`` (``protection_count``
  stays 1), grows ``ipro`` and ``meta``, and hashes the file with the new ``sibo`` zeroed and
  every earlier signature as it is. Because our ``meta`` is early, this rewrites the file
  (one streaming copy); nothing else in it holds absolute offsets (``tfhd`` uses
  default-base-is-moof, ``stco`` is empty).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nvr.export.algorithms import SignatureAlgorithm
from nvr.export.boxes import FileMeta, StartTimes, parse_file_meta, signing_instance
from nvr.export.device_identity import SigningIdentity
from nvr.export.output import HashingFile, new_hash
from nvr.protocol.mp4 import BoxHeader, Mp4Error, walk

READ_CHUNK = 4 * 1024 * 1024


class SigningError(Exception):
    """The file cannot be signed (not an export file, or a damaged one)."""


def seal(out: HashingFile, signature_offset: int, identity: SigningIdentity) -> bytes:
    """Sign the digest of everything written so far and patch the signature in."""
    signature = identity.sign(out.digest())
    out.patch(signature_offset, signature)
    return signature


# ---- locating and editing the file-level meta --------------------------------------------------


def top_level_boxes(path: Path) -> list[BoxHeader]:
    """Every top-level box header; :class:`Mp4Error` if one is cut short or overruns the file."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size

        def read_at(offset: int, n: int) -> bytes:
            return os.pread(fh.fileno(), n, offset)

        return list(walk(read_at, size=size, containers={}))


def read_file_meta(path: Path, boxes: list[BoxHeader]) -> FileMeta:
    metas = [b for b in boxes if b.type == b"meta"]
    if len(metas) != 1:
        raise SigningError(f"expected one file-level 'meta' box, found {len(metas)}")
    hdr = metas[0]
    if hdr.size > 64 << 20:
        raise SigningError(f"file-level meta of {hdr.size} bytes is implausible")
    with open(path, "rb") as fh:
        data = os.pread(fh.fileno(), hdr.size, hdr.offset)
    return parse_file_meta(data, hdr.offset)


def _resize(buf: bytearray, offset: int, delta: int) -> None:
    """Grow or shrink the size field of the box header at ``offset`` (32- or 64-bit form)."""
    small = int.from_bytes(buf[offset : offset + 4], "big")
    if small == 1:
        large = int.from_bytes(buf[offset + 8 : offset + 16], "big") + delta
        buf[offset + 8 : offset + 16] = large.to_bytes(8, "big")
        return
    if small == 0 or not 0 < small + delta <= 0xFFFFFFFF:
        raise SigningError(f"cannot resize the box at meta offset {offset}")
    buf[offset : offset + 4] = (small + delta).to_bytes(4, "big")


def meta_for_instance(meta: FileMeta, index: int) -> bytes:
    """The ``meta`` box as signer ``index`` (0-based) hashed it: later ``sinf`` boxes removed,
    ``ipro`` and ``meta`` shrunk to match, this signer's ``sibo`` payload zeroed."""
    inst = meta.instances[index]
    buf = bytearray(meta.data)
    buf[inst.signature_offset : inst.signature_offset + len(inst.signature)] = bytes(
        len(inst.signature)
    )
    removed = 0
    for later in reversed(meta.instances[index + 1 :]):
        del buf[later.offset : later.offset + later.size]
        removed += later.size
    if removed:
        _resize(buf, meta.ipro_offset, -removed)
        _resize(buf, 0, -removed)
    return bytes(buf)


def file_chunks(path: Path, start: int, end: int) -> Iterator[memoryview]:
    """The bytes ``[start, end)`` of a file in large reads (views of one reused buffer)."""
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            n = fh.readinto(view[: min(left, READ_CHUNK)])
            if not n:
                raise SigningError(f"{path}: file shrank while being read")
            yield view[:n]
            left -= n


def signature_input(
    path: Path, meta: FileMeta, index: int, *, end: int | None = None
) -> Iterator[bytes | memoryview]:
    """The byte stream signer ``index`` signed: the file up to ``end`` (default: all of it)
    with the file-level ``meta`` as :func:`meta_for_instance` rewrites it."""
    if end is None:
        end = os.stat(path).st_size
    yield from file_chunks(path, 0, meta.offset)
    yield meta_for_instance(meta, index)
    yield from file_chunks(path, meta.offset + len(meta.data), end)


def digest(chunks: Iterable[bytes | memoryview], hash_name: str = "SHA256") -> bytes:
    h = new_hash(hash_name)
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


# ---- repeated signing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Countersigned:
    path: Path
    index: int
    """1-based number of the new signing instance."""
    fingerprint: str
    size: int


def add_signature(
    path: Path,
    identity: SigningIdentity,
    *,
    output: Path | None = None,
    user_info: str | None = None,
    start_times: StartTimes | None = None,
    algorithm: SignatureAlgorithm | None = None,
    durable: bool = True,
) -> Countersigned:
    """Append a signing instance (e.g. a receiving stamp in ``user_info``) to an export file.

    Earlier signatures stay valid: each one's input is rebuilt by removing the later
    ``sinf`` boxes. Writes ``output`` (default: replaces ``path``) through ``*.part``.
    """
    if algorithm is not None and algorithm != identity.algorithm:
        identity = SigningIdentity(identity.key, identity.certificate, identity.chain, algorithm)
    try:
        boxes = top_level_boxes(path)
        meta = read_file_meta(path, boxes)
    except Mp4Error as exc:
        raise SigningError(f"{path}: not a well-formed export file: {exc}") from None
    layout = signing_instance(
        identity.certificate_der,
        identity.signature_size,
        start_times=start_times,
        algorithm_der=None if identity.algorithm.is_default else identity.algorithm.der(),
        user_info=user_info,
    )
    last = meta.instances[-1]
    insert_at = last.offset + last.size
    buf = bytearray(meta.data)
    buf[insert_at:insert_at] = layout.data
    _resize(buf, meta.ipro_offset, len(layout.data))
    _resize(buf, 0, len(layout.data))
    size = os.stat(path).st_size
    target = output or path
    out = HashingFile(target, identity.algorithm.hash_name)  # replaces ``path`` only at commit
    try:
        for chunk in file_chunks(path, 0, meta.offset):
            out.write(chunk)
        out.write(bytes(buf))
        for chunk in file_chunks(path, meta.offset + len(meta.data), size):
            out.write(chunk)
        seal(out, meta.offset + insert_at + layout.signature_offset, identity)
        out.commit(durable=durable)
    except BaseException:
        out.abort()
        raise
    return Countersigned(target, len(meta.instances) + 1, identity.fingerprint, out.position)
