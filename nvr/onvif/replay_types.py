"""spyne models of the Replay service: ``trp:Capabilities`` and the ``tt:`` types it exchanges.

Names, order and occurrence follow replay.wsdl and onvif.xsd. ``SessionTimeoutRange`` is a
``tt:FloatList`` ("min max"); spyne has no list simple type, and a string has the same wire
form. The deprecated nested ``Tunnel`` of ``tt:Transport`` is read as raw XML (and refused).
"""

from __future__ import annotations

from spyne import AnyUri, AnyXml, Boolean, ComplexModel, Duration, Unicode, XmlAttribute

from nvr.onvif.namespaces import TRP, TT
from nvr.onvif.types_tt import required, tt_enum

StreamType = tt_enum("StreamType", "RTP-Unicast", "RTP-Multicast")
TransportProtocol = tt_enum("TransportProtocol", "UDP", "TCP", "RTSP", "HTTP")


class Capabilities(ComplexModel):
    """trp:Capabilities: only attributes (the extension wildcard stays empty)."""

    __namespace__ = TRP
    ReversePlayback = XmlAttribute(Boolean)
    SessionTimeoutRange = XmlAttribute(Unicode)
    RTP_RTSP_TCP = XmlAttribute(Boolean)
    RTSPWebSocketUri = XmlAttribute(AnyUri)


class Transport(ComplexModel):
    __namespace__ = TT
    Protocol = required(TransportProtocol)
    Tunnel = AnyXml


class StreamSetup(ComplexModel):
    __namespace__ = TT
    Stream = required(StreamType)
    Transport = required(Transport)


class ReplayConfiguration(ComplexModel):
    __namespace__ = TT
    SessionTimeout = required(Duration)
