"""Verifying an ONVIF export file: structure, ``suep``, every signature, every certificate.

Checks, each failure reported with a specific reason:

* every top-level box fits the file exactly (truncation, appended bytes), ``ftyp`` first,
  one ``moov``, one file-level ``meta`` with ``suep`` and ``ipro``;
* every ``moof`` is followed by the ``mdat`` holding its samples, every ``traf`` has a
  ``tfdt``, sequence numbers increase and no track's timeline goes back (re-ordered or
  dropped fragments);
* ``suep`` describes exactly the file's tracks;
* each signing instance k: its certificate parses, its algorithm (default or ``sigC``) is
  supported, and the signature verifies over the file as k signed it (later ``sinf`` boxes
  removed, k's ``sibo`` zeroed; see ``signing.py``) -- so any changed byte anywhere fails;
* each certificate: valid at the signing time we know (the export time for the first
  signer, now for later ones), self-signed with a valid self-signature, or issued through
  the given trust anchors.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nvr.export.algorithms import DEFAULT, UnsupportedAlgorithm, parse_sigc
from nvr.export.boxes import (
    SCHEME_TYPE,
    SCHEME_VERSION,
    BoxFormatError,
    FileMeta,
    Location,
    SigningInstance,
    SourceEntry,
    StartTimes,
    SurveillanceExport,
)
from nvr.export.signing import (
    SigningError,
    digest,
    read_file_meta,
    signature_input,
    top_level_boxes,
)
from nvr.protocol.mp4 import (
    BoxHeader,
    InitInfo,
    Mp4Error,
    ReadAt,
    iter_boxes,
    mp4_time,
    parse_moof,
    read_init,
    walk,
)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    issuer: str
    serial: int
    fingerprint: str
    """SHA-256 of the DER certificate, hex."""
    not_before_us: int
    not_after_us: int
    self_signed: bool
    key: str
    """Key type and size, e.g. ``RSA 3072``."""


@dataclass
class SignerReport:
    number: int
    algorithm: str = ""
    certificate: CertificateInfo | None = None
    user_info: str | None = None
    start_times: StartTimes | None = None
    signature_ok: bool = False
    coverage: str = ""
    trust: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature_ok and not self.problems


@dataclass
class TrackReport:
    track_id: int
    handler: str
    codecs: tuple[str, ...]
    timescale: int
    samples: int = 0
    key_samples: int = 0
    bytes: int = 0
    first_decode: int | None = None
    end_decode: int = 0
    start_us: int | None = None
    end_us: int | None = None
    source: SourceEntry | None = None


@dataclass
class VerifyReport:
    path: Path
    size: int = 0
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    export: SurveillanceExport | None = None
    location: Location | None = None
    tracks: list[TrackReport] = field(default_factory=list)
    signers: list[SignerReport] = field(default_factory=list)
    fragments: int = 0
    notes: list[str] = field(default_factory=list)
    """Oddities that are not failures by themselves (they explain a failed signature)."""

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.signers) and all(s.ok for s in self.signers)

    @property
    def reason(self) -> str:
        """The first failure, or "" if the file verifies."""
        if self.problems:
            return self.problems[0]
        hint = f" ({self.notes[0]})" if self.notes else ""
        for s in self.signers:
            if s.problems:
                return f"signature {s.number}: {s.problems[0]}{hint}"
        return "" if self.signers else "the file carries no signature"

    @property
    def start_us(self) -> int | None:
        times = [t.start_us for t in self.tracks if t.start_us is not None]
        return min(times) if times else None

    @property
    def end_us(self) -> int | None:
        times = [t.end_us for t in self.tracks if t.end_us is not None]
        return max(times) if times else None

    def lines(self) -> list[str]:
        """What was checked and found, for people."""
        out = [f"file: {self.path} ({self.size} bytes)"]
        out += [f"checked {c}" for c in self.checks]
        if self.export is not None:
            e = self.export
            out.append(
                f"exported by: {e.unit_name or '-'} {e.unit_url} {e.unit_mac}".rstrip()
                + f"; operator: {e.operator or '-'}"
            )
        if self.location is not None:
            lat, lon, alt = self.location.degrees()
            out.append(f"location: {lat}, {lon}, {alt} m {self.location.name}".rstrip())
        if self.tracks:
            out.append(f"time range: {iso(self.start_us)} to {iso(self.end_us)}")
        for t in self.tracks:
            src = f" from {t.source.name!r}" if t.source and t.source.name else ""
            out.append(
                f"track {t.track_id}: {t.handler} {'/'.join(t.codecs)}{src}: {t.samples} "
                f"samples ({t.key_samples} key), {t.bytes} bytes, "
                f"{iso(t.start_us)} to {iso(t.end_us)}"
            )
        for s in self.signers:
            c = s.certificate
            out.append(f"signature {s.number}: {s.algorithm or '?'}")
            if c is not None:
                out.append(f"  signer: {c.subject} ({c.key})")
                out.append(f"  certificate SHA-256: {c.fingerprint}")
                out.append(f"  valid: {iso(c.not_before_us)} to {iso(c.not_after_us)}")
            if s.user_info:
                out.append(f"  note: {s.user_info}")
            if s.signature_ok:
                out.append(f"  signature covers {s.coverage}: valid")
            if s.trust:
                out.append(f"  certificate: {s.trust}")
            out += [f"  PROBLEM: {p}" for p in s.problems]
        out += [f"note: {n}" for n in self.notes]
        out += [f"PROBLEM: {p}" for p in self.problems]
        out.append("RESULT: OK" if self.ok else f"RESULT: FAILED: {self.reason}")
        return out


def iso(us: int | None) -> str:
    if us is None:
        return "?"
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cert_info(cert: x509.Certificate) -> CertificateInfo:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_text = f"RSA {key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_text = f"EC {key.curve.name}"
    else:
        key_text = type(key).__name__
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        not_before_us=int(cert.not_valid_before_utc.timestamp()) * 1_000_000,
        not_after_us=int(cert.not_valid_after_utc.timestamp()) * 1_000_000,
        self_signed=cert.issuer == cert.subject,
        key=key_text,
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1
    except ValueError:  # a malformed extension
        return False


def _chain_problem(
    cert: x509.Certificate, trust: Sequence[x509.Certificate], at_us: int
) -> tuple[str, str | None]:
    """(how the certificate is trusted, problem or None). Without anchors a certificate must
    be self-signed; with anchors it must be one, or be issued by one (every certificate given
    is trusted: a bundle of root and intermediates works as is)."""
    if not trust:
        if cert.issuer != cert.subject:
            return "", (
                f"the certificate was issued by {cert.issuer.rfc4514_string()}: give its "
                "issuer as a trust anchor to check it"
            )
        if not _issued_by(cert, cert):
            return "", "the self-signed certificate's own signature is invalid"
        return "self-signed (trust it by its fingerprint)", None
    if any(cert == anchor for anchor in trust):
        return "is a trust anchor", None
    issuers = [c for c in trust if c.subject == cert.issuer and _issued_by(cert, c)]
    if not issuers:
        return "", (
            f"no trust anchor issued {cert.subject.rfc4514_string()} "
            f"(issuer {cert.issuer.rfc4514_string()})"
        )
    info = _cert_info(issuers[0])
    if not _is_ca(issuers[0]):
        return "", f"{info.subject} is not a CA"
    if not info.not_before_us <= at_us <= info.not_after_us:
        return "", f"issuer {info.subject} was not valid at {iso(at_us)}"
    return f"chains to trust anchor {info.subject}", None


# ---- structure --------------------------------------------------------------------------------


def _structure(path: Path, report: VerifyReport) -> tuple[list[BoxHeader], InitInfo] | None:
    try:
        boxes = top_level_boxes(path)
    except Mp4Error as exc:
        text = str(exc)
        if "bytes left" in text:
            report.problems.append(
                f"stray bytes at the end of the file, not a whole box: bytes were appended or "
                f"the file was cut ({text})"
            )
        else:
            report.problems.append(f"the file is truncated or a box header is damaged: {text}")
        return None
    types = [b.type for b in boxes]
    if not boxes or boxes[0].type != b"ftyp":
        report.problems.append("the file does not start with an 'ftyp' box")
    if types.count(b"moov") != 1:
        report.problems.append(f"expected one 'moov' box, found {types.count(b'moov')}")
        return None
    with open(path, "rb") as fh:
        fd = fh.fileno()

        def read_at(offset: int, n: int) -> bytes:
            return os.pread(fd, n, offset)

        try:
            init = read_init(read_at, report.size)
        except Mp4Error as exc:
            report.problems.append(f"moov: {exc}")
            return None
        _fragments(read_at, boxes, init, report)
    report.checks.append(
        f"box structure: {len(boxes)} top-level boxes, {report.fragments} fragments, "
        f"{sum(t.samples for t in report.tracks)} samples, every sample inside its mdat"
    )
    return boxes, init


def _traf_has_tfdt(moof: bytes) -> bool:
    for traf in iter_boxes(moof, 8):
        if traf.type == b"traf":
            kinds = {h.type for h in iter_boxes(moof, traf.payload_offset, traf.end)}
            if b"tfdt" not in kinds:
                return False
    return True


def _fragments(
    read_at: ReadAt, boxes: list[BoxHeader], init: InitInfo, report: VerifyReport
) -> None:
    tracks = {
        t.track_id: TrackReport(
            t.track_id,
            t.handler.decode("latin-1"),
            tuple(e.fourcc.decode("latin-1") for e in t.entries),
            t.timescale,
        )
        for t in init.tracks
    }
    entries = {t.track_id: len(t.entries) for t in init.tracks}
    report.tracks = list(tracks.values())
    last_seq = 0
    next_times: dict[int, int] = {}
    for i, hdr in enumerate(boxes):
        if hdr.type != b"moof":
            continue
        where = f"fragment at offset {hdr.offset}"
        if hdr.size > 64 << 20:
            report.problems.append(f"{where}: implausible moof size {hdr.size}")
            return
        moof = read_at(hdr.offset, hdr.size)
        try:
            frag = parse_moof(moof, hdr.offset, init, {}, report.size)
            has_tfdt = _traf_has_tfdt(moof)
        except Mp4Error as exc:
            report.problems.append(f"{where}: {exc}")
            return
        report.fragments += 1
        if not has_tfdt:
            report.problems.append(f"{where}: a track fragment has no 'tfdt'")
        if frag.sequence_number <= last_seq:
            report.problems.append(
                f"{where}: sequence number {frag.sequence_number} after {last_seq}: "
                "fragments were re-ordered, repeated or removed"
            )
        elif last_seq and frag.sequence_number != last_seq + 1:
            report.notes.append(
                f"{where}: sequence number {frag.sequence_number} follows {last_seq}: "
                "fragments may have been removed"
            )
        last_seq = frag.sequence_number
        mdat = boxes[i + 1] if i + 1 < len(boxes) else None
        if mdat is None or mdat.type != b"mdat":
            report.problems.append(f"{where}: not followed by its 'mdat'")
            return
        seen: set[int] = set()
        for s in frag.samples:
            t = tracks[s.track_id]
            if not mdat.payload_offset <= s.offset <= s.offset + s.size <= mdat.end:
                report.problems.append(
                    f"{where}: a sample of track {s.track_id} lies outside its mdat"
                )
                return
            if s.track_id not in seen:
                seen.add(s.track_id)
                prev = next_times.get(s.track_id)
                if prev is not None and s.decode_time < prev:
                    report.problems.append(
                        f"{where}: track {s.track_id} starts at decode time {s.decode_time}, "
                        f"before the previous fragment ended ({prev}): fragments out of order"
                    )
            if not 1 <= s.description_index <= entries[s.track_id]:
                report.problems.append(
                    f"{where}: track {s.track_id} uses sample entry {s.description_index}, "
                    f"which does not exist"
                )
            t.samples += 1
            t.key_samples += s.key
            t.bytes += s.size
            if t.first_decode is None:
                t.first_decode = s.decode_time
            t.end_decode = max(t.end_decode, s.decode_time + s.duration)
            next_times[s.track_id] = s.decode_time + s.duration


# ---- signatures -------------------------------------------------------------------------------


def _signature(
    path: Path,
    meta: FileMeta,
    index: int,
    boxes: list[BoxHeader],
    trust: Sequence[x509.Certificate],
    at_us: int,
) -> SignerReport:
    inst: SigningInstance = meta.instances[index]
    rep = SignerReport(index + 1, user_info=inst.user_info, start_times=inst.start_times)
    if inst.error is not None:
        rep.problems.append(inst.error)
        return rep
    if inst.scheme_type != SCHEME_TYPE or inst.scheme_version != SCHEME_VERSION:
        rep.problems.append(
            f"scheme {inst.scheme_type!r} version 0x{inst.scheme_version:08x} is not "
            f"'oeff' version 0x{SCHEME_VERSION:08x}"
        )
        return rep
    try:
        algorithm = DEFAULT if inst.algorithm_der is None else parse_sigc(inst.algorithm_der)
    except UnsupportedAlgorithm as exc:
        rep.problems.append(str(exc))
        return rep
    rep.algorithm = algorithm.describe()
    try:  # fields are decoded lazily: a damaged certificate fails on first use
        cert = x509.load_der_x509_certificate(inst.certificate)
        info = _cert_info(cert)
        key = cert.public_key()
    except ValueError as exc:
        rep.problems.append(f"the certificate box does not hold a valid X.509 certificate ({exc})")
        return rep
    rep.certificate = info
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        rep.problems.append(f"unsupported certificate key {info.key}")
        return rep
    if not any(inst.signature):
        rep.problems.append("the signature is all zeros: signing never finished")
        return rep
    if isinstance(key, rsa.RSAPublicKey) and len(inst.signature) != (key.key_size + 7) // 8:
        rep.problems.append(
            f"signature of {len(inst.signature)} bytes for an {info.key} key "
            f"({(key.key_size + 7) // 8} expected)"
        )
        return rep
    value = digest(signature_input(path, meta, index), algorithm.hash_name)
    if algorithm.verify(key, inst.signature, value):
        rep.signature_ok, rep.coverage = True, "the whole file"
    elif boxes[-1].type == b"mfra":
        tail = digest(signature_input(path, meta, index, end=boxes[-1].offset), algorithm.hash_name)
        if algorithm.verify(key, inst.signature, tail):
            rep.signature_ok, rep.coverage = True, "the whole file except the trailing 'mfra'"
    if not rep.signature_ok:
        rep.problems.append(
            "the signature does not match the file: it was changed after signing, or the "
            f"certificate was replaced (signer {info.subject}, SHA-256 {info.fingerprint})"
        )
    if not info.not_before_us <= at_us <= info.not_after_us:
        rep.problems.append(
            f"the certificate is valid {iso(info.not_before_us)} to {iso(info.not_after_us)}, "
            f"not at the signing time {iso(at_us)}"
        )
    rep.trust, problem = _chain_problem(cert, trust, at_us)
    if problem:
        rep.problems.append(problem)
    return rep


def _unix_s(mp4_seconds: int) -> int:
    return mp4_seconds - mp4_time(0)


def load_trust(names: Sequence[str]) -> list[x509.Certificate]:
    """Trust anchors (and intermediates) from PEM files; :class:`ValueError` names the file
    that cannot be read."""
    trust: list[x509.Certificate] = []
    for name in names:
        try:
            trust += x509.load_pem_x509_certificates(Path(name).read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load trust anchors from {name}: {exc}") from None
    return trust


def verify_file(
    path: Path,
    *,
    trust: Sequence[x509.Certificate] = (),
    now_us: int | None = None,
) -> VerifyReport:
    """Check everything about ``path``; ``report.ok`` is True only if all of it holds."""
    path = Path(path)
    report = VerifyReport(path)
    try:
        report.size = os.stat(path).st_size
    except OSError as exc:
        report.problems.append(f"cannot read {path}: {exc.strerror}")
        return report
    found = _structure(path, report)
    if found is None:
        return report
    boxes, init = found
    try:
        meta = read_file_meta(path, boxes)
    except (BoxFormatError, Mp4Error, SigningError) as exc:
        report.problems.append(f"surveillance boxes: {exc}")
        return report
    report.problems.extend(meta.problems)
    report.export = meta.suep
    report.location = _location(path, boxes)
    suep_ids = [s.track_id for s in meta.suep.sources]
    file_ids = [t.track_id for t in init.tracks]
    if sorted(suep_ids) != sorted(file_ids):
        report.problems.append(f"suep describes tracks {suep_ids} but the file has {file_ids}")
    sources = {s.track_id: s for s in meta.suep.sources}
    origins = _origins(meta)
    for t in report.tracks:
        t.source = sources.get(t.track_id)
        origin = origins.get(t.track_id)
        if origin is not None and t.first_decode is not None:
            t.start_us = origin + t.first_decode * 1_000_000 // t.timescale
            t.end_us = origin + t.end_decode * 1_000_000 // t.timescale
    report.checks.append(
        f"suep: exported by {meta.suep.unit_name!r} at "
        f"{iso(_unix_s(meta.suep.unit_time) * 1_000_000)}; {len(meta.instances)} signing "
        "instance(s)"
    )
    export_us = _unix_s(meta.suep.unit_time) * 1_000_000
    now = now_us if now_us is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    for index in range(len(meta.instances)):
        at = export_us if index == 0 else now
        report.signers.append(_signature(path, meta, index, boxes, trust, at))
    return report


def _origins(meta: FileMeta) -> dict[int, int]:
    """Per track, the timeline origin: the latest signer's ``cstb`` entry wins (corrections),
    then a ``cstb`` directly in ``meta``."""
    out: dict[int, int] = {}
    tables = [meta.start_times] + [i.start_times for i in meta.instances]
    for table in tables:
        if table is not None:
            for track_id, _ in table.entries:
                value = table.unix_us(track_id)
                if value is not None:
                    out[track_id] = value
    if out and len(out) < len(meta.suep.sources):  # one entry is "usually enough"
        first = next(iter(out.values()))
        for s in meta.suep.sources:
            out.setdefault(s.track_id, first)
    return out


def _location(path: Path, boxes: list[BoxHeader]) -> Location | None:
    moov = next(b for b in boxes if b.type == b"moov")
    with open(path, "rb") as fh:
        data = os.pread(fh.fileno(), moov.size, moov.offset)
    for hdr in walk(data, containers={b"moov": 0, b"udta": 0}):
        if hdr.type == b"loci":
            try:
                return Location.parse(data[hdr.payload_offset : hdr.end])
            except BoxFormatError:
                return None
    return None
