"""H.264 (RFC 6184): hand-built packets for each aggregation/fragmentation case and each kind of
trouble, and real libx264 output decoded by PyAV after a round trip."""

from __future__ import annotations

import base64

import av
import pytest

from nvr.protocol.payload import make_depacketizer
from nvr.protocol.payload.base import PayloadError, UnsupportedPayloadError
from nvr.protocol.payload.h264 import (
    H264Depacketizer,
    H264Packetizer,
    is_key_unit,
    parameter_sets,
)
from nvr.protocol.payload.nal import (
    format_sprop,
    length_prefixed_to_nals,
    nals_to_length_prefixed,
)
from tests.protocol.test_payload_support import (
    decode_video,
    deliver,
    h26x_access_units,
    packetize_all,
)

SPS = base64.b64decode("Z2QAHqyyAUB7QgAAAwACAAADAGUeLFyQ")  # libx264, 640x480 High
PPS = base64.b64decode("aOvDyyLA")
IDR = b"\x65\x88" + bytes(range(200))
P_SLICE = b"\x41\x9a" + bytes(range(50))
P_SLICE2 = b"\x41\x1a" + bytes(range(60))  # second slice (first_mb_in_slice != 0)
AUD = b"\x09\xf0"


def stap_a(*nals: bytes) -> bytes:
    return b"\x78" + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def fu_a(nal: bytes, pieces: int) -> list[bytes]:
    body = nal[1:]
    step = -(-len(body) // pieces)
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    out = []
    for n, chunk in enumerate(chunks):
        fu = (nal[0] & 0x1F) | (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0)
        out.append(bytes(((nal[0] & 0xE0) | 28, fu)) + chunk)
    return out


def lp(*nals: bytes) -> bytes:
    return nals_to_length_prefixed(nals)


class Feeder:
    """Push hand-built packets with consecutive sequence numbers unless told otherwise."""

    def __init__(self, dep: object | None = None) -> None:
        self.dep = dep or H264Depacketizer({"packetization-mode": "1"})
        self.seq = 100

    def __call__(self, payload: bytes, ts: int, marker: bool = False, skip: int = 0) -> list:
        self.seq += 1 + skip
        return self.dep.push(payload, marker, ts, self.seq & 0xFFFF)


def test_stap_a_and_fu_a_make_one_key_unit_with_parameter_sets() -> None:
    feed = Feeder()
    assert feed(stap_a(SPS, PPS), 1000) == []
    fus = fu_a(IDR, 3)
    assert feed(fus[0], 1000) == []
    assert feed(fus[1], 1000) == []
    (au,) = feed(fus[2], 1000, marker=True)
    assert au.data == lp(SPS, PPS, IDR)
    assert au.key and au.parameters_changed and not au.after_loss
    assert au.rtp_timestamp == 1000 and au.duration is None
    assert feed.dep.parameter_sets.sps == (SPS,) and feed.dep.parameter_sets.pps == (PPS,)
    # The same parameter sets again are not a change.
    (au,) = feed(stap_a(SPS, PPS, IDR), 4000, marker=True)
    assert au.key and not au.parameters_changed


def test_sprop_parameter_sets_seed_the_stream_and_changes_are_flagged() -> None:
    dep = make_depacketizer("h264", 90000, {"sprop-parameter-sets": format_sprop([SPS, PPS])})
    feed = Feeder(dep)
    (au,) = feed(stap_a(SPS, PPS, IDR), 0, marker=True)
    assert not au.parameters_changed
    new_pps = b"\x68\xce\x38\x80"
    (au,) = feed(stap_a(new_pps, IDR), 3000, marker=True)
    assert au.parameters_changed
    assert dep.parameter_sets.pps == (new_pps,)


def test_bad_sprop_is_ignored_in_favour_of_in_band_sets() -> None:
    dep = H264Depacketizer({"sprop-parameter-sets": "!!!,###"})
    assert not dep.parameter_sets
    assert dep.stats.last_error


def test_timestamp_change_without_marker_ends_the_unit() -> None:
    feed = Feeder()
    assert feed(P_SLICE, 3000) == []  # marker forgotten
    (au,) = feed(P_SLICE, 6000)
    assert au.data == lp(P_SLICE) and au.rtp_timestamp == 3000 and not au.after_loss
    (au,) = feed(AUD, 9000)
    assert au.rtp_timestamp == 6000


def test_multi_slice_unit_with_marker_only_on_the_last_packet() -> None:
    feed = Feeder()
    assert feed(P_SLICE, 3000) == []
    (au,) = feed(P_SLICE2, 3000, marker=True)
    assert au.data == lp(P_SLICE, P_SLICE2) and not au.key


def test_lost_fragment_drops_the_unit_and_flags_the_next() -> None:
    feed = Feeder()
    fus = fu_a(IDR, 3)
    feed(P_SLICE, 0, marker=True)
    feed(fus[0], 1500)
    feed(fus[2], 1500, marker=True, skip=1)  # fus[1] lost
    (au,) = feed(P_SLICE, 3000, marker=True)
    assert au.after_loss and au.data == lp(P_SLICE)
    assert feed.dep.stats.lost_packets == 1 and feed.dep.stats.dropped_units == 1
    (au,) = feed(P_SLICE, 6000, marker=True)
    assert not au.after_loss


def test_loss_of_the_leading_packets_drops_the_rest_of_that_unit() -> None:
    feed = Feeder()
    assert len(feed(AUD + b"", 0, marker=False) + feed(P_SLICE, 0, marker=True)) == 1
    # Next unit: its AUD is lost; the slice after it must not pass for a whole unit.
    assert feed(P_SLICE, 3000, marker=True, skip=1) == []
    (au,) = feed(stap_a(AUD, P_SLICE), 6000, marker=True)
    assert au.after_loss and au.data == lp(AUD, P_SLICE)


def test_a_second_slice_after_a_gap_is_not_a_unit() -> None:
    feed = Feeder()
    feed(P_SLICE, 0, marker=True)
    assert feed(P_SLICE2, 3000, marker=True, skip=1) == []
    (au,) = feed(P_SLICE, 6000, marker=True)
    assert au.after_loss


def test_after_an_early_gap_only_a_sure_unit_start_resynchronises() -> None:
    """Before any unit got through, a slice after a gap may have lost its AUD or parameter
    sets; only an AUD or SPS is trusted then."""
    feed = Feeder()
    fus = fu_a(IDR, 3)
    feed(fus[0], 0)
    feed(fus[2], 0, marker=True, skip=1)
    assert feed(P_SLICE, 3000, marker=True) == []
    (au,) = feed(stap_a(SPS, PPS, IDR), 6000, marker=True)
    assert au.key and au.after_loss


def test_duplicates_are_ignored() -> None:
    dep = H264Depacketizer()
    fus = fu_a(IDR, 2)
    assert dep.push(fus[0], False, 0, 7) == []
    assert dep.push(fus[0], False, 0, 7) == []
    (au,) = dep.push(fus[1], True, 0, 8)
    assert au.data == lp(IDR) and dep.stats.duplicate_packets == 1


def test_sequence_number_wraps() -> None:
    dep = H264Depacketizer()
    fus = fu_a(IDR, 2)
    assert dep.push(fus[0], False, 0, 65535) == []
    (au,) = dep.push(fus[1], True, 0, 0)
    assert au.data == lp(IDR) and not au.after_loss


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x80\x00",  # forbidden bit
        b"\x00abc",  # NAL type 0
        b"\x1f\x00",  # type 31
        b"\x19\x00\x01\x02",  # STAP-B (interleaved mode only)
        b"\x78\x00\x09\x65",  # STAP-A size overruns
        b"\x78\x00",  # STAP-A truncated size
        b"\x7c",  # FU-A without FU header
        b"\x7c\x05",  # FU-A continuation without start
    ],
)
def test_garbage_drops_the_unit_and_flags_the_next(garbage: bytes) -> None:
    feed = Feeder()
    feed(P_SLICE, 0, marker=True)
    assert feed(P_SLICE, 3000) == []
    assert feed(garbage, 3000, marker=True) == []
    assert feed.dep.stats.malformed_packets == 1 and feed.dep.stats.last_error
    (au,) = feed(P_SLICE, 6000, marker=True)
    assert au.after_loss and au.data == lp(P_SLICE)


