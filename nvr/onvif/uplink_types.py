"""spyne models of the Uplink service: ``tup:Capabilities`` and ``tup:Configuration``.

Names, order and occurrence follow uplink.wsdl (26.06); both types live in the ``tup:``
namespace, children included. The ``tt:StringList`` fields (UserLevel, Protocols,
AuthorizationModes) are strings here: spyne has no list simple type, and a space-separated
string has the same wire form. The ``xs:any`` extension slots stay empty.
"""

from __future__ import annotations

from spyne import AnyUri, Boolean, ComplexModel, Integer32, Unicode, XmlAttribute

from nvr.onvif.namespaces import TUP


class Capabilities(ComplexModel):
    """tup:Capabilities: only attributes."""

    __namespace__ = TUP
    MaxUplinks = XmlAttribute(Integer32)
    Protocols = XmlAttribute(Unicode)
    AuthorizationModes = XmlAttribute(Unicode)
    StreamingOverUplink = XmlAttribute(Boolean)


class Configuration(ComplexModel):
    __namespace__ = TUP
    RemoteAddress = AnyUri.customize(min_occurs=1)
    """Nillable only for spyne: it reads an empty element (valid xs:anyURI) as None."""
    CertificateID = Unicode
    UserLevel = Unicode.customize(min_occurs=1)
    """Nillable for the same reason: an empty list is refused by the service, not by spyne."""
    Status = Unicode
    CertPathValidationPolicyID = Unicode
    AuthorizationServer = Unicode
    Error = Unicode
