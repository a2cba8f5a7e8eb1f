"""The MP4 fuzz entry point over random bytes and over mutations of valid files."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.protocol.mp4 import (
    FragmentWriter,
    TrackSpec,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    init_segment,
    metx_entry,
    walk,
)
from tests.fuzz import fuzz_mp4
from tests.fuzz.harness import mutated

# Parameter sets from a 160x120 libx264 / libx265 stream, to make sample entries realistic.
H264_SPS = bytes.fromhex("6764000bacd94284 7e58400000030040 00000c83c50a6580".replace(" ", ""))
H264_PPS = bytes.fromhex("68ebe3cb22c0")


def _hevc_params() -> tuple[bytes, bytes, bytes]:
    vps = bytes.fromhex("40010c01ffff01600000030090000003000003001e959809")
    sps = bytes.fromhex(
        "42010101600000030090000003000003001ea014207965959a4932b9a02000000300200000030321"
    )
    pps = bytes.fromhex("4401c172b46240")
    return vps, sps, pps


@cache
def valid_file() -> bytes:
    """A small file with every kind of track, several fragments and an mfra."""
    vps, sps, pps = _hevc_params()
    specs = [
        TrackSpec(1, 90000, avc_entry([H264_SPS], [H264_PPS])),
        TrackSpec(2, 16000, aac_entry(b"\x14\x08")),
        TrackSpec(3, 8000, g711_entry("ulaw")),
        TrackSpec(4, 1000, metx_entry()),
        TrackSpec(5, 90000, hevc_entry([vps], [sps], [pps])),
    ]
    init = init_segment(specs, fragment_duration=1000)
    writer = FragmentWriter(specs, offset=len(init))
    out = [init]
    for frag in range(3):
        for i in range(4):
            writer.add_sample(1, bytes([i]) * 7, 3600, key=i == 0, composition_offset=3600 * i)
            writer.add_sample(5, bytes([i]) * 5, 3600, key=i == 0)
        writer.add_sample(2, b"aac" * 3, 1024, key=True)
        writer.add_sample(3, b"\xff" * 16, 16, key=True)
        writer.add_sample(4, b"<x/>", 500, key=True, decode_time=frag * 1000)
        out.append(writer.flush())
    out.append(writer.mfra())
    return b"".join(out)


def test_valid_file_is_parsed_fully() -> None:
    from nvr.protocol.mp4 import iter_samples, read_init, read_mfra

    data = valid_file()
    init = read_init(data)
    assert [t.codec for t in init.tracks] == [b"avc1", b"mp4a", b"ulaw", b"metx", b"hvc1"]
    assert init.track(5).entry.width == 160 and init.track(5).entry.height == 120
    assert sum(1 for _ in iter_samples(data)) == 3 * (4 + 4 + 3)
    assert read_mfra(data) is not None
    fuzz_mp4.fuzz_one_input(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    fuzz_mp4.fuzz_one_input(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_valid_file(data: st.DataObject) -> None:
    fuzz_mp4.fuzz_one_input(data.draw(mutated([valid_file()])))


def test_fuzz_every_box_size_and_boundary() -> None:
    """Deterministic sweep over the real structure: every box's size field set to lying
    values, and the file cut just before, at and after every box boundary."""
    data = valid_file()
    fuzz = fuzz_mp4.fuzz_one_input
    hdrs = list(walk(data))
    for hdr in hdrs:
        for size in (0, 1, 7, hdr.size - 1, hdr.size + 1, 0xFFFFFFFF):
            fuzz(data[: hdr.offset] + size.to_bytes(4, "big") + data[hdr.offset + 4 :])
        for cut in (hdr.offset + 4, hdr.payload_offset, hdr.end - 1):
            fuzz(data[:cut])
