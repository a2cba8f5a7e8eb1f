"""AAC (RFC 3640 mpeg4-generic): AU-header parsing, several AUs per packet, fragmented AUs,
the fmtp config, and real AAC from PyAV decoded after a round trip (AudioSpecificConfig
parsing itself is tested in test_codecs_aac)."""

from __future__ import annotations

import av
import pytest

from nvr.protocol.payload import make_depacketizer, make_packetizer
from nvr.protocol.payload.aac import (
    AacDepacketizer,
    AacPacketizer,
    parse_audio_specific_config,
    parse_config_hex,
)
from nvr.protocol.payload.base import PayloadError
from tests.protocol.test_payload_support import deliver, encode_aac, packetize_all

HBR = {"mode": "AAC-hbr", "sizeLength": "13", "indexLength": "3", "indexDeltaLength": "3"}


def hbr_packet(*frames: bytes, sizes: list[int] | None = None, index: int = 0) -> bytes:
    sizes = sizes or [len(f) for f in frames]
    headers = b"".join(
        ((size << 3) | (index if n == 0 else 0)).to_bytes(2, "big") for n, size in enumerate(sizes)
    )
    return (16 * len(sizes)).to_bytes(2, "big") + headers + b"".join(frames)


@pytest.mark.parametrize("bad", ["", "zz", "17", "1f90"])
def test_bad_config_is_a_payload_error(bad: str) -> None:
    with pytest.raises(PayloadError):
        parse_config_hex(bad)


def test_several_frames_in_one_packet_get_consecutive_timestamps() -> None:
    dep = make_depacketizer("MPEG4-GENERIC", 48000, {**HBR, "config": "1190"})
    frames = [b"a" * 10, b"b" * 300, b"c" * 7]
    out = dep.push(hbr_packet(*frames), True, 0xFFFFFC00, 1)
    assert [au.data for au in out] == frames
    assert [au.rtp_timestamp for au in out] == [0xFFFFFC00, 0, 1024]
    assert all(au.duration == 1024 and au.key for au in out)


def test_fragmented_frame_is_reassembled() -> None:
    dep = AacDepacketizer(HBR, 48000)
    frame = bytes(range(256)) * 10
    assert dep.push(hbr_packet(frame[:1000], sizes=[len(frame)]), False, 0, 1) == []
    assert dep.push(hbr_packet(frame[1000:2000], sizes=[len(frame)]), False, 0, 2) == []
    (au,) = dep.push(hbr_packet(frame[2000:], sizes=[len(frame)]), True, 0, 3)
    assert au.data == frame


def test_lost_fragment_drops_the_frame() -> None:
    dep = AacDepacketizer(HBR, 48000)
    frame = bytes(3000)
    dep.push(hbr_packet(frame[:1000], sizes=[3000]), False, 0, 1)
    assert dep.push(hbr_packet(frame[2000:], sizes=[3000]), True, 0, 3) == []
    (au,) = dep.push(hbr_packet(b"x"), True, 1024, 4)
    assert au.after_loss and au.data == b"x"
    # A fragment whose start was lost never becomes a frame either.
    assert dep.push(hbr_packet(frame[1000:2000], sizes=[3000]), False, 2048, 6) == []
    assert dep.push(hbr_packet(frame[2000:], sizes=[3000]), True, 2048, 7) == []
    (au,) = dep.push(hbr_packet(b"y"), True, 3072, 8)
    assert au.after_loss


def test_timestamp_change_inside_a_fragmented_frame_drops_it() -> None:
    dep = AacDepacketizer(HBR, 48000)
    dep.push(hbr_packet(bytes(100), sizes=[300]), False, 0, 1)
    (au,) = dep.push(hbr_packet(b"z"), True, 1024, 2)
    assert au.after_loss and dep.stats.malformed_packets == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00",  # truncated AU-headers-length
        b"\x00\x20\x00",  # headers longer than the packet
        hbr_packet(b"abc", sizes=[10]),  # frame larger than the packet, marker set
        hbr_packet(b"abc", b"def", sizes=[3, 10]),  # sizes exceed the data
        hbr_packet(b"abc", index=2),  # interleaving
        b"\x00\x0f\x00\x00",  # AU headers not a whole number of headers
    ],
)
def test_garbage_is_dropped_and_counted(payload: bytes) -> None:
    dep = AacDepacketizer(HBR, 48000)
    assert dep.push(payload, True, 0, 1) == []
    assert dep.stats.malformed_packets == 1
    (au,) = dep.push(hbr_packet(b"ok"), True, 1024, 2)
    assert au.after_loss


