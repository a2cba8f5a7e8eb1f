"""sprop values, the parameter-set container, and the payload-format factories (the NAL
framing and bit reader are tested in test_codecs_annexb / test_codecs_bits)."""

from __future__ import annotations

import pytest

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
from nvr.protocol.payload.nal import ParameterSets, format_sprop, parse_sprop
from nvr.protocol.payload.onvif_metadata import (
    OnvifMetadataDepacketizer,
    OnvifMetadataPacketizer,
)


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
