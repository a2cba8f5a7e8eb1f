"""Reading fragmented MP4: the init segment into track descriptions, fragments into samples.

Works on a buffer or a ``read_at`` callable: only ``ftyp``/``moov``/``moof`` boxes (and sample
data when asked for) are read, so a long export is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from nvr.protocol.mp4.box import BoxHeader, Reader, Source, iter_boxes, type_name, walk
from nvr.protocol.mp4.cursor import Cursor
from nvr.protocol.mp4.errors import Mp4Error
from nvr.protocol.mp4.fragment import (
    IS_NON_SYNC,
    TFHD_BASE_DATA_OFFSET,
    TFHD_DEFAULT_BASE_IS_MOOF,
    TFHD_DEFAULT_DURATION,
    TFHD_DEFAULT_FLAGS,
    TFHD_DEFAULT_SIZE,
    TFHD_DURATION_IS_EMPTY,
    TFHD_SAMPLE_DESCRIPTION_INDEX,
    TRUN_CTO,
    TRUN_DATA_OFFSET,
    TRUN_DURATION,
    TRUN_FIRST_SAMPLE_FLAGS,
    TRUN_FLAGS,
    TRUN_SIZE,
)
from nvr.protocol.mp4.init import unpack_language
from nvr.protocol.mp4.sample_entry import SampleEntry, parse_sample_entry

_MAX_MOOV = 256 << 20
_MAX_MOOF = 64 << 20


@dataclass(frozen=True)
class TrackInfo:
    """One ``trak`` plus its ``trex`` defaults."""

    track_id: int
    handler: bytes
    timescale: int
    duration: int
    language: str
    name: str
    width: int
    height: int
    entries: tuple[SampleEntry, ...]
    default_description_index: int = 1
    default_duration: int = 0
    default_size: int = 0
    default_flags: int = 0

    @property
    def entry(self) -> SampleEntry:
        """The first sample entry (the only one in files we write)."""
        return self.entries[0]

    @property
    def codec(self) -> bytes:
        return self.entries[0].fourcc


@dataclass(frozen=True)
class InitInfo:
    major_brand: bytes
    minor_version: int
    compatible_brands: tuple[bytes, ...]
    movie_timescale: int
    movie_duration: int
    creation_time: int
    modification_time: int
    tracks: tuple[TrackInfo, ...]
    fragmented: bool
    fragment_duration: int | None = None
    moov_end: int = 0  # file offset just past moov (fragments follow)

    def track(self, track_id: int) -> TrackInfo:
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise KeyError(track_id)


@dataclass(frozen=True)
class Sample:
    """One sample located in the file; ``data`` is filled when reading with data."""

    track_id: int
    decode_time: int
    duration: int
    key: bool
    offset: int
    size: int
    composition_offset: int = 0
    flags: int = 0
    description_index: int = 1
    data: bytes | None = None

    @property
    def presentation_time(self) -> int:
        return self.decode_time + self.composition_offset


@dataclass(frozen=True)
class Fragment:
    offset: int
    size: int
    sequence_number: int
    samples: tuple[Sample, ...] = field(default_factory=tuple)


def _need(children: dict[bytes, BoxHeader], box_type: bytes, where: str) -> BoxHeader:
    try:
        return children[box_type]
    except KeyError:
        raise Mp4Error(f"{where}: missing {type_name(box_type)} box") from None


def _children(data: bytes, hdr: BoxHeader, skip: int = 0) -> dict[bytes, BoxHeader]:
    out: dict[bytes, BoxHeader] = {}
    for child in iter_boxes(data, hdr.payload_offset + skip, hdr.end):
        out.setdefault(child.type, child)
    return out


def _cursor(data: bytes, hdr: BoxHeader, what: str | None = None) -> Cursor:
    name = what or f"box {type_name(hdr.type)}"
    return Cursor(data, name, hdr.payload_offset, hdr.end)


def _times(cur: Cursor, version: int, count: int) -> list[int]:
    if version > 1:
        raise cur.fail(f"unsupported version {version}")
    return [cur.uint(8 if version else 4, "time") for _ in range(count)]


def _parse_ftyp(data: bytes) -> tuple[bytes, int, tuple[bytes, ...]]:
    hdr = next(iter_boxes(data))
    cur = _cursor(data, hdr, "ftyp")
    major = cur.take(4, "major_brand")
    minor = cur.u32("minor_version")
    if cur.remaining % 4:
        raise cur.fail("compatible_brands is not a multiple of 4 bytes")
    brands = tuple(cur.take(4) for _ in range(cur.remaining // 4))
    return major, minor, brands


def _parse_trak(data: bytes, hdr: BoxHeader) -> TrackInfo:
    kids = _children(data, hdr)
    tk = _cursor(data, _need(kids, b"tkhd", "trak"), "tkhd")
    version, _ = tk.full_box()
    _times(tk, version, 2)
    track_id = tk.u32("track_ID")
    tk.skip(4)
    _times(tk, version, 1)
    tk.skip(52, "tkhd fields")
    width = tk.u32("width") >> 16
    height = tk.u32("height") >> 16
    where = f"trak {track_id}"
    mdia = _children(data, _need(kids, b"mdia", where))
    md = _cursor(data, _need(mdia, b"mdhd", where), f"{where} mdhd")
    version, _ = md.full_box()
    _times(md, version, 2)
    timescale = md.u32("timescale")
    if timescale == 0:
        raise md.fail("timescale 0")
    (duration,) = _times(md, version, 1)
    language = unpack_language(md.u16("language") & 0x7FFF)
    hd = _cursor(data, _need(mdia, b"hdlr", where), f"{where} hdlr")
    hd.full_box()
    hd.skip(4, "pre_defined")
    handler = hd.take(4, "handler_type")
    hd.skip(12)
    name = hd.cstring("name") if hd.remaining else ""
    minf = _children(data, _need(mdia, b"minf", where))
    stbl = _children(data, _need(minf, b"stbl", where))
    stsd_hdr = _need(stbl, b"stsd", where)
    sd = _cursor(data, stsd_hdr, f"{where} stsd")
    sd.full_box()
    count = sd.u32("entry_count")
    entries = []
    for ehdr in iter_boxes(data, sd.pos, stsd_hdr.end):
        entries.append(parse_sample_entry(data[ehdr.offset : ehdr.end], handler))
    if count != len(entries) or not entries:
        raise sd.fail(f"entry_count {count} but {len(entries)} sample entries")
    return TrackInfo(
        track_id, handler, timescale, duration, language, name, width, height, tuple(entries)
    )


def parse_moov(moov: bytes, ftyp: bytes | None = None, moov_end: int = 0) -> InitInfo:
    """Decode a complete ``moov`` box (and optionally the ``ftyp`` box before it)."""
    hdrs = list(iter_boxes(moov))
    if len(hdrs) != 1 or hdrs[0].type != b"moov":
        raise Mp4Error("moov: expected one complete 'moov' box")
    kids = _children(moov, hdrs[0])
    mv = _cursor(moov, _need(kids, b"mvhd", "moov"), "mvhd")
    version, _ = mv.full_box()
    creation, modified = _times(mv, version, 2)
    movie_timescale = mv.u32("timescale")
    (movie_duration,) = _times(mv, version, 1)
    tracks: dict[int, TrackInfo] = {}
    for hdr in iter_boxes(moov, hdrs[0].payload_offset, hdrs[0].end):
        if hdr.type == b"trak":
            track = _parse_trak(moov, hdr)
            if track.track_id in tracks:
                raise Mp4Error(f"moov: duplicate track_ID {track.track_id}")
            tracks[track.track_id] = track
    if not tracks:
        raise Mp4Error("moov: no tracks")
    fragment_duration = None
    fragmented = b"mvex" in kids
    if fragmented:
        for hdr in iter_boxes(moov, kids[b"mvex"].payload_offset, kids[b"mvex"].end):
            if hdr.type == b"mehd":
                cur = _cursor(moov, hdr, "mehd")
                version, _ = cur.full_box()
                (fragment_duration,) = _times(cur, version, 1)
            elif hdr.type == b"trex":
                cur = _cursor(moov, hdr, "trex")
                cur.full_box()
                track_id = cur.u32("track_ID")
                if track_id not in tracks:
                    raise cur.fail(f"track_ID {track_id} has no trak")
                t = tracks[track_id]
                tracks[track_id] = replace(
                    t,
                    default_description_index=cur.u32(),
                    default_duration=cur.u32(),
                    default_size=cur.u32(),
                    default_flags=cur.u32(),
                )
    major, minor, brands = _parse_ftyp(ftyp) if ftyp else (b"", 0, ())
    return InitInfo(
        major,
        minor,
        brands,
        movie_timescale,
        movie_duration,
        creation,
        modified,
        tuple(tracks.values()),
        fragmented,
        fragment_duration,
        moov_end,
    )


def read_init(source: Source, size: int | None = None) -> InitInfo:
    """Find ``ftyp`` and ``moov`` among the top-level boxes and decode them."""
    reader = Reader(source, size)
    ftyp = None
    for hdr in walk(source, size=reader.size, containers={}):
        if hdr.type == b"ftyp" and ftyp is None:
            if hdr.size > 4096:
                raise Mp4Error(f"ftyp: implausible size {hdr.size}")
            ftyp = reader.box_bytes(hdr)
        elif hdr.type == b"moov":
            if hdr.size > _MAX_MOOV:
                raise Mp4Error(f"moov: implausible size {hdr.size}")
            return parse_moov(reader.box_bytes(hdr), ftyp, hdr.end)
    raise Mp4Error("no 'moov' box")


class _TrafDefaults:
    __slots__ = ("desc", "duration", "flags", "size")

    def __init__(self, track: TrackInfo) -> None:
        self.desc = track.default_description_index
        self.duration = track.default_duration
        self.size = track.default_size
        self.flags = track.default_flags


def parse_moof(
    moof: bytes,
    moof_offset: int,
    init: InitInfo,
    next_times: dict[int, int] | None = None,
    file_size: int | None = None,
) -> Fragment:
    """Decode one complete ``moof`` box found at file offset ``moof_offset``.

    ``next_times`` carries per-track decode times between fragments for trafs without ``tfdt``;
    it is updated in place. ``file_size`` bounds the sample data (a guard against lying
    sample counts).
    """
    if next_times is None:
        next_times = {}
    hdrs = list(iter_boxes(moof))
    if len(hdrs) != 1 or hdrs[0].type != b"moof":
        raise Mp4Error("moof: expected one complete 'moof' box")
    top = hdrs[0]
    kids = _children(moof, top)
    mf = _cursor(moof, _need(kids, b"mfhd", "moof"), "mfhd")
    mf.full_box()
    sequence = mf.u32("sequence_number")
    samples: list[Sample] = []
    prev_traf_end = moof_offset
    for traf in iter_boxes(moof, top.payload_offset, top.end):
        if traf.type != b"traf":
            continue
        prev_traf_end = _parse_traf(
            moof, traf, moof_offset, prev_traf_end, init, next_times, samples, file_size
        )
    return Fragment(moof_offset, top.size, sequence, tuple(samples))


def _parse_traf(
    moof: bytes,
    traf: BoxHeader,
    moof_offset: int,
    prev_traf_end: int,
    init: InitInfo,
    next_times: dict[int, int],
    samples: list[Sample],
    file_size: int | None,
) -> int:
    kids = _children(moof, traf)
    th = _cursor(moof, _need(kids, b"tfhd", "traf"), "tfhd")
    _, tf_flags = th.full_box()
    track_id = th.u32("track_ID")
    try:
        track = init.track(track_id)
    except KeyError:
        raise th.fail(f"track_ID {track_id} is not in moov") from None
    d = _TrafDefaults(track)
    if tf_flags & TFHD_BASE_DATA_OFFSET:
        base = th.u64("base_data_offset")
    elif tf_flags & TFHD_DEFAULT_BASE_IS_MOOF:
        base = moof_offset
    else:
        base = prev_traf_end
    if tf_flags & TFHD_SAMPLE_DESCRIPTION_INDEX:
        d.desc = th.u32("sample_description_index")
    if tf_flags & TFHD_DEFAULT_DURATION:
        d.duration = th.u32("default_sample_duration")
    if tf_flags & TFHD_DEFAULT_SIZE:
        d.size = th.u32("default_sample_size")
    if tf_flags & TFHD_DEFAULT_FLAGS:
        d.flags = th.u32("default_sample_flags")
    if tf_flags & TFHD_DURATION_IS_EMPTY:
        d.duration = 0
    where = f"traf {track_id}"
    time = next_times.get(track_id, 0)
    if b"tfdt" in kids:
        td = _cursor(moof, kids[b"tfdt"], f"{where} tfdt")
        version, _ = td.full_box()
        (time,) = _times(td, version, 1)
    pos = base
    for hdr in iter_boxes(moof, traf.payload_offset, traf.end):
        if hdr.type != b"trun":
            continue
        cur = _cursor(moof, hdr, f"{where} trun")
        version, flags = cur.full_box()
        count = cur.u32("sample_count")
        if flags & TRUN_DATA_OFFSET:
            pos = base + cur.i32("data_offset")
        first_flags = cur.u32("first_sample_flags") if flags & TRUN_FIRST_SAMPLE_FLAGS else None
        fields = [bit for bit in (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO) if flags & bit]
        if count * 4 * len(fields) > cur.remaining:
            raise cur.fail(f"{count} samples do not fit in {cur.remaining} bytes")
        if not flags & TRUN_SIZE:
            # Sizes from defaults: the samples must still fit in the file.
            span = count * d.size if d.size else count
            if (file_size is not None and pos + span > file_size) or count > 1 << 24:
                raise cur.fail(f"implausible: {count} samples of default size {d.size}")
        for i in range(count):
            duration = cur.u32() if flags & TRUN_DURATION else d.duration
            size = cur.u32() if flags & TRUN_SIZE else d.size
            if flags & TRUN_FLAGS:
                sflags = cur.u32()
            elif i == 0 and first_flags is not None:
                sflags = first_flags
            else:
                sflags = d.flags
            cto = 0
            if flags & TRUN_CTO:
                cto = cur.i32() if version else cur.u32()
            if pos < 0:
                raise cur.fail(f"sample data offset {pos} is negative")
            samples.append(
                Sample(
                    track_id,
                    time,
                    duration,
                    not sflags & IS_NON_SYNC,
                    pos,
                    size,
                    cto,
                    sflags,
                    d.desc,
                )
            )
            time += duration
            pos += size
    next_times[track_id] = time
    return pos


def iter_fragments(
    source: Source, init: InitInfo | None = None, size: int | None = None
) -> Iterator[Fragment]:
    """Every top-level ``moof`` in file order, decoded (sample data not read)."""
    reader = Reader(source, size)
    if init is None:
        init = read_init(source, reader.size)
    next_times: dict[int, int] = {}
    for hdr in walk(source, size=reader.size, containers={}):
        if hdr.type != b"moof":
            continue
        if hdr.size > _MAX_MOOF:
            raise Mp4Error(f"moof at {hdr.offset}: implausible size {hdr.size}")
        yield parse_moof(reader.box_bytes(hdr), hdr.offset, init, next_times, reader.size)


def iter_samples(
    source: Source,
    init: InitInfo | None = None,
    size: int | None = None,
    *,
    with_data: bool = True,
) -> Iterator[Sample]:
    """Every sample of every fragment, in file order, with its bytes when ``with_data``."""
    reader = Reader(source, size)
    for frag in iter_fragments(source, init, reader.size):
        for s in frag.samples:
            if s.offset + s.size > reader.size:
                raise Mp4Error(
                    f"trun of track {s.track_id} in moof at {frag.offset}: sample at "
                    f"{s.offset}+{s.size} runs past the end of the file"
                )
            if with_data:
                data = reader.read(s.offset, s.size, f"sample of track {s.track_id}")
                yield replace(s, data=data)
            else:
                yield s
