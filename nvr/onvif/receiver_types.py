"""spyne models of the Receiver service: ``trv:Capabilities`` and the ``tt:`` receiver types.

Names, order and occurrence follow receiver.wsdl and onvif.xsd (receiver.md §2, §5). The
``tt:StreamSetup`` is the Replay service's model: the same onvif.xsd type.
"""

from __future__ import annotations

from spyne import AnyUri, Boolean, ComplexModel, Integer32, Unicode, XmlAttribute

from nvr.onvif.namespaces import TRV, TT
from nvr.onvif.replay_types import StreamSetup
from nvr.onvif.types_tt import required, tt_enum

ReceiverMode = tt_enum("ReceiverMode", "AutoConnect", "AlwaysConnect", "NeverConnect", "Unknown")
ReceiverState = tt_enum("ReceiverState", "NotConnected", "Connecting", "Connected", "Unknown")


class Capabilities(ComplexModel):
    """trv:Capabilities: only attributes (the extension wildcard stays empty)."""

    __namespace__ = TRV
    RTP_Multicast = XmlAttribute(Boolean)
    RTP_TCP = XmlAttribute(Boolean)
    RTP_RTSP_TCP = XmlAttribute(Boolean)
    SupportedReceivers = XmlAttribute(Integer32, use="required")
    MaximumRTSPURILength = XmlAttribute(Integer32)


class ReceiverConfiguration(ComplexModel):
    __namespace__ = TT
    Mode = required(ReceiverMode)
    MediaUri = AnyUri.customize(min_occurs=1)
    """Nillable only for spyne: it reads an empty element (valid xs:anyURI) as None."""
    StreamSetup = required(StreamSetup)


class Receiver(ComplexModel):
    __namespace__ = TT
    Token = required(Unicode)
    Configuration = required(ReceiverConfiguration)


class ReceiverStateInformation(ComplexModel):
    __namespace__ = TT
    State = required(ReceiverState)
    AutoCreated = required(Boolean)
