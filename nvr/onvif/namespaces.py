"""XML namespaces of the ONVIF services, and the prefixes spyne should use for them.

spyne names namespaces it does not know ``tns``, ``s0``, ``s1``…; the customary ONVIF prefixes
make responses and the published WSDL readable (``tt:``, ``tds:``) without changing meaning.
"""

from __future__ import annotations

from typing import Any, Final

SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
XML: Final = "http://www.w3.org/XML/1998/namespace"

TT: Final = "http://www.onvif.org/ver10/schema"
TER: Final = "http://www.onvif.org/ver10/error"
TDS: Final = "http://www.onvif.org/ver10/device/wsdl"
TEV: Final = "http://www.onvif.org/ver10/events/wsdl"
TRC: Final = "http://www.onvif.org/ver10/recording/wsdl"
TSE: Final = "http://www.onvif.org/ver10/search/wsdl"
TRP: Final = "http://www.onvif.org/ver10/replay/wsdl"
TRV: Final = "http://www.onvif.org/ver10/receiver/wsdl"
TUP: Final = "http://www.onvif.org/ver10/uplink/wsdl"

WSA: Final = "http://www.w3.org/2005/08/addressing"
WSA_2004: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSNT: Final = "http://docs.oasis-open.org/wsn/b-2"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

PREFIXES: Final = {
    "tt": TT,
    "ter": TER,
    "tds": TDS,
    "tev": TEV,
    "trc": TRC,
    "tse": TSE,
    "trp": TRP,
    "trv": TRV,
    "tup": TUP,
    "wsnt": WSNT,
}


def apply_onvif_prefixes(interface: Any) -> None:
    """Rename the prefixes a spyne interface invented (``tns``, ``s0``…) to the ONVIF ones.

    Done per interface after it is built: registering them in spyne's global prefix table
    instead would make spyne treat the namespaces as built-in and leave them out of its schema.
    """
    used = {cls.get_namespace() for cls in interface.classes.values()}
    for prefix, uri in PREFIXES.items():
        old = interface.prefmap.get(uri)
        if old == prefix or (old is None and uri not in used):
            continue
        if interface.nsmap.get(prefix, uri) != uri:
            continue
        if old is not None:
            del interface.nsmap[old]
        interface.nsmap[prefix] = uri
        interface.prefmap[uri] = prefix


def clark(namespace: str, local: str) -> str:
    """``{namespace}local``: how lxml and spyne spell a qualified name."""
    return f"{{{namespace}}}{local}"