def test_fu_start_inside_unfinished_fu_and_unit_ending_inside_fu() -> None:
    feed = Feeder()
    fus = fu_a(IDR, 3)
    feed(P_SLICE, 0, marker=True)
    feed(fus[0], 3000)
    assert feed(fus[0], 3000) == []  # a second start: malformed
    assert feed.dep.stats.malformed_packets == 1
    assert len(feed(P_SLICE, 6000, marker=True)) == 1
    feed(fus[0], 9000)
    assert feed(fus[1], 9000, marker=True) == []  # marker before the FU ended
    assert feed.dep.stats.malformed_packets == 2


def test_empty_payloads_are_ignored_but_a_marker_on_one_ends_the_unit() -> None:
    feed = Feeder()
    assert feed(b"", 0) == []
    feed(P_SLICE, 3000)
    (au,) = feed(b"", 3000, marker=True)
    assert au.data == lp(P_SLICE) and feed.dep.stats.malformed_packets == 0


def test_flush_drops_an_unterminated_unit() -> None:
    feed = Feeder()
    feed(P_SLICE, 0)
    assert feed.dep.flush() == []
    assert feed.dep.stats.dropped_units == 1


def test_stream_starting_mid_unit_is_skipped_without_loss_flag() -> None:
    feed = Feeder()
    assert feed(fu_a(IDR, 3)[1], 0) == []
    assert feed(fu_a(IDR, 3)[2], 0, marker=True) == []
    (au,) = feed(P_SLICE, 3000, marker=True)
    assert not au.after_loss


