"""RTP payload formats: depacketizers and packetizers, sans-IO.

The factories map an SDP ``a=rtpmap`` encoding name (case-insensitive), its clock rate and its
``a=fmtp`` parameters to an instance, so the RTSP client and server never name a codec class.
"""

from __future__ import annotations

from collections.abc import Mapping

from nvr.protocol.payload import h264, h265
from nvr.protocol.payload.aac import AacDepacketizer, AacPacketizer, parse_config_hex
from nvr.protocol.payload.base import (
    AccessUnit,
    Depacketizer,
    DepacketizerStats,
    Extension,
    HeaderExtension,
    Packetizer,
    PayloadError,
    PayloadPacket,
    UnsupportedPayloadError,
    fmtp_params,
)
from nvr.protocol.payload.g711 import G711Depacketizer, G711Packetizer
from nvr.protocol.payload.h264 import H264Depacketizer, H264Packetizer
from nvr.protocol.payload.h265 import H265Depacketizer, H265Packetizer
from nvr.protocol.payload.jpeg import JpegDepacketizer, JpegPacketizer
from nvr.protocol.payload.onvif_metadata import (
    OnvifMetadataDepacketizer,
    OnvifMetadataPacketizer,
)

__all__ = [
    "AccessUnit",
    "Depacketizer",
    "DepacketizerStats",
    "Extension",
    "HeaderExtension",
    "Packetizer",
    "PayloadError",
    "PayloadPacket",
    "UnsupportedPayloadError",
    "make_depacketizer",
    "make_packetizer",
]


def make_depacketizer(
    encoding: str, clock_rate: int, fmtp: Mapping[str, str] | None = None
) -> Depacketizer:
    """A depacketizer for one SDP media format; UnsupportedPayloadError if we have none."""
    name = encoding.strip().upper()
    if name == "H264":
        return H264Depacketizer(fmtp, clock_rate)
    if name in ("H265", "HEVC"):
        return H265Depacketizer(fmtp, clock_rate)
    if name == "JPEG":
        return JpegDepacketizer(clock_rate)
    if name == "MPEG4-GENERIC":
        return AacDepacketizer(fmtp, clock_rate)
    if name in ("PCMU", "PCMA"):
        return G711Depacketizer(clock_rate)
    if name == "VND.ONVIF.METADATA":
        return OnvifMetadataDepacketizer(clock_rate)
    if name == "VND.ONVIF.METADATA+GZIP":
        return OnvifMetadataDepacketizer(clock_rate, gzip=True)
    raise UnsupportedPayloadError(f"no depacketizer for RTP encoding {encoding!r}")


def make_packetizer(
    encoding: str,
    clock_rate: int,
    fmtp: Mapping[str, str] | None = None,
    mtu: int = 1400,
) -> Packetizer:
    """A packetizer for one stored track; ``fmtp`` carries what the store knows (sprop-*,
    config) in SDP form, so replay can pass the recorded camera's parameters through."""
    name = encoding.strip().upper()
    params = fmtp_params(fmtp)
    if name == "H264":
        return H264Packetizer(mtu, h264.sprop_parameter_sets(params))
    if name in ("H265", "HEVC"):
        return H265Packetizer(mtu, h265.sprop_parameter_sets(params))
    if name == "JPEG":
        return JpegPacketizer(mtu)
    if name == "MPEG4-GENERIC":
        if "config" not in params:
            raise PayloadError("MPEG4-GENERIC needs fmtp config")
        return AacPacketizer(parse_config_hex(params["config"]).raw, mtu, clock_rate)
    if name in ("PCMU", "PCMA"):
        return G711Packetizer(name, mtu, clock_rate)
    if name == "VND.ONVIF.METADATA":
        return OnvifMetadataPacketizer(mtu)
    if name == "VND.ONVIF.METADATA+GZIP":
        return OnvifMetadataPacketizer(mtu, gzip=True)
    raise UnsupportedPayloadError(f"no packetizer for RTP encoding {encoding!r}")