def test_lbr_generic_and_headerless_layouts() -> None:
    lbr = AacDepacketizer({"mode": "AAC-lbr"}, 16000)
    headers = (((5 << 2) << 8) | ((3 << 2) << 0)).to_bytes(2, "big")  # sizes 5 and 3, 8 bits each
    out = lbr.push(b"\x00\x10" + headers + b"aaaaabbb", True, 0, 1)
    assert [au.data for au in out] == [b"aaaaa", b"bbb"]
    constant = AacDepacketizer({"constantsize": "4", "constantduration": "160"}, 8000)
    out = constant.push(b"abcdefgh", True, 0, 1)
    assert [(au.data, au.rtp_timestamp, au.duration) for au in out] == [
        (b"abcd", 0, 160),
        (b"efgh", 160, 160),
    ]
    bare = AacDepacketizer({}, 8000)
    assert [au.data for au in bare.push(b"xyz", True, 0, 1)] == [b"xyz"]
    rap = AacDepacketizer({**HBR, "randomaccessindication": "1", "ctsdeltalength": "4"}, 8000)
    # 13-bit size 2, 3-bit index 0, CTS flag 0, RAP flag 1 = 18 bits.
    bits = (2 << 5) | 0b01
    out = rap.push((18).to_bytes(2, "big") + (bits << 6).to_bytes(3, "big") + b"hi", True, 0, 1)
    assert [au.data for au in out] == [b"hi"]
    # Only the first AU header has bits here: the rest would be empty, not endless.
    odd = AacDepacketizer({"indexlength": "3"}, 8000)
    assert odd.push(b"\x00\x10\x00\x00abc", True, 0, 1) == []
    assert odd.stats.malformed_packets == 1
    with pytest.raises(PayloadError):
        AacDepacketizer({"sizelength": "40"})
    with pytest.raises(PayloadError):
        AacDepacketizer({"sizelength": "thirteen"})


def test_packetizer_fragments_and_describes_itself() -> None:
    pk = AacPacketizer(bytes.fromhex("1190"), mtu=100)
    packets = pk.packetize(bytes(250))
    assert [p.marker for p in packets] == [False, False, True]
    assert all(len(p.payload) <= 100 and p.payload[:4] == b"\x00\x10\x07\xd0" for p in packets)
    assert pk.clock_rate == 48000 and pk.fmtp()["config"] == "1190"
    dep = make_depacketizer("mpeg4-generic", 48000, pk.fmtp())
    out = [au for n, p in enumerate(packets) for au in dep.push(p.payload, p.marker, 0, n)]
    assert [au.data for au in out] == [bytes(250)]
    with pytest.raises(PayloadError):
        pk.packetize(bytes(9000))
    with pytest.raises(PayloadError):
        make_packetizer("MPEG4-GENERIC", 48000, {})


def test_real_aac_round_trip_decodes_every_frame() -> None:
    config, frames = encode_aac(20)
    info = parse_audio_specific_config(config)
    assert (info.sample_rate, info.channels, info.object_type) == (48000, 2, 2)
    pk = make_packetizer("MPEG4-GENERIC", 48000, {"config": config.hex()}, mtu=200)
    packets = packetize_all(pk.packetize, frames, 1024)
    assert len(packets) > len(frames)  # some frames were fragmented
    out = deliver(make_depacketizer("MPEG4-GENERIC", 48000, pk.fmtp()), packets)
    assert [au.data for au in out] == frames
    ctx = av.CodecContext.create("aac", "r")
    ctx.extradata = config
    samples = 0
    for au in out:
        for frame in ctx.decode(av.Packet(au.data)):
            samples += frame.samples
    for frame in ctx.decode(None):
        samples += frame.samples
    assert samples >= 1024 * (len(frames) - 2)