def test_packetization_mode_2_is_refused() -> None:
    with pytest.raises(UnsupportedPayloadError):
        H264Depacketizer({"packetization-mode": "2"})
    with pytest.raises(PayloadError):
        H264Depacketizer({"packetization-mode": "x"})


def test_packetizer_aggregates_fragments_and_repeats_parameter_sets() -> None:
    pk = H264Packetizer(mtu=100, parameter_sets=[SPS, PPS])
    packets = pk.packetize(lp(IDR))
    assert packets[0].payload[0] & 0x1F == 24  # SPS+PPS in a STAP-A
    assert all(p.payload[0] & 0x1F == 28 for p in packets[1:])
    assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
    assert all(len(p.payload) <= 100 for p in packets)
    dep = H264Depacketizer()
    out = [au for n, p in enumerate(packets) for au in dep.push(p.payload, p.marker, 0, n)]
    assert out[0].data == lp(SPS, PPS, IDR)
    # Not for predicted frames, and not when the unit brings its own.
    assert len(pk.packetize(lp(P_SLICE))) == 1
    assert pk.packetize(lp(SPS, PPS, IDR))[0].payload == stap_a(SPS, PPS)
    assert H264Packetizer(repeat_parameter_sets=False, parameter_sets=[SPS]).packetize(lp(IDR)) == [
        (IDR, True, None, 0)
    ]


def test_packetizer_fmtp() -> None:
    pk = H264Packetizer(parameter_sets=[SPS, PPS])
    fmtp = pk.fmtp()
    assert fmtp["packetization-mode"] == "1"
    assert fmtp["profile-level-id"] == "64001e"
    dep = make_depacketizer("H264", 90000, fmtp)
    assert dep.parameter_sets.nals() == [SPS, PPS]


def test_packetizer_rejects_bad_units() -> None:
    pk = H264Packetizer()
    for bad in (b"", b"\x00\x00\x00\x05ab", b"\x00\x00\x00\x01\x80"):
        with pytest.raises(PayloadError):
            pk.packetize(bad)
    with pytest.raises(ValueError):
        H264Packetizer(mtu=2)


def test_fragmented_sps_is_tracked() -> None:
    pk = H264Packetizer(mtu=12)
    packets = pk.packetize(lp(SPS, PPS, IDR))
    dep = H264Depacketizer()
    out = [au for n, p in enumerate(packets) for au in dep.push(p.payload, p.marker, 0, n)]
    assert out[0].data == lp(SPS, PPS, IDR) and out[0].parameters_changed
    assert dep.parameter_sets.sps == (SPS,)


@pytest.mark.parametrize("mtu", [1400, 300])
def test_real_h264_round_trip_decodes_every_frame(mtu: int) -> None:
    if "libx264" not in av.codecs_available:
        pytest.skip("libx264 not in PyAV")
    units = h26x_access_units("libx264", 640, 480, 12)
    packets = packetize_all(H264Packetizer(mtu).packetize, units, 3600)
    assert max(len(p.payload) for p in packets) <= mtu
    out = deliver(H264Depacketizer({"packetization-mode": "1"}), packets)
    assert [au.data for au in out] == units
    assert [au.key for au in out] == [
        any(n[0] & 0x1F == 5 for n in length_prefixed_to_nals(u)) for u in units
    ]
    assert any(not au.key for au in out)
    decoded = decode_video("h264", [au.data for au in out], length_prefixed=True)
    assert len(decoded) == len(units)
    assert decoded == decode_video("h264", units, length_prefixed=True)
    assert decoded[0][:2] == (640, 480)


def test_stored_unit_helpers() -> None:
    new_sps = SPS[:-1] + b"\x91"
    assert is_key_unit(lp(SPS, PPS, IDR)) and not is_key_unit(lp(P_SLICE))
    sets = parameter_sets([SPS, PPS, IDR, new_sps])
    assert sets.sps == (new_sps,) and sets.pps == (PPS,) and sets.vps == ()
