"""The ONVIF export boxes, ``sigC`` algorithm identifiers and the timeline mapping, in isolation."""

from __future__ import annotations

import pytest

from nvr.export.algorithms import DEFAULT, SignatureAlgorithm, UnsupportedAlgorithm, parse_sigc
from nvr.export.boxes import (
    BoxFormatError,
    Location,
    SourceEntry,
    StartTimes,
    SurveillanceExport,
    file_meta_box,
    filetime,
    parse_file_meta,
    signing_instance,
    unix_us_from_filetime,
)
from nvr.export.der import encode_oid, integer, null, sequence, tagged
from nvr.export.timeline import TrackTimeline, UnplannedSampleEntry
from nvr.store.types import Frame

SUEP = SurveillanceExport(
    "NVR 1",
    "http://nvr/onvif/device_service",
    "08-00-27-00-0C-15",
    3_832_844_800,
    "",
    (SourceEntry(1, "Cam", "http://cam", "080027000C15", "1"), SourceEntry(2)),
)


def test_filetime_epoch() -> None:
    assert filetime(0) == 116_444_736_000_000_000
    assert unix_us_from_filetime(filetime(1_750_000_001_234_567)) == 1_750_000_001_234_567


def test_suep_layout_and_round_trip() -> None:
    raw = SUEP.encode()
    assert raw[4:8] == b"suep" and raw[8] == 1  # FullBox version 1
    assert b"NVR 1\x00http://nvr/onvif/device_service\x0008-00-27-00-0C-15\x00" in raw
    assert SurveillanceExport.parse(raw[8:]) == SUEP
    empty = SurveillanceExport("", "", "", 0, "", ())
    assert empty.encode()[12:15] == b"\x00\x00\x00"  # "not applicable" = just the NUL
    with pytest.raises(BoxFormatError, match="suep"):
        SurveillanceExport.parse(raw[8:-3])


def test_cstb_and_loci_round_trip() -> None:
    cstb = StartTimes.from_unix_us([(1, 1_750_000_000_000_000), (2, 1_750_000_000_040_000)])
    raw = cstb.encode()
    assert raw[:8] == b"\x00\x00\x00\x24cstb" and StartTimes.parse(raw[8:]) == cstb
    assert cstb.unix_us(2) == 1_750_000_000_040_000 and cstb.unix_us(3) is None
    loc = Location.from_degrees("-33.856784", "151.215297", "12", name="Opera House")
    assert Location.parse(loc.encode()[8:]) == loc
    assert loc.degrees() == ("-33.85678", "151.21530", "12.00000")
    with pytest.raises(ValueError):
        Location.from_degrees("91", "0")


def test_meta_parse_finds_every_signing_instance() -> None:
    one = signing_instance(b"cert-1", 8, start_times=StartTimes(((1, 5),)))
    two = signing_instance(b"cert-2", 4, user_info="stamp", algorithm_der=DEFAULT.der())
    meta = parse_file_meta(file_meta_box(SUEP, [one.data, two.data]), 1000)
    assert meta.suep == SUEP and meta.protection_count == 1 and meta.offset == 1000
    first, second = meta.instances
    assert (first.certificate, first.signature, first.start_times) == (
        b"cert-1",
        bytes(8),
        StartTimes(((1, 5),)),
    )
    assert (second.user_info, second.algorithm_der) == ("stamp", DEFAULT.der())
    assert meta.data[first.signature_offset - 4 : first.signature_offset] == b"sibo"
    with pytest.raises(BoxFormatError, match="no signing instance"):
        parse_file_meta(file_meta_box(SUEP, []), 0)


def test_sigc_identifiers() -> None:
    assert parse_sigc(DEFAULT.der()) == DEFAULT
    for alg in (
        SignatureAlgorithm("pss", "SHA512", "SHA512", 64),
        SignatureAlgorithm("pkcs1", "SHA256"),
        SignatureAlgorithm("ecdsa", "SHA384"),
    ):
        assert parse_sigc(alg.der()) == alg
    # RSASSA-PSS with all parameters absent means the RFC 4055 defaults: SHA-1, salt 20
    bare = sequence(encode_oid("1.2.840.113549.1.1.10"), sequence())
    assert parse_sigc(bare) == SignatureAlgorithm("pss", "SHA1", "SHA1", 20)
    trailer2 = sequence(encode_oid("1.2.840.113549.1.1.10"), sequence(tagged(3, integer(2))))
    for bad, message in [
        (sequence(encode_oid("1.2.840.113549.1.1.5"), null()), "unsupported signature"),
        (trailer2, "trailer"),
        (b"\x30\x05\x06", "not a valid DER"),
    ]:
        with pytest.raises(UnsupportedAlgorithm, match=message):
            parse_sigc(bad)


def frame(
    time_us: int, duration: int, *, run: int = 1, seg: int = 1, entry: int = 7, rate: int = 90_000
) -> Frame:
    return Frame(b"x", time_us, duration, rate, True, entry, run, seg, 0, False, False)


def timeline(
    timescale: int, origin_us: int, index: dict[int, int]
) -> tuple[TrackTimeline, list[tuple[int, int, int]]]:
    out: list[tuple[int, int, int]] = []

    def sink(track_id: int, data: bytes, time: int, duration: int, key: bool, desc: int) -> None:
        out.append((time, duration, desc))

    return TrackTimeline(1, timescale, origin_us, index, sink), out


def test_timeline_keeps_durations_follows_slewed_segments_and_jumps_gaps() -> None:
    tl, out = timeline(90_000, 1_000_000, {7: 1, 8: 2})
    tl.push(frame(1_000_000, 3600))
    tl.push(frame(1_040_000, 3600))
    tl.push(frame(1_080_500, 3600, seg=2))  # next segment starts 500 us late (slew)
    tl.push(frame(1_120_500, 3600, seg=2, entry=8))
    tl.push(frame(3_000_000, 3600, run=2, seg=3))  # a gap
    tl.finish()
    assert out == [
        (0, 3600, 1),
        (3600, 3645, 1),  # stretched so the next sample lands on its stored time
        (7245, 3600, 1),
        (10845, 3600, 2),  # keeps its duration; the gap is a tfdt jump
        (180_000, 3600, 1),
    ]
    assert tl.samples == 5 and tl.end == 183_600
    with pytest.raises(UnplannedSampleEntry):
        tl.push(frame(4_000_000, 3600, entry=9))


def test_timeline_rescales_a_different_clock_exactly() -> None:
    tl, out = timeline(16_000, 0, {1: 1})
    for i in range(4):
        tl.push(frame(i * 21_333, 1024, rate=48_000, entry=1))
    tl.finish()
    durations = [d for _, d, _ in out]
    assert durations == [341, 341, 342, 341] and sum(durations) * 3 == 4 * 1024 - 1
