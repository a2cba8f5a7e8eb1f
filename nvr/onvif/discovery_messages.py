"""WS-Discovery 2005/04 messages (SOAP 1.2 over UDP): reading Probe/Resolve, writing the rest.

Core §7: the device is a Target Service of types ``tds:Device`` and (for legacy clients)
``dn:NetworkVideoTransmitter``, identified by a stable ``urn:uuid:`` endpoint reference, with
its GetScopes list as Scopes and its device service URLs as XAddrs. Probe matching follows
WS-Discovery §5.1: every requested type must be one of ours (QNames compared by namespace),
every requested scope must match one of ours under the MatchBy rule — RFC 3986 (the default:
same scheme and authority, segment-wise path prefix) or strcmp0 (exact). Unknown rules match
nothing: we stay silent rather than answer a multicast probe with a fault.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from lxml import etree

from nvr.onvif.namespaces import SOAP12, TDS, WSA_2004, clark

DISCOVERY: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN: Final = "http://www.onvif.org/ver10/network/wsdl"
MULTICAST_TO: Final = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
RFC3986: Final = DISCOVERY + "/rfc3986"
STRCMP0: Final = DISCOVERY + "/strcmp0"
TYPES: Final = ((DN, "NetworkVideoTransmitter"), (TDS, "Device"))
"""Our types, as (namespace, local name)."""
_PREFIXES: Final = {"s": SOAP12, "a": WSA_2004, "d": DISCOVERY, "dn": DN, "tds": TDS}
MAX_DATAGRAM: Final = 65507


@dataclass(frozen=True, slots=True)
class Target:
    """What we announce: everything a ProbeMatch, ResolveMatch, Hello or Bye carries."""

    address: str
    """``urn:uuid:…`` endpoint reference."""
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]
    metadata_version: int


@dataclass(frozen=True, slots=True)
class Probe:
    message_id: str
    types: tuple[tuple[str, str], ...]
    """Requested types as (namespace, local name); unresolvable ones as ("", text)."""
    scopes: tuple[str, ...]
    match_by: str


@dataclass(frozen=True, slots=True)
class Resolve:
    message_id: str
    address: str


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _qnames(element: etree._Element | None) -> tuple[tuple[str, str], ...]:
    if element is None or not element.text:
        return ()
    names = []
    for text in element.text.split():
        prefix, _, local = text.rpartition(":")
        namespace = element.nsmap.get(prefix or None) or _PREFIXES.get(prefix, "")
        names.append((namespace, local) if namespace else ("", text))
    return tuple(names)


def parse(data: bytes) -> Probe | Resolve | None:
    """A Probe or Resolve addressed to target services; None for anything else."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag != clark(SOAP12, "Envelope"):
        return None
    message_id = root.findtext(f"{{{SOAP12}}}Header/{{{WSA_2004}}}MessageID")
    body = root.find(clark(SOAP12, "Body"))
    payload = None if body is None else next(body.iterchildren(tag=etree.Element), None)
    if payload is None or not message_id:
        return None
    if payload.tag == clark(DISCOVERY, "Probe"):
        scopes = payload.find(clark(DISCOVERY, "Scopes"))
        return Probe(
            message_id.strip(),
            _qnames(payload.find(clark(DISCOVERY, "Types"))),
            tuple((scopes.text or "").split()) if scopes is not None else (),
            (scopes.get("MatchBy") if scopes is not None else None) or RFC3986,
        )
    if payload.tag == clark(DISCOVERY, "Resolve"):
        address = payload.findtext(f"{{{WSA_2004}}}EndpointReference/{{{WSA_2004}}}Address")
        return Resolve(message_id.strip(), (address or "").strip())
    return None


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def scope_matches(wanted: str, scope: str, rule: str) -> bool:
    if rule == STRCMP0:
        return wanted == scope
    if rule != RFC3986:
        return False
    a, b = urlsplit(wanted), urlsplit(scope)
    if (a.scheme.lower(), a.netloc.lower()) != (b.scheme.lower(), b.netloc.lower()):
        return False
    want, have = _segments(a.path), _segments(b.path)
    return have[: len(want)] == want


def matches(probe: Probe, target: Target) -> bool:
    if any(t not in TYPES for t in probe.types):
        return False
    return all(
        any(scope_matches(wanted, scope, probe.match_by) for scope in target.scopes)
        for wanted in probe.scopes
    )


# --- writing ----------------------------------------------------------------------------------


def _envelope(
    action: str, to: str, sequence: tuple[int, int], relates_to: str | None = None
) -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(clark(SOAP12, "Envelope"), nsmap=_PREFIXES)
    header = etree.SubElement(envelope, clark(SOAP12, "Header"))
    etree.SubElement(header, clark(WSA_2004, "Action")).text = f"{DISCOVERY}/{action}"
    etree.SubElement(header, clark(WSA_2004, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, clark(WSA_2004, "RelatesTo")).text = relates_to
    etree.SubElement(header, clark(WSA_2004, "To")).text = to
    instance, number = sequence
    etree.SubElement(
        header,
        clark(DISCOVERY, "AppSequence"),
        InstanceId=str(instance),
        MessageNumber=str(number),
    )
    return envelope, etree.SubElement(envelope, clark(SOAP12, "Body"))


def _describe(parent: etree._Element, target: Target, *, full: bool = True) -> None:
    reference = etree.SubElement(parent, clark(WSA_2004, "EndpointReference"))
    etree.SubElement(reference, clark(WSA_2004, "Address")).text = target.address
    if full:
        etree.SubElement(parent, clark(DISCOVERY, "Types")).text = " ".join(
            f"{'dn' if ns == DN else 'tds'}:{local}" for ns, local in TYPES
        )
        etree.SubElement(parent, clark(DISCOVERY, "Scopes")).text = " ".join(target.scopes)
        etree.SubElement(parent, clark(DISCOVERY, "XAddrs")).text = " ".join(target.xaddrs)
    etree.SubElement(parent, clark(DISCOVERY, "MetadataVersion")).text = str(
        target.metadata_version
    )


def _bytes(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def hello(target: Target, sequence: tuple[int, int]) -> bytes:
    envelope, body = _envelope("Hello", MULTICAST_TO, sequence)
    _describe(etree.SubElement(body, clark(DISCOVERY, "Hello")), target)
    return _bytes(envelope)


def bye(target: Target, sequence: tuple[int, int]) -> bytes:
    envelope, body = _envelope("Bye", MULTICAST_TO, sequence)
    _describe(etree.SubElement(body, clark(DISCOVERY, "Bye")), target, full=False)
    return _bytes(envelope)


def probe_matches(target: Target, relates_to: str, sequence: tuple[int, int]) -> bytes:
    envelope, body = _envelope("ProbeMatches", ANONYMOUS, sequence, relates_to)
    matches_element = etree.SubElement(body, clark(DISCOVERY, "ProbeMatches"))
    _describe(etree.SubElement(matches_element, clark(DISCOVERY, "ProbeMatch")), target)
    return _bytes(envelope)


def resolve_matches(target: Target, relates_to: str, sequence: tuple[int, int]) -> bytes:
    envelope, body = _envelope("ResolveMatches", ANONYMOUS, sequence, relates_to)
    matches_element = etree.SubElement(body, clark(DISCOVERY, "ResolveMatches"))
    _describe(etree.SubElement(matches_element, clark(DISCOVERY, "ResolveMatch")), target)
    return _bytes(envelope)
