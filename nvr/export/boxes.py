"""The boxes the ONVIF export file format adds to ISO BMFF: encode and parse, sans-IO.

``suep`` (who exported what), ``cstb`` (absolute start of each track's timeline), ``loci``
(ETSI location), ``auib`` (a signer's note), and the signing instance tree
``sinf{cstb?, schm, schi{sibo, cert, sigC?, auib?}}`` inside the file-level
``meta{hdlr, suep, ipro}``. Generic box plumbing comes from :mod:`nvr.protocol.mp4`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nvr.protocol.mp4 import BoxHeader, Mp4Error, box, full_box, iter_boxes
from nvr.protocol.mp4.cursor import Cursor

SCHEME_TYPE = b"oeff"
SCHEME_VERSION = 0x00010000
META_HANDLER = b"null"
"""``hdlr`` type of the file-level ``meta``: ONVIF names none; ``null`` claims no meaning."""
META_HANDLER_NAME = "ONVIF export"

FILETIME_UNIX_OFFSET_S = 11_644_473_600
"""Seconds from 1601-01-01 (Windows FILETIME epoch, used by ``cstb``) to 1970-01-01."""


class BoxFormatError(Mp4Error):
    """An ONVIF export box is malformed; the message names the box."""


def filetime(unix_us: int) -> int:
    """Unix microseconds to 100-ns intervals since 1601-01-01 (``cstb`` startTime)."""
    return (unix_us + FILETIME_UNIX_OFFSET_S * 1_000_000) * 10


def unix_us_from_filetime(value: int) -> int:
    """The inverse of :func:`filetime`, truncated to whole microseconds."""
    return value // 10 - FILETIME_UNIX_OFFSET_S * 1_000_000


def cstr(text: str) -> bytes:
    """A NUL-terminated UTF-8 string field ("not applicable" is the NUL alone)."""
    if "\x00" in text:
        raise ValueError(f"string field must not contain NUL: {text!r}")
    return text.encode("utf-8") + b"\x00"


class Fields(Cursor):
    """A :class:`~nvr.protocol.mp4.cursor.Cursor` over one box payload that raises
    :class:`BoxFormatError` and reads strings only when NUL-terminated (these boxes are
    verified, not just read)."""

    __slots__ = ()

    def fail(self, problem: str) -> BoxFormatError:
        return BoxFormatError(f"{self.what}: {problem}")

    def string(self, name: str) -> str:
        end = self.data.find(b"\x00", self.pos, self.end)
        if end < 0:
            raise self.fail(f"{name} is not NUL-terminated")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{name} is not UTF-8") from None

    def finish(self) -> None:
        """Nothing may follow the last field."""
        if self.remaining:
            raise self.fail(f"{self.remaining} unexpected trailing bytes")


# ---- suep ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One ``suep`` track entry: the camera or microphone a track came from."""

    track_id: int
    name: str = ""
    url: str = ""
    mac: str = ""
    line: str = ""


@dataclass(frozen=True, slots=True)
class SurveillanceExport:
    """``suep`` version 1; ``unit_time`` is ISO BMFF seconds (since 1904) of the export start."""

    unit_name: str
    unit_url: str
    unit_mac: str
    unit_time: int
    operator: str
    sources: tuple[SourceEntry, ...]

    def encode(self) -> bytes:
        parts = [
            cstr(self.unit_name),
            cstr(self.unit_url),
            cstr(self.unit_mac),
            self.unit_time.to_bytes(8, "big"),
            cstr(self.operator),
            len(self.sources).to_bytes(4, "big"),
        ]
        for s in self.sources:
            if not 0 < s.track_id <= 0xFFFF:
                raise ValueError(f"suep track id {s.track_id} does not fit 16 bits")
            parts += [s.track_id.to_bytes(2, "big"), *map(cstr, (s.name, s.url, s.mac, s.line))]
        return full_box(b"suep", 1, 0, *parts)

    @classmethod
    def parse(cls, payload: bytes) -> SurveillanceExport:
        f = Fields(payload, "suep")
        version = f.uint(1, "version")
        f.uint(3, "flags")
        if version != 1:
            raise BoxFormatError(f"suep: version {version}, expected 1")
        name, url, mac = f.string("ExportUnitName"), f.string("ExportUnitURL"), f.string("MAC")
        unit_time = f.uint(8, "ExportUnitTime")
        operator = f.string("ExportOperator")
        count = f.uint(4, "entry_count")
        sources = []
        for _ in range(count):
            track_id = f.uint(2, "TrackID")
            sources.append(
                SourceEntry(track_id, *(f.string(n) for n in ("Name", "URL", "MAC", "Line")))
            )
        f.finish()
        return cls(name, url, mac, unit_time, operator, tuple(sources))


