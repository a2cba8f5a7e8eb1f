"""H.265 (RFC 7798): AP/FU handling, DONL fields, IRAP detection, and real libx265
output decoded by PyAV after a round trip."""

from __future__ import annotations

import av
import pytest

from nvr.protocol.payload import make_depacketizer
from nvr.protocol.payload.base import PayloadError
from nvr.protocol.payload.h265 import (
    H265Depacketizer,
    H265Packetizer,
    is_key_nal,
    is_key_unit,
    parameter_sets,
    sprop_parameter_sets,
)
from nvr.protocol.payload.nal import format_sprop, nals_to_length_prefixed
from tests.protocol.test_payload_support import (
    decode_video,
    deliver,
    h26x_access_units,
    packetize_all,
)


def nal(t: int, body: bytes, tid: int = 1) -> bytes:
    return bytes((t << 1, tid)) + body


VPS = nal(32, b"\x0c\x01\xff\xff\x01\x60\x00\x00\x03\x00\x90")
SPS = nal(33, b"\x01\x01\x60\x00\x00\x03\x00\x90\x00\x00\x03\x00\x00\x03\x00\x5a\xa0\x05\x02")
PPS = nal(34, b"\xc1\x72\xb4\x62\x40")
IDR = nal(19, b"\xaf" + bytes(300))  # IDR_W_RADL, first_slice_segment_in_pic_flag = 1
CRA = nal(21, b"\x80" + bytes(40))
TRAIL = nal(1, b"\x80" + bytes(40))
AUD = nal(35, b"\x50")


def ap(*nals: bytes, don: bool = False) -> bytes:
    out = bytearray(nal(48, b"")[:2])
    for n, unit in enumerate(nals):
        if don:
            out += b"\x00\x07" if n == 0 else b"\x01"
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out)


def fu(unit: bytes, pieces: int, don: bool = False) -> list[bytes]:
    body = unit[2:]
    step = -(-len(body) // pieces)
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    t = (unit[0] >> 1) & 0x3F
    out = []
    for n, chunk in enumerate(chunks):
        header = t | (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0)
        donl = b"\x00\x09" if don and n == 0 else b""
        out.append(bytes(((unit[0] & 0x81) | (49 << 1), unit[1], header)) + donl + chunk)
    return out


def lp(*nals: bytes) -> bytes:
    return nals_to_length_prefixed(nals)


def push_all(dep: H265Depacketizer, payloads: list[bytes], ts: int = 0, seq: int = 0) -> list:
    out = []
    for n, payload in enumerate(payloads):
        out += dep.push(payload, n == len(payloads) - 1, ts, seq + n)
    return out


def test_aggregation_and_fragmentation_give_one_irap_unit() -> None:
    dep = H265Depacketizer()
    (au,) = push_all(dep, [ap(VPS, SPS, PPS), *fu(IDR, 3)])
    assert au.data == lp(VPS, SPS, PPS, IDR)
    assert au.key and au.parameters_changed
    assert dep.parameter_sets.vps == (VPS,) and dep.parameter_sets.pps == (PPS,)


@pytest.mark.parametrize(("unit", "key"), [(IDR, True), (CRA, True), (TRAIL, False)])
def test_key_frames_are_irap_pictures(unit: bytes, key: bool) -> None:
    (au,) = push_all(H265Depacketizer(), [unit])
    assert au.key is key and is_key_nal(unit) is key


def test_donl_fields_are_skipped_when_max_don_diff_is_set() -> None:
    dep = make_depacketizer("h265", 90000, {"sprop-max-don-diff": "2"})
    single = TRAIL[:2] + b"\x00\x05" + TRAIL[2:]
    (au,) = push_all(dep, [ap(VPS, SPS, PPS, don=True), *fu(IDR, 2, don=True), single])
    assert au.data == lp(VPS, SPS, PPS, IDR, TRAIL)


def test_sprop_values_seed_the_parameter_sets() -> None:
    fmtp = {
        "sprop-vps": format_sprop([VPS]),
        "Sprop-SPS": format_sprop([SPS]),
        "sprop-pps": format_sprop([PPS]),
    }
    dep = make_depacketizer("H265", 90000, fmtp)
    assert dep.parameter_sets.nals() == [VPS, SPS, PPS]
    (au,) = push_all(dep, [ap(VPS, SPS, PPS), IDR])
    assert not au.parameters_changed
    assert sprop_parameter_sets({"sprop-sps": format_sprop([SPS])}) == [SPS]


def test_paci_and_reserved_types_are_malformed() -> None:
    dep = H265Depacketizer()
    seq = 0
    for n, t in enumerate((50, 60)):
        (au,) = dep.push(TRAIL, True, 6000 * n, seq)
        assert au.after_loss is (n > 0)
        assert dep.push(nal(t, b"\x00\x00"), True, 6000 * n + 3000, seq + 1) == []
        seq += 2
    assert dep.stats.malformed_packets == 2


def test_lost_middle_fragment_drops_the_unit() -> None:
    dep = H265Depacketizer()
    push_all(dep, [TRAIL], ts=0, seq=0)
    pieces = fu(IDR, 3)
    assert dep.push(pieces[0], False, 3000, 1) == []
    assert dep.push(pieces[2], True, 3000, 3) == []
    (au,) = dep.push(TRAIL, True, 6000, 4)
    assert au.after_loss and dep.stats.dropped_units == 1


def test_packetizer_aggregates_with_layer_and_tid() -> None:
    pk = H265Packetizer(mtu=200, parameter_sets=[VPS, SPS, PPS])
    packets = pk.packetize(lp(IDR))
    assert (packets[0].payload[0] >> 1) & 0x3F == 48 and packets[0].payload[1] == 1
    assert all((p.payload[0] >> 1) & 0x3F == 49 for p in packets[1:])
    assert packets[1].payload[2] == 0x80 | 19 and packets[-1].payload[2] == 0x40 | 19
    dep = H265Depacketizer()
    out = [au for n, p in enumerate(packets) for au in dep.push(p.payload, p.marker, 0, n)]
    assert out[0].data == lp(VPS, SPS, PPS, IDR)
    fmtp = pk.fmtp()
    assert make_depacketizer("H265", 90000, fmtp).parameter_sets.nals() == [VPS, SPS, PPS]
    with pytest.raises(PayloadError):
        pk.packetize(lp(b"\x40"))  # shorter than the 2-byte header


@pytest.mark.parametrize("mtu", [1400, 250])
def test_real_h265_round_trip_decodes_every_frame(mtu: int) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("libx265 not in PyAV")
    units = h26x_access_units("libx265", 640, 480, 12)
    packets = packetize_all(H265Packetizer(mtu).packetize, units, 3600)
    assert max(len(p.payload) for p in packets) <= mtu
    out = deliver(H265Depacketizer(), packets)
    assert [au.data for au in out] == units
    assert out[0].key and any(not au.key for au in out)
    decoded = decode_video("hevc", [au.data for au in out], length_prefixed=True)
    assert len(decoded) == len(units)
    assert decoded == decode_video("hevc", units, length_prefixed=True)


def test_stored_unit_helpers() -> None:
    assert is_key_unit(lp(VPS, SPS, PPS, CRA)) and not is_key_unit(lp(TRAIL))
    assert parameter_sets([VPS, SPS, PPS, IDR]).nals() == [VPS, SPS, PPS]
