"""Tampering with a signed export: every change fails verification with a specific reason;
the untouched file and a file signed twice verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nvr.export.algorithms import SignatureAlgorithm, parse_sigc
from nvr.export.device_identity import SigningIdentity
from nvr.export.signing import (
    add_signature,
    digest,
    read_file_meta,
    signature_input,
    top_level_boxes,
)
from nvr.export.verify import verify_file
from nvr.protocol.mp4 import BoxHeader, walk
from tests.export.conftest import Exported


def boxes(data: bytes) -> list[BoxHeader]:
    return list(walk(data))


def first(data: bytes, box_type: bytes, nth: int = 0) -> BoxHeader:
    return [b for b in boxes(data) if b.type == box_type][nth]


def flipped(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


def replace_payload(data: bytes, target: BoxHeader, payload: bytes) -> bytes:
    """Replace a box's payload and fix the size of every box containing it (32-bit headers)."""
    delta = len(payload) - target.payload_size
    out = bytearray(data[: target.payload_offset] + payload + data[target.end :])
    for b in boxes(data):
        if b.offset <= target.offset and target.end <= b.end:
            out[b.offset : b.offset + 4] = (b.size + delta).to_bytes(4, "big")
    return bytes(out)


def check(path: Path, data: bytes, *fragments: str) -> str:
    path.write_bytes(data)
    report = verify_file(path)
    assert not report.ok, "tampered file verified"
    reason = report.reason
    assert reason
    if fragments:
        assert any(f in reason for f in fragments), reason
    return reason


@pytest.fixture
def original(camera_export: Exported) -> bytes:
    return camera_export.path.read_bytes()


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "tampered.mp4"


def test_untouched_file_verifies(camera_export: Exported) -> None:
    report = verify_file(camera_export.path)
    assert report.ok and report.reason == ""
    assert report.signers[0].signature_ok


MISMATCH = "signature does not match the file"


@pytest.mark.parametrize("step", range(24))
def test_a_flipped_byte_anywhere_fails(original: bytes, target: Path, step: int) -> None:
    pos = len(original) * step // 24 + 7
    check(target, flipped(original, pos))


