"""Write -> read: init segments, fragments and the random-access index give back exactly what
went in (sample bytes, decode times, durations, key flags, composition offsets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.protocol.mp4 import (
    Box,
    FileType,
    FragmentWriter,
    Mp4Error,
    TrackSpec,
    box,
    full_box,
    g711_entry,
    init_segment,
    iter_fragments,
    iter_samples,
    jpeg_entry,
    metx_entry,
    mp4_time,
    parse_moof,
    read_init,
    read_mfra,
    walk,
)
from nvr.protocol.mp4.init import build_moov, pack_language, rescale, unpack_language

ENTRIES = {
    "vide": jpeg_entry(320, 240),
    "soun": g711_entry("alaw"),
    "meta": metx_entry(),
}


@dataclass(frozen=True)
class Op:
    track: int
    size: int
    duration: int
    key: bool
    cto: int
    flush: bool
    gap: int


ops_strategy = st.lists(
    st.builds(
        Op,
        track=st.integers(0, 2),
        size=st.integers(0, 40),
        duration=st.integers(0, 5000),
        key=st.booleans(),
        cto=st.one_of(st.just(0), st.integers(-3000, 3000)),
        flush=st.booleans(),
        gap=st.one_of(st.just(0), st.integers(1, 1 << 40)),
    ),
    max_size=40,
)

tracks_strategy = st.lists(
    st.tuples(
        st.sampled_from(sorted(ENTRIES)),
        st.integers(1, 1 << 20),
        st.integers(1, 1_000_000),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda t: t[1],
)


def _write(
    specs: list[TrackSpec], ops: list[Op], *, mfra: bool
) -> tuple[bytes, dict[int, list[tuple]]]:
    init = init_segment(specs)
    writer = FragmentWriter(specs, offset=len(init))
    out = [init]
    expected: dict[int, list[tuple]] = {s.track_id: [] for s in specs}
    for i, op in enumerate(ops):
        spec = specs[op.track % len(specs)]
        tid = spec.track_id
        time = writer.next_decode_time(tid)
        if op.gap and not writer.pending_samples(tid):
            time += op.gap
        data = bytes((i + k) % 256 for k in range(op.size))
        writer.add_sample(
            tid, data, op.duration, key=op.key, composition_offset=op.cto, decode_time=time
        )
        expected[tid].append((data, time, op.duration, op.key, op.cto))
        if op.flush:
            out.extend(writer.flush_chunks())
    out.append(writer.flush())
    assert writer.flush() == b""
    if mfra:
        out.append(writer.mfra())
    return b"".join(out), expected


@settings(max_examples=150, deadline=None)
@given(tracks_strategy, ops_strategy, st.booleans(), st.booleans())
def test_random_sample_sequences_round_trip(
    tracks: list[tuple[str, int, int]], ops: list[Op], mfra: bool, ranged: bool
) -> None:
    specs = [TrackSpec(tid, scale, ENTRIES[kind]) for kind, tid, scale in tracks]
    data, expected = _write(specs, ops, mfra=mfra)
    source = (lambda off, n: data[off : off + n]) if ranged else data
    size = len(data) if ranged else None
    init = read_init(source, size)
    assert [(t.track_id, t.timescale, t.handler) for t in init.tracks] == [
        (s.track_id, s.timescale, s.handler) for s in specs
    ]
    got: dict[int, list[tuple]] = {s.track_id: [] for s in specs}
    for s in iter_samples(source, init, size):
        got[s.track_id].append((s.data, s.decode_time, s.duration, s.key, s.composition_offset))
        assert s.presentation_time == s.decode_time + s.composition_offset
    assert got == expected
    index = read_mfra(source, size)
    if not mfra:
        assert index is None
        return
    assert index is not None
    fragments = {f.offset: f for f in iter_fragments(data, init)}
    for spec in specs:
        entries = index.get(spec.track_id, [])
        keys = [e for e in expected[spec.track_id] if e[3]]
        if spec.handler == b"vide":
            assert [e.time for e in entries] == [max(0, k[1] + k[4]) for k in keys]
        else:
            assert len(entries) <= len(keys)
        for e in entries:
            frag = fragments[e.moof_offset]
            track_ids = list(dict.fromkeys(s.track_id for s in frag.samples))
            assert track_ids[e.traf_number - 1] == spec.track_id
            own = [s for s in frag.samples if s.track_id == spec.track_id]
            sample = own[e.sample_number - 1]
            assert sample.key and max(0, sample.presentation_time) == e.time


def test_fragment_layout() -> None:
    """Each traf has tfhd (default-base-is-moof), tfdt v1 and one trun; samples follow in mdat."""
    spec_v = TrackSpec(1, 90000, ENTRIES["vide"])
    spec_a = TrackSpec(2, 8000, ENTRIES["soun"])
    writer = FragmentWriter([spec_v, spec_a], sequence_number=7)
    writer.add_sample(1, b"key", 3000, key=True, decode_time=90000)
    writer.add_sample(1, b"delta", 3000, key=False, composition_offset=6000)
    writer.add_sample(2, b"a" * 160, 160, key=True)
    assert writer.pending_duration(1) == 6000 and writer.pending_bytes == 168
    frag = writer.flush()
    boxes = [(h.depth, h.type) for h in walk(frag)]
    assert boxes == [
        (0, b"moof"),
        (1, b"mfhd"),
        (1, b"traf"),
        (2, b"tfhd"),
        (2, b"tfdt"),
        (2, b"trun"),
        (1, b"traf"),
        (2, b"tfhd"),
        (2, b"tfdt"),
        (2, b"trun"),
        (0, b"mdat"),
    ]
    hdrs = {(h.type, i): h for i, h in enumerate(walk(frag))}
    tfhd = hdrs[(b"tfhd", 3)]
    assert frag[tfhd.payload_offset : tfhd.payload_offset + 4] == b"\x00\x02\x00\x00"
    tfdt = hdrs[(b"tfdt", 4)]
    assert frag[tfdt.payload_offset] == 1
    assert int.from_bytes(frag[tfdt.payload_offset + 4 : tfdt.end], "big") == 90000
    trun_v, trun_a = hdrs[(b"trun", 5)], hdrs[(b"trun", 9)]
    assert frag[trun_v.payload_offset : trun_v.payload_offset + 4] == b"\x00\x00\x0f\x01"
    assert frag[trun_a.payload_offset : trun_a.payload_offset + 4] == b"\x00\x00\x07\x01"
    mdat = hdrs[(b"mdat", 10)]
    assert frag[mdat.payload_offset : mdat.end] == b"keydelta" + b"a" * 160
    moof = hdrs[(b"moof", 0)]
    assert frag[moof.payload_offset + 12 : moof.payload_offset + 16] == (7).to_bytes(4, "big")
    assert writer.sequence_number == 8 and writer.offset == len(frag)


def test_negative_composition_offsets_use_trun_v1() -> None:
    spec = TrackSpec(1, 90000, ENTRIES["vide"])
    writer = FragmentWriter([spec])
    writer.add_sample(1, b"x", 3000, key=True, composition_offset=-3000)
    frag = writer.flush()
    trun = next(h for h in walk(frag) if h.type == b"trun")
    assert frag[trun.payload_offset] == 1
    init = read_init(init_segment([spec]))
    (sample,) = parse_moof(frag[: next(walk(frag)).size], 0, init).samples
    assert sample.composition_offset == -3000


def test_sample_entry_switch_at_fragment_boundary() -> None:
    small, large = jpeg_entry(320, 240), jpeg_entry(640, 480)
    spec = TrackSpec(1, 90000, small, more_entries=(large,))
    init = init_segment([spec])
    writer = FragmentWriter([spec], offset=len(init))
    writer.add_sample(1, b"a", 3000, key=True)
    with pytest.raises(ValueError, match="flush first"):
        writer.add_sample(1, b"b", 3000, key=True, description_index=2)
    first = writer.flush()
    writer.add_sample(1, b"b", 3000, key=True, description_index=2)
    writer.add_sample(1, b"c", 3000, key=True, description_index=2)
    second = writer.flush()
    writer.add_sample(1, b"d", 3000, key=True)
    data = init + first + second + writer.flush()
    info = read_init(data)
    assert info.track(1).entries == (small, large)
    got = [(s.data, s.description_index, s.decode_time) for s in iter_samples(data, info)]
    assert got == [(b"a", 1, 0), (b"b", 2, 3000), (b"c", 2, 6000), (b"d", 1, 9000)]
    with pytest.raises(ValueError, match="no sample entry number 3"):
        writer.add_sample(1, b"x", 1, key=True, description_index=3)
    with pytest.raises(ValueError, match="different handlers"):
        init_segment([TrackSpec(1, 1000, small, more_entries=(ENTRIES["soun"],))])


def test_writer_rejects_misuse() -> None:
    spec = TrackSpec(1, 90000, ENTRIES["vide"])
    writer = FragmentWriter([spec])
    writer.add_sample(1, b"x", 10, key=True)
    with pytest.raises(ValueError, match="flush first"):
        writer.add_sample(1, b"x", 10, key=True, decode_time=100)
    writer.add_sample(1, b"x", 10, key=True, decode_time=10)  # contiguous: fine
    writer.flush()
    with pytest.raises(ValueError, match="goes back"):
        writer.add_sample(1, b"x", 10, key=True, decode_time=5)
    with pytest.raises(ValueError, match="unknown track"):
        writer.add_sample(9, b"x", 10, key=True)
    with pytest.raises(ValueError, match="duration"):
        writer.add_sample(1, b"x", -1, key=True)
    with pytest.raises(ValueError, match="composition offset"):
        writer.add_sample(1, b"x", 1, key=True, composition_offset=1 << 31)
    with pytest.raises(ValueError):
        FragmentWriter([spec, spec])
    with pytest.raises(ValueError):
        FragmentWriter([])
    with pytest.raises(ValueError):
        writer.advance(-1)


def test_advance_keeps_tfra_offsets_right() -> None:
    spec = TrackSpec(1, 1000, ENTRIES["vide"])
    init = init_segment([spec])
    writer = FragmentWriter([spec], offset=len(init))
    parts = [init]
    for i in range(3):
        writer.add_sample(1, bytes([i]) * 10, 40, key=True)
        parts.append(writer.flush())
        extra = box(b"free", b"between fragments")
        parts.append(extra)
        writer.advance(len(extra))
    parts.append(writer.mfra())
    data = b"".join(parts)
    index = read_mfra(data)
    assert index is not None
    moofs = [h.offset for h in walk(data, containers={}) if h.type == b"moof"]
    assert [e.moof_offset for e in index[1]] == moofs
    assert [e.time for e in index[1]] == [0, 40, 80]


def test_init_segment_fields_and_injection() -> None:
    video = TrackSpec(1, 90000, ENTRIES["vide"], duration=90000 * 3600 * 24 * 60, name="cam")
    audio = TrackSpec(2, 8000, ENTRIES["soun"], language="deu", duration=16000)
    meta = TrackSpec(
        3, 1000, ENTRIES["meta"], children=(box(b"tref", box(b"cdsc", (1).to_bytes(4, "big"))),)
    )
    suep = full_box(b"suep", 1, 0, b"nvr\x00")
    file_meta = Box.full(b"meta", 0, 0, children=[full_box(b"hdlr", 0, 0, bytes(20)), suep])
    created = mp4_time(1_700_000_000)
    data = init_segment(
        [video, audio, meta],
        ftyp=FileType(b"isom", 1, (b"isom", b"iso6")),
        creation_time=created,
        fragment_duration=2000,
        udta_children=[box(b"loci", b"here")],
        moov_children=[box(b"uuid", b"vendor", usertype=bytes(16))],
        before_moov=[box(b"free", b"early")],
        after_moov=[file_meta],
    )
    types = [h.type for h in walk(data)]
    for wanted in (b"vmhd", b"smhd", b"nmhd", b"dref", b"url ", b"mehd", b"tref"):
        assert wanted in types
    top = [h.type for h in walk(data, containers={})]
    assert top == [b"ftyp", b"free", b"moov", b"meta"]
    moov_children = [h.type for h in walk(data) if h.depth == 1 and h.offset < len(data)]
    assert moov_children[:6] == [b"mvhd", b"trak", b"trak", b"trak", b"mvex", b"udta"]
    assert b"suep" in types and b"loci" in types and b"uuid" in types
    init = read_init(data)
    assert (init.major_brand, init.minor_version, init.compatible_brands) == (
        b"isom",
        1,
        (b"isom", b"iso6"),
    )
    assert init.fragmented and init.fragment_duration == 2000
    assert init.creation_time == created and init.movie_timescale == 1000
    # 60 days at 90 kHz needs 64-bit durations (version 1 mdhd/tkhd/mvhd).
    assert init.movie_duration == 3600 * 24 * 60 * 1000
    v, a, m = init.tracks
    assert (v.handler, v.width, v.height, v.duration, v.name) == (
        b"vide",
        320,
        240,
        90000 * 3600 * 24 * 60,
        "cam",
    )
    assert (a.handler, a.language, a.duration, a.name) == (b"soun", "deu", 16000, "SoundHandler")
    assert (m.handler, m.codec, m.entry.namespace) == (
        b"meta",
        b"metx",
        "http://www.onvif.org/ver10/schema",
    )
    assert init.track(2) is a and v.entry == ENTRIES["vide"]
    with pytest.raises(KeyError):
        init.track(4)
    assert init.moov_end == len(data) - len(file_meta.encode())


def test_build_moov_tree_is_editable() -> None:
    spec = TrackSpec(5, 90000, ENTRIES["vide"])
    moov = build_moov([spec])
    trak = moov.find(b"trak")
    assert trak is not None
    trak.children.append(box(b"udta", box(b"name", b"x")))
    udta = Box(b"udta", children=[box(b"loci", b"y")])
    moov.children.append(udta)
    data = moov.encode()
    assert [h.type for h in walk(data) if h.type in (b"udta", b"name", b"loci")] == [
        b"udta",
        b"name",
        b"udta",
        b"loci",
    ]
    with pytest.raises(ValueError):
        build_moov([spec, spec])
    with pytest.raises(ValueError):
        build_moov([])


def test_helpers() -> None:
    assert unpack_language(pack_language("und")) == "und"
    with pytest.raises(ValueError):
        pack_language("EN")
    assert rescale(1, 90000, 1000) == 1 and rescale(90000, 90000, 1000) == 1000
    assert mp4_time(0) == 2_082_844_800


def test_reader_errors_on_damaged_files() -> None:
    spec = TrackSpec(1, 1000, ENTRIES["vide"])
    init = init_segment([spec])
    writer = FragmentWriter([spec], offset=len(init))
    writer.add_sample(1, b"0123456789", 40, key=True)
    data = init + writer.flush()
    with pytest.raises(Mp4Error, match="no 'moov'"):
        read_init(data[len(init) :])
    # Cut inside the mdat: the sample range no longer fits the file.
    with pytest.raises(Mp4Error, match="runs past the end of the file"):
        list(iter_samples(data[:-3]))
    # A moof whose traf names a track the moov does not have.
    other = FragmentWriter([TrackSpec(2, 1000, ENTRIES["vide"])])
    other.add_sample(2, b"x", 1, key=True)
    with pytest.raises(Mp4Error, match="track_ID 2 is not in moov"):
        list(iter_samples(init + other.flush()))