# ---- cstb ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTimes:
    """``cstb``: per track, the UTC origin of its media timeline in FILETIME units."""

    entries: tuple[tuple[int, int], ...]

    @classmethod
    def from_unix_us(cls, origins: Sequence[tuple[int, int]]) -> StartTimes:
        return cls(tuple((track_id, filetime(us)) for track_id, us in origins))

    def unix_us(self, track_id: int) -> int | None:
        for tid, value in self.entries:
            if tid == track_id:
                return unix_us_from_filetime(value)
        return None

    def encode(self) -> bytes:
        body = b"".join(t.to_bytes(4, "big") + v.to_bytes(8, "big") for t, v in self.entries)
        return box(b"cstb", len(self.entries).to_bytes(4, "big"), body)

    @classmethod
    def parse(cls, payload: bytes) -> StartTimes:
        f = Fields(payload, "cstb")
        count = f.uint(4, "entry_count")
        entries = tuple((f.uint(4, "track_ID"), f.uint(8, "startTime")) for _ in range(count))
        f.finish()
        return cls(entries)


# ---- loci ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """``loci`` (ETSI TS 126 244): angles and altitude as 16.16 fixed point, role 1 (real).

    Altitude is written 16.16 as in the ETSI original (the ONVIF restatement only says
    "metres").
    """

    longitude: int
    latitude: int
    altitude: int = 0
    name: str = ""
    astronomical_body: str = "earth"
    notes: str = ""
    language: int = 0x55C4  # 'und'

    @classmethod
    def from_degrees(
        cls, latitude: str, longitude: str, altitude: str = "0", **kw: str
    ) -> Location:
        """Decimal strings (as typed, or from a ``geo:`` URI) to fixed point, no floats."""
        from decimal import Decimal, InvalidOperation

        try:
            lat, lon, alt = (Decimal(v.strip()) for v in (latitude, longitude, altitude))
        except InvalidOperation:
            raise ValueError(f"bad location {latitude!r}, {longitude!r}, {altitude!r}") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and -32768 < alt < 32768):
            raise ValueError(f"location out of range: {lat}, {lon}, {alt}")
        return cls(*(int((v * 65536).to_integral_value()) for v in (lon, lat, alt)), **kw)

    def encode(self) -> bytes:
        def fixed(v: int) -> bytes:
            return v.to_bytes(4, "big", signed=True)

        return full_box(
            b"loci",
            0,
            0,
            self.language.to_bytes(2, "big"),
            cstr(self.name),
            b"\x01",
            fixed(self.longitude),
            fixed(self.latitude),
            fixed(self.altitude),
            cstr(self.astronomical_body),
            cstr(self.notes),
        )

    @classmethod
    def parse(cls, payload: bytes) -> Location:
        f = Fields(payload, "loci")
        f.uint(4, "version/flags")
        language = f.uint(2, "language")
        name = f.string("Name")
        f.uint(1, "Role")

        def fixed(what: str) -> int:
            v = f.uint(4, what)
            return v - (1 << 32) if v & 0x80000000 else v

        lon, lat, alt = fixed("Longitude"), fixed("Latitude"), fixed("Altitude")
        body, notes = f.string("AstronomicalBody"), f.string("Notes")
        return cls(lon, lat, alt, name, body, notes, language)

    def degrees(self) -> tuple[str, str, str]:
        """Latitude, longitude, altitude as decimal strings (5 decimals: 16.16 fixed point
        resolves 1/65536 degree)."""
        return (
            _fixed_text(self.latitude),
            _fixed_text(self.longitude),
            _fixed_text(self.altitude),
        )


def _fixed_text(v: int) -> str:
    sign = "-" if v < 0 else ""
    scaled = (abs(v) * 100_000 + 32768) >> 16
    return f"{sign}{scaled // 100_000}.{scaled % 100_000:05d}"


# ---- signing instance and file-level meta ------------------------------------------------------


def auib(text: str) -> bytes:
    return box(b"auib", cstr(text))


@dataclass(frozen=True, slots=True)
class SinfLayout:
    """An encoded ``sinf`` with a zero-filled signature, and where that signature sits."""

    data: bytes
    signature_offset: int
    """Offset of the ``sibo`` payload inside :attr:`data`."""
    signature_size: int


def signing_instance(
    certificate_der: bytes,
    signature_size: int,
    *,
    start_times: StartTimes | None = None,
    algorithm_der: bytes | None = None,
    user_info: str | None = None,
) -> SinfLayout:
    """``sinf{cstb?, schm, schi{sibo(zeros), cert, sigC?, auib?}}``.

    ``cstb`` goes first in ``sinf`` as the spec's box tree draws it; ``sigC`` only when the
    algorithm is not the default RSASSA-PSS/SHA-256.
    """
    schm = full_box(b"schm", 0, 0, SCHEME_TYPE, SCHEME_VERSION.to_bytes(4, "big"))
    sibo = box(b"sibo", bytes(signature_size))
    schi_children = [sibo, box(b"cert", certificate_der)]
    if algorithm_der is not None:
        schi_children.append(box(b"sigC", algorithm_der))
    if user_info is not None:
        schi_children.append(auib(user_info))
    schi = box(b"schi", *schi_children)
    head = start_times.encode() if start_times is not None else b""
    data = box(b"sinf", head, schm, schi)
    # sinf header (8) + cstb + schm + schi header (8) + sibo header (8)
    offset = 8 + len(head) + len(schm) + 8 + 8
    assert data[offset - 4 : offset] == b"sibo"
    return SinfLayout(data, offset, signature_size)


def file_meta_box(suep: SurveillanceExport, sinfs: Sequence[bytes]) -> bytes:
    """The file-level ``meta`` (FullBox): ``hdlr``, ``suep``, ``ipro`` (protection_count 1)."""
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), META_HANDLER, bytes(12), cstr(META_HANDLER_NAME))
    ipro = full_box(b"ipro", 0, 0, (1).to_bytes(2, "big"), *sinfs)
    return full_box(b"meta", 0, 0, hdlr, suep.encode(), ipro)


# ---- parsing the file-level meta ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningInstance:
    """One parsed ``sinf``; offsets are relative to the start of the ``meta`` box."""

    offset: int
    size: int
    scheme_type: bytes = b""
    scheme_version: int = 0
    signature: bytes = b""
    signature_offset: int = 0
    certificate: bytes = b""
    algorithm_der: bytes | None = None
    user_info: str | None = None
    start_times: StartTimes | None = None
    error: str | None = None
    """Why this ``sinf`` could not be parsed (the others are still checked)."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """The file-level ``meta`` as found: its box bytes, ``suep``, ``ipro`` and the signers."""

    offset: int
    """File offset of the ``meta`` box."""
    data: bytes
    suep: SurveillanceExport
    ipro_offset: int
    """Offset of ``ipro`` inside :attr:`data`."""
    protection_count: int
    instances: tuple[SigningInstance, ...]
    start_times: StartTimes | None = None
    """A ``cstb`` directly in ``meta`` (unsigned files may carry one there)."""
    problems: tuple[str, ...] = field(default=())
    """Deviations that do not stop verification (e.g. protection_count != 1)."""


Children = dict[bytes, list[BoxHeader]]


def _payload(data: bytes, hdr: BoxHeader) -> bytes:
    return data[hdr.payload_offset : hdr.end]


def _find(kids: Children, box_type: bytes, where: str) -> BoxHeader | None:
    """The one child of that type, None if absent; more than one is an error."""
    found = kids.get(box_type, [])
    if len(found) > 1:
        raise BoxFormatError(f"{where}: {len(found)} {box_type.decode()!r} boxes, expected one")
    return found[0] if found else None


def _one(kids: Children, box_type: bytes, where: str) -> BoxHeader:
    found = _find(kids, box_type, where)
    if found is None:
        raise BoxFormatError(f"{where}: missing {box_type.decode()!r} box")
    return found


def _children(data: bytes, start: int, end: int, where: str) -> Children:
    kids: Children = {}
    try:
        for hdr in iter_boxes(data, start, end):
            kids.setdefault(hdr.type, []).append(hdr)
    except Mp4Error as exc:
        raise BoxFormatError(f"{where}: {exc}") from None
    return kids


def _parse_sinf(data: bytes, hdr: BoxHeader, number: int) -> SigningInstance:
    where = f"signing instance {number} (sinf)"
    kids = _children(data, hdr.payload_offset, hdr.end, where)
    schm = Fields(_payload(data, _one(kids, b"schm", where)), f"{where} schm")
    schm.uint(4, "version/flags")
    scheme_type = schm.uint(4, "scheme_type").to_bytes(4, "big")
    scheme_version = schm.uint(4, "scheme_version")
    schi_hdr = _one(kids, b"schi", where)
    schi = _children(data, schi_hdr.payload_offset, schi_hdr.end, f"{where} schi")
    sibo = _one(schi, b"sibo", f"{where} schi")
    cert = _one(schi, b"cert", f"{where} schi")
    sigc = _find(schi, b"sigC", f"{where} schi")
    user = _find(schi, b"auib", f"{where} schi")
    # cstb: in sinf as the box tree draws it; the prose also allows it in schi.
    cstb = _find(kids, b"cstb", where) or _find(schi, b"cstb", f"{where} schi")
    return SigningInstance(
        offset=hdr.offset,
        size=hdr.size,
        scheme_type=scheme_type,
        scheme_version=scheme_version,
        signature=_payload(data, sibo),
        signature_offset=sibo.payload_offset,
        certificate=_payload(data, cert),
        algorithm_der=_payload(data, sigc) if sigc is not None else None,
        user_info=Fields(_payload(data, user), f"{where} auib").string("UserInformation")
        if user is not None
        else None,
        start_times=StartTimes.parse(_payload(data, cstb)) if cstb is not None else None,
    )


def _parse_sinf_or_error(data: bytes, hdr: BoxHeader, number: int) -> SigningInstance:
    """A damaged ``sinf`` spoils only its own signature: earlier ones are verified without it."""
    try:
        return _parse_sinf(data, hdr, number)
    except BoxFormatError as exc:
        return SigningInstance(hdr.offset, hdr.size, error=str(exc))


def parse_file_meta(data: bytes, offset: int) -> FileMeta:
    """Decode a complete file-level ``meta`` box found at file ``offset``."""
    try:
        (top,) = list(iter_boxes(data))
    except (Mp4Error, ValueError):
        raise BoxFormatError("meta: not one complete box") from None
    if top.type != b"meta" or top.payload_size < 4:
        raise BoxFormatError("meta: not a FullBox 'meta'")
    kids = _children(data, top.payload_offset + 4, top.end, "meta")
    suep = SurveillanceExport.parse(_payload(data, _one(kids, b"suep", "meta")))
    ipro = _one(kids, b"ipro", "meta")
    f = Fields(_payload(data, ipro), "ipro")
    f.uint(4, "version/flags")
    count = f.uint(2, "protection_count")
    sinf_hdrs = [
        h for h in _children(data, ipro.payload_offset + 6, ipro.end, "ipro").get(b"sinf", [])
    ]
    if not sinf_hdrs:
        raise BoxFormatError("ipro: no signing instance (sinf)")
    instances = tuple(_parse_sinf_or_error(data, h, n) for n, h in enumerate(sinf_hdrs, start=1))
    cstb = _find(kids, b"cstb", "meta")
    problems = () if count == 1 else (f"ipro: protection_count is {count}, the format says 1",)
    return FileMeta(
        offset=offset,
        data=data,
        suep=suep,
        ipro_offset=ipro.offset,
        protection_count=count,
        instances=instances,
        start_times=StartTimes.parse(_payload(data, cstb)) if cstb is not None else None,
        problems=problems,
    )