@pytest.mark.parametrize(
    ("where", "expect"),
    [
        ("mdat first", (MISMATCH,)),
        ("mdat middle", (MISMATCH,)),
        ("mdat last", (MISMATCH,)),
        ("moof trun", (MISMATCH, "fragment at offset")),
        ("moof sequence", ("sequence number",)),
        ("tfdt", ("out of order", MISMATCH)),
        ("sibo", (MISMATCH,)),
        ("cert", ("certificate", MISMATCH)),
        ("suep", ("suep", MISMATCH)),
        ("avcC", (MISMATCH, "moov")),
        ("ftyp", (MISMATCH,)),
    ],
)
def test_flipped_byte_in_each_part_names_the_problem(
    original: bytes, target: Path, where: str, expect: tuple[str, ...]
) -> None:
    mdats = [b for b in boxes(original) if b.type == b"mdat"]
    name, _, detail = where.partition(" ")
    if name == "mdat":
        m = {"first": mdats[0], "middle": mdats[len(mdats) // 2], "last": mdats[-1]}[detail]
        pos = m.payload_offset + m.payload_size // 2
    elif where == "moof trun":
        trun = first(original, b"trun", 3)
        pos = trun.end - 3  # inside a sample's flags
    elif where == "moof sequence":
        pos = first(original, b"mfhd", 5).end - 1
    elif name == "tfdt":
        pos = first(original, b"tfdt", 6).end - 5
    elif name == "avcC":  # inside the sample entry (the walker does not descend into it)
        pos = original.index(b"avcC") + 12
    elif name == "suep":
        suep = first(original, b"suep")
        pos = suep.payload_offset + 6  # inside ExportUnitName
    else:
        b = first(original, where.encode())
        pos = b.payload_offset + b.payload_size // 2
    check(target, flipped(original, pos), *expect)


@pytest.mark.parametrize("cut", [1, 100, 5000, "half"])
def test_truncated_file_fails(original: bytes, target: Path, cut: int | str) -> None:
    keep = len(original) // 2 if cut == "half" else len(original) - int(cut)
    check(target, original[:keep], "truncated", "stray bytes")


@pytest.mark.parametrize(
    "extra",
    [
        b"\x00",
        b"junk!!!",
        bytes(8),
        b"\x00\x00\x00\x0cfreeabcd",
        b"\x00\x00\x00\x10mfro" + bytes(8),
    ],
)
def test_appended_bytes_fail(original: bytes, target: Path, extra: bytes) -> None:
    check(target, original + extra, "stray bytes", MISMATCH, "truncated")


def test_reordered_fragments_fail(original: bytes, target: Path) -> None:
    top = [b for b in boxes(original) if b.depth == 0]
    moofs = [i for i, b in enumerate(top) if b.type == b"moof"]
    a, b = moofs[3], moofs[4]
    frag_a = original[top[a].offset : top[a + 1].end]
    frag_b = original[top[b].offset : top[b + 1].end]
    data = original[: top[a].offset] + frag_b + frag_a + original[top[b + 1].end :]
    assert len(data) == len(original)
    check(target, data, "re-ordered")


def test_dropped_fragment_fails(original: bytes, target: Path) -> None:
    top = [b for b in boxes(original) if b.depth == 0]
    i = [n for n, b in enumerate(top) if b.type == b"moof"][5]
    data = original[: top[i].offset] + original[top[i + 1].end :]
    check(target, data, "may have been removed")


def test_swapped_certificate_fails(
    original: bytes, target: Path, other_identity: SigningIdentity
) -> None:
    data = replace_payload(original, first(original, b"cert"), other_identity.certificate_der)
    reason = check(target, data, MISMATCH)
    assert other_identity.fingerprint in reason  # names the certificate it tried


def test_interrupted_signing_is_reported(original: bytes, target: Path) -> None:
    sibo = first(original, b"sibo")
    data = original[: sibo.payload_offset] + bytes(sibo.payload_size) + original[sibo.end :]
    check(target, data, "signing never finished")


def resign(path: Path, identity: SigningIdentity) -> None:
    """Recompute signature 1 with ``identity``'s key, as a forger with their own key would."""
    meta = read_file_meta(path, top_level_boxes(path))
    signature = identity.sign(digest(signature_input(path, meta, 0)))
    data = bytearray(path.read_bytes())
    at = meta.offset + meta.instances[0].signature_offset
    data[at : at + len(signature)] = signature
    path.write_bytes(bytes(data))


def test_resigned_forgery_passes_only_without_a_trust_anchor(
    original: bytes,
    target: Path,
    identity: SigningIdentity,
    other_identity: SigningIdentity,
) -> None:
    """Changed media re-signed with the forger's own self-signed certificate (same subject
    name) is self-consistent: only the certificate tells it apart. The report shows its
    fingerprint, and pinning the device's certificate rejects it."""
    changed = flipped(original, first(original, b"mdat", 2).payload_offset + 10)
    target.write_bytes(
        replace_payload(changed, first(changed, b"cert"), other_identity.certificate_der)
    )
    resign(target, other_identity)
    loose = verify_file(target)
    assert loose.ok
    cert = loose.signers[0].certificate
    assert cert is not None and cert.subject == identity.certificate.subject.rfc4514_string()
    assert cert.fingerprint == other_identity.fingerprint != identity.fingerprint
    pinned = verify_file(target, trust=[identity.certificate])
    assert not pinned.ok and "no trust anchor issued" in pinned.reason
    genuine = target.with_name("genuine.mp4")
    genuine.write_bytes(original)
    report = verify_file(genuine, trust=[identity.certificate])
    assert report.ok and report.signers[0].trust == "is a trust anchor"


def test_signed_twice_verifies_both(
    camera_export: Exported, tmp_path: Path, other_identity: SigningIdentity
) -> None:
    path = tmp_path / "twice.mp4"
    shutil.copy(camera_export.path, path)
    done = add_signature(path, other_identity, user_info="received by the court registry")
    assert done.index == 2 and done.path == path
    report = verify_file(path)
    assert report.ok, report.lines()
    one, two = report.signers
    assert one.certificate and two.certificate
    assert one.certificate.fingerprint != two.certificate.fingerprint
    assert two.user_info == "received by the court registry"
    data = path.read_bytes()
    assert len([b for b in boxes(data) if b.type == b"sinf"]) == 2
    ipro = first(data, b"ipro")
    assert data[ipro.payload_offset + 4 : ipro.payload_offset + 6] == b"\x00\x01"

    # a change inside the second signer's boxes breaks only the second signature
    auib = first(data, b"auib")
    for pos, mask in ((auib.payload_offset + 3, 0x01), (auib.payload_offset + 3, 0xFF)):
        path.write_bytes(data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :])
        report = verify_file(path)
        assert report.signers[0].ok and not report.signers[1].ok
        assert report.reason.startswith("signature 2:")
    # a change in the media breaks both
    mdat = first(data, b"mdat", 1)
    path.write_bytes(flipped(data, mdat.payload_offset + 1))
    report = verify_file(path)
    assert not report.signers[0].ok and not report.signers[1].ok


def test_third_signature_with_sigc_pkcs1(
    camera_export: Exported,
    tmp_path: Path,
    identity: SigningIdentity,
    other_identity: SigningIdentity,
) -> None:
    path = tmp_path / "thrice.mp4"
    add_signature(camera_export.path, other_identity, output=path, durable=False)
    pkcs1 = SignatureAlgorithm("pkcs1", "SHA384")
    assert parse_sigc(pkcs1.der()) == pkcs1
    add_signature(path, identity, algorithm=pkcs1, user_info="archived", durable=False)
    report = verify_file(path)
    assert report.ok, report.lines()
    assert [s.algorithm for s in report.signers] == [
        "RSASSA-PSS SHA256 (MGF1-SHA256, salt 20)",
        "RSASSA-PSS SHA256 (MGF1-SHA256, salt 20)",
        "RSA PKCS#1 v1.5 SHA384",
    ]
    assert b"sigC" in path.read_bytes()
    assert camera_export.path.read_bytes() != path.read_bytes()  # the original is untouched
    assert verify_file(camera_export.path).ok
