"""NAL framing helpers, the bit reader, sprop values, and the payload-format factories."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.payload import (
    UnsupportedPayloadError,
    make_depacketizer,
    make_packetizer,
)
from nvr.protocol.payload.aac import AacDepacketizer, AacPacketizer
from nvr.protocol.payload.base import PayloadError, fmtp_params
from nvr.protocol.payload.g711 import G711Depacketizer, G711Packetizer
from nvr.protocol.payload.h264 import H264Depacketizer, H264Packetizer
from nvr.protocol.payload.h265 import H265Depacketizer, H265Packetizer
from nvr.protocol.payload.jpeg import JpegDepacketizer, JpegPacketizer
from nvr.protocol.payload.nal import (
    BitReader,
    ParameterSets,
    format_sprop,
    length_prefixed_to_nals,
    nals_to_annexb,
    nals_to_length_prefixed,
    parse_sprop,
    split_annexb,
    unescape_rbsp,
)
from nvr.protocol.payload.onvif_metadata import (
    OnvifMetadataDepacketizer,
    OnvifMetadataPacketizer,
)

nal_units = st.lists(
    st.binary(min_size=1, max_size=300).map(lambda b: bytes((b[0] & 0x7F or 1,)) + b[1:]),
    max_size=8,
)


@given(nal_units)
def test_length_prefixed_round_trip(nals: list[bytes]) -> None:
    assert length_prefixed_to_nals(nals_to_length_prefixed(nals)) == nals


@given(nal_units)
def test_annexb_round_trip(nals: list[bytes]) -> None:
    # Emulation prevention keeps start codes (and trailing zeros) out of real NAL units.
    clean = [n.replace(b"\x00", b"\x01") for n in nals]
    assert split_annexb(nals_to_annexb(clean)) == clean
    assert split_annexb(b"\x00\x00\x01" + b"\x00\x00\x01".join(clean)) == clean


def test_bad_framing_is_a_payload_error() -> None:
    for bad in (b"\x00\x00\x00", b"\x00\x00\x00\x05abc", b"\x00\x00\x00\x00"):
        with pytest.raises(PayloadError):
            length_prefixed_to_nals(bad)
    with pytest.raises(PayloadError):
        split_annexb(b"no start code")
    assert split_annexb(b"") == [] and split_annexb(b"\x00\x00") == []


def test_unescape_rbsp() -> None:
    assert (
        unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03")
        == b"\x00\x00\x01\x00\x00\x00\x00"
    )
    assert unescape_rbsp(b"\x00\x00\x03\x03") == b"\x00\x00\x03"


def _exp_golomb(values: list[int]) -> bytes:
    bits = "".join("0" * (len(bin(v + 1)) - 3) + bin(v + 1)[2:] for v in values)
    bits += "1" + "0" * (-(len(bits) + 1) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


@given(st.lists(st.integers(0, 2**31), min_size=1, max_size=20))
def test_exp_golomb(values: list[int]) -> None:
    r = BitReader(_exp_golomb(values))
    assert [r.ue() for _ in values] == values
    signed = BitReader(_exp_golomb([0, 1, 2, 3, 4]))
    assert [signed.se() for _ in range(5)] == [0, 1, -1, 2, -2]


def test_bit_reader_limits() -> None:
    r = BitReader(b"\xa5")
    assert (r.u(0), r.u(3), r.u(5), r.remaining) == (0, 5, 5, 0)
    with pytest.raises(PayloadError):
        r.u(1)
    with pytest.raises(PayloadError):
        BitReader(bytes(8)).ue()
    with pytest.raises(PayloadError):
        BitReader(b"\x01").skip(9)


def test_sprop_round_trip_and_errors() -> None:
    nals = [b"\x67\x42\x00\x1e", b"\x68\xce"]
    assert parse_sprop(format_sprop(nals)) == nals
    assert parse_sprop(" Z0IAHg , aM4 ") == nals  # spaces, missing padding
    assert parse_sprop("") == []
    assert parse_sprop("AA==") == [b"\x00"]
    for bad in ("!!!!", "gA=="):  # not base64; forbidden_zero_bit set
        with pytest.raises(PayloadError):
            parse_sprop(bad)


def test_parameter_sets_container() -> None:
    sets = ParameterSets(vps=(b"v",), sps=(b"s",), pps=(b"p1", b"p2"))
    assert sets.nals() == [b"v", b"s", b"p1", b"p2"] and sets and not ParameterSets()


@pytest.mark.parametrize(
    ("name", "rate", "fmtp", "dep", "pk"),
    [
        ("h264", 90000, None, H264Depacketizer, H264Packetizer),
        ("H265", 90000, {}, H265Depacketizer, H265Packetizer),
        ("hevc", 90000, {}, H265Depacketizer, H265Packetizer),
        ("Jpeg", 90000, None, JpegDepacketizer, JpegPacketizer),
        ("mpeg4-generic", 44100, {"config": "1210"}, AacDepacketizer, AacPacketizer),
        ("pcmu", 8000, None, G711Depacketizer, G711Packetizer),
        ("PCMA", 8000, None, G711Depacketizer, G711Packetizer),
        ("vnd.onvif.metadata", 90000, None, OnvifMetadataDepacketizer, OnvifMetadataPacketizer),
        (
            "VND.ONVIF.METADATA+gzip",
            90000,
            None,
            OnvifMetadataDepacketizer,
            OnvifMetadataPacketizer,
        ),
    ],
)
def test_factories(name: str, rate: int, fmtp: dict | None, dep: type, pk: type) -> None:
    d = make_depacketizer(name, rate, fmtp)
    p = make_packetizer(name, rate, fmtp, mtu=1200)
    assert isinstance(d, dep) and isinstance(p, pk)
    assert d.clock_rate == rate and p.clock_rate == rate and p.mtu == 1200
    assert p.encoding_name.upper() in (name.upper(), "H265")


def test_factories_refuse_unknown_encodings() -> None:
    for name in ("MP4V-ES", "G726-32", "vnd.onvif.metadata.exi.ext", ""):
        with pytest.raises(UnsupportedPayloadError):
            make_depacketizer(name, 90000)
        with pytest.raises(UnsupportedPayloadError):
            make_packetizer(name, 90000)


def test_fmtp_names_are_case_insensitive() -> None:
    assert fmtp_params({" SizeLength ": " 13 "}) == {"sizelength": "13"}
    dep = make_depacketizer("MPEG4-GENERIC", 16000, {"Mode": "AAC-hbr", "Config": "1408"})
    assert dep.frame_duration == 1024 and dep.config.sample_rate == 16000
