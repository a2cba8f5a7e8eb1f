"""Init segment of a fragmented MP4: ``ftyp`` and a ``moov`` with empty sample tables + ``mvex``.

The moov is built as a :class:`Box` tree so callers (the ONVIF export) can add boxes anywhere
(``udta/loci``, ``meta``, ``uuid`` ...) through generic child lists, with no special cases here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nvr.protocol.mp4.box import Box, box, fourcc, full_box
from nvr.protocol.mp4.sample_entry import META, SOUN, VIDE, SampleEntry

MP4_EPOCH_OFFSET = 2_082_844_800
"""Seconds from 1904-01-01T00:00Z (the ISO BMFF epoch) to 1970-01-01T00:00Z."""

_U32_MAX = 0xFFFFFFFF
_MATRIX = b"".join(v.to_bytes(4, "big") for v in (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000))
_HANDLER_NAMES = {VIDE: "VideoHandler", SOUN: "SoundHandler", META: "MetadataHandler"}


def mp4_time(unix_seconds: int) -> int:
    """Unix seconds to ISO BMFF seconds since 1904 (``mvhd``/``tkhd``/``mdhd``, ONVIF ``suep``)."""
    return unix_seconds + MP4_EPOCH_OFFSET


def pack_language(code: str) -> int:
    """ISO-639-2/T code to the packed 15-bit form of ``mdhd`` (and ``loci``)."""
    if len(code) != 3 or not all("a" <= c <= "z" for c in code):
        raise ValueError(f"language must be 3 lowercase letters, got {code!r}")
    return ((ord(code[0]) - 0x60) << 10) | ((ord(code[1]) - 0x60) << 5) | (ord(code[2]) - 0x60)


def unpack_language(value: int) -> str:
    return "".join(chr(((value >> s) & 0x1F) + 0x60) for s in (10, 5, 0))


def rescale(value: int, from_scale: int, to_scale: int) -> int:
    """Convert a duration between timescales, rounding up so nothing is cut short."""
    return -(-value * to_scale // from_scale)


@dataclass(frozen=True)
class FileType:
    """``ftyp``: brands are chosen by the caller (the ONVIF export wants major ``isom``)."""

    major_brand: bytes = b"isom"
    minor_version: int = 0x200
    compatible_brands: tuple[bytes, ...] = (b"isom", b"iso6", b"mp41")

    def encode(self) -> bytes:
        return box(
            b"ftyp",
            fourcc(self.major_brand),
            self.minor_version.to_bytes(4, "big"),
            *(fourcc(b) for b in self.compatible_brands),
        )


@dataclass(frozen=True)
class TrackSpec:
    """One track of the init segment.

    ``duration`` is in ``timescale`` units and may stay 0 (unknown) in a fragmented file; the
    fragments then define it. ``children`` are extra encoded boxes appended inside ``trak``.
    ``more_entries`` follow ``entry`` in ``stsd`` (sample description indexes 2, 3 ...) for a
    source whose codec parameters change mid-file; all must share ``entry``'s handler.
    """

    track_id: int
    timescale: int
    entry: SampleEntry
    language: str = "und"
    duration: int = 0
    name: str | None = None
    children: tuple[bytes, ...] = ()
    more_entries: tuple[SampleEntry, ...] = ()

    @property
    def handler(self) -> bytes:
        return self.entry.handler

    @property
    def entries(self) -> tuple[SampleEntry, ...]:
        return (self.entry, *self.more_entries)


def _times_version(*values: int) -> int:
    return 1 if any(v > _U32_MAX for v in values) else 0


def _times(version: int, *values: int) -> bytes:
    n = 8 if version else 4
    return b"".join(v.to_bytes(n, "big") for v in values)


def mvhd(
    timescale: int, duration: int, next_track_id: int, creation: int = 0, modified: int = 0
) -> bytes:
    v = _times_version(creation, modified, duration)
    return full_box(
        b"mvhd",
        v,
        0,
        _times(v, creation, modified),
        timescale.to_bytes(4, "big"),
        _times(v, duration),
        (0x00010000).to_bytes(4, "big"),  # rate 1.0
        (0x0100).to_bytes(2, "big"),  # volume 1.0
        bytes(10),
        _MATRIX,
        bytes(24),  # pre_defined
        next_track_id.to_bytes(4, "big"),
    )


def tkhd(spec: TrackSpec, movie_duration: int, creation: int = 0, modified: int = 0) -> bytes:
    v = _times_version(creation, modified, movie_duration)
    entry = spec.entry
    return full_box(
        b"tkhd",
        v,
        0x000003,  # track_enabled | track_in_movie
        _times(v, creation, modified),
        spec.track_id.to_bytes(4, "big"),
        bytes(4),
        _times(v, movie_duration),
        bytes(8),
        bytes(4),  # layer, alternate_group
        (0x0100 if entry.handler == SOUN else 0).to_bytes(2, "big"),
        bytes(2),
        _MATRIX,
        (entry.width << 16).to_bytes(4, "big"),
        (entry.height << 16).to_bytes(4, "big"),
    )


def mdhd(spec: TrackSpec, creation: int = 0, modified: int = 0) -> bytes:
    v = _times_version(creation, modified, spec.duration)
    return full_box(
        b"mdhd",
        v,
        0,
        _times(v, creation, modified),
        spec.timescale.to_bytes(4, "big"),
        _times(v, spec.duration),
        pack_language(spec.language).to_bytes(2, "big"),
        bytes(2),
    )


def hdlr(handler_type: bytes, name: str) -> bytes:
    return full_box(
        b"hdlr", 0, 0, bytes(4), fourcc(handler_type), bytes(12), name.encode("utf-8") + b"\x00"
    )


def _media_header(handler: bytes) -> bytes:
    if handler == VIDE:
        return full_box(b"vmhd", 0, 1, bytes(8))
    if handler == SOUN:
        return full_box(b"smhd", 0, 0, bytes(4))
    return full_box(b"nmhd", 0, 0)


def _dinf() -> bytes:
    url = full_box(b"url ", 0, 1)  # flag 1: media is in this file
    return box(b"dinf", full_box(b"dref", 0, 0, (1).to_bytes(4, "big"), url))


def _stbl(entries: Sequence[SampleEntry]) -> Box:
    return Box(
        b"stbl",
        children=[
            full_box(b"stsd", 0, 0, len(entries).to_bytes(4, "big"), *(e.box for e in entries)),
            full_box(b"stts", 0, 0, bytes(4)),
            full_box(b"stsc", 0, 0, bytes(4)),
            full_box(b"stsz", 0, 0, bytes(8)),
            full_box(b"stco", 0, 0, bytes(4)),
        ],
    )


def trak(spec: TrackSpec, movie_timescale: int, creation: int = 0, modified: int = 0) -> Box:
    if not 0 < spec.track_id <= _U32_MAX or spec.timescale <= 0:
        raise ValueError(f"track {spec.track_id}: bad track id or timescale")
    if any(e.handler != spec.handler for e in spec.more_entries):
        raise ValueError(f"track {spec.track_id}: sample entries with different handlers")
    name = spec.name if spec.name is not None else _HANDLER_NAMES.get(spec.handler, "")
    minf = Box(
        b"minf",
        children=[_media_header(spec.handler), _dinf(), _stbl(spec.entries)],
    )
    mdia = Box(
        b"mdia",
        children=[mdhd(spec, creation, modified), hdlr(spec.handler, name), minf],
    )
    movie_duration = rescale(spec.duration, spec.timescale, movie_timescale)
    return Box(
        b"trak",
        children=[tkhd(spec, movie_duration, creation, modified), mdia, *spec.children],
    )


def trex(track_id: int) -> bytes:
    # Defaults stay zero: every trun we write carries explicit durations, sizes and flags.
    return full_box(b"trex", 0, 0, track_id.to_bytes(4, "big"), (1).to_bytes(4, "big"), bytes(12))


def build_moov(
    tracks: Sequence[TrackSpec],
    *,
    movie_timescale: int = 1000,
    creation_time: int = 0,
    modification_time: int | None = None,
    fragment_duration: int | None = None,
    children: Iterable[Box | bytes] = (),
    udta_children: Iterable[Box | bytes] = (),
) -> Box:
    """The ``moov`` tree: mvhd, trak per track, mvex (mehd if ``fragment_duration``, trex per
    track), udta when ``udta_children`` is non-empty, then ``children``.

    Times are ISO BMFF seconds (see :func:`mp4_time`); ``fragment_duration`` is in
    ``movie_timescale`` units.
    """
    if not tracks:
        raise ValueError("at least one track is required")
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate track ids {ids}")
    modified = creation_time if modification_time is None else modification_time
    durations = [rescale(t.duration, t.timescale, movie_timescale) for t in tracks]
    mvex: list[Box | bytes] = []
    if fragment_duration is not None:
        v = _times_version(fragment_duration)
        mvex.append(full_box(b"mehd", v, 0, _times(v, fragment_duration)))
    mvex.extend(trex(t.track_id) for t in tracks)
    moov = Box(
        b"moov",
        children=[
            mvhd(movie_timescale, max(durations), max(ids) + 1, creation_time, modified),
            *(trak(t, movie_timescale, creation_time, modified) for t in tracks),
            Box(b"mvex", children=mvex),
        ],
    )
    udta = list(udta_children)
    if udta:
        moov.children.append(Box(b"udta", children=udta))
    moov.children.extend(children)
    return moov


def init_segment(
    tracks: Sequence[TrackSpec],
    *,
    ftyp: FileType | None = None,
    movie_timescale: int = 1000,
    creation_time: int = 0,
    fragment_duration: int | None = None,
    moov_children: Iterable[Box | bytes] = (),
    udta_children: Iterable[Box | bytes] = (),
    before_moov: Iterable[Box | bytes] = (),
    after_moov: Iterable[Box | bytes] = (),
) -> bytes:
    """``ftyp``, ``before_moov`` boxes, ``moov``, ``after_moov`` boxes.

    The extra top-level boxes are where the ONVIF export puts its file-level ``meta``
    (``suep`` is best placed early, so ``before_moov`` is the natural spot).
    """
    moov = build_moov(
        tracks,
        movie_timescale=movie_timescale,
        creation_time=creation_time,
        fragment_duration=fragment_duration,
        children=moov_children,
        udta_children=udta_children,
    )
    parts = [(ftyp or FileType()).encode()]
    parts.extend(b.encode() if isinstance(b, Box) else bytes(b) for b in before_moov)
    parts.append(moov.encode())
    parts.extend(b.encode() if isinstance(b, Box) else bytes(b) for b in after_moov)
    return b"".join(parts)
