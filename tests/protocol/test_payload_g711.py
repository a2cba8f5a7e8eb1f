"""G.711 (RFC 3551): the payload is the frame, its length the duration; PyAV decodes it."""

from __future__ import annotations

import av
import pytest

from nvr.protocol.payload import make_depacketizer, make_packetizer
from tests.protocol.test_payload_support import deliver, packetize_all


def test_each_packet_is_a_frame_lasting_its_length() -> None:
    dep = make_depacketizer("PCMA", 8000)
    (au,) = dep.push(b"\xd5" * 160, False, 1000, 1)
    assert (au.data, au.rtp_timestamp, au.duration, au.key) == (b"\xd5" * 160, 1000, 160, True)
    assert dep.push(b"", False, 1160, 2) == []  # empty payloads carry nothing
    (au,) = dep.push(b"\xd5" * 80, True, 1320, 5)
    assert au.after_loss and dep.stats.lost_packets == 2
    assert dep.flush() == []


def test_packetizer_splits_long_frames_with_advancing_timestamps() -> None:
    pk = make_packetizer("pcmu", 8000, mtu=160)
    packets = pk.packetize(bytes(range(256)) * 2)
    assert [(len(p.payload), p.ts_offset) for p in packets] == [(160, 0), (160, 160), (160, 320),
                                                                  (32, 480)]  # fmt: skip
    assert pk.encoding_name == "PCMU" and pk.fmtp() == {}
    out = deliver(make_depacketizer("PCMU", 8000), packetize_all(pk.packetize, [bytes(512)], 512))
    assert b"".join(au.data for au in out) == bytes(512)
    assert [au.rtp_timestamp for au in out] == [0, 160, 320, 480]


@pytest.mark.parametrize(("encoding", "decoder"), [("PCMU", "pcm_mulaw"), ("PCMA", "pcm_alaw")])
def test_pyav_decodes_the_frames(encoding: str, decoder: str) -> None:
    samples = bytes((n * 7) & 0xFF for n in range(800))
    pk = make_packetizer(encoding, 8000, mtu=160)
    out = deliver(make_depacketizer(encoding, 8000), packetize_all(pk.packetize, [samples], 800))
    ctx = av.CodecContext.create(decoder, "r")
    ctx.sample_rate = 8000
    ctx.layout = "mono"
    decoded = sum(f.samples for au in out for f in ctx.decode(av.Packet(au.data)))
    assert decoded == len(samples)
