"""First look at an incoming SOAP message, before authentication and dispatch.

The gate needs the SOAP version, the operation (the Body's first child) and the header blocks
to decide who may call what; it also refuses what no SOAP server should parse (DTDs, entity
tricks, oversized documents) so spyne only ever sees well-formed, entity-free envelopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from nvr.onvif.faults import OnvifFault, SoapVersion
from nvr.onvif.namespaces import SOAP11, SOAP12, WSA, WSA_2004, WSSE, clark

_VERSIONS: Final = {SOAP12: SoapVersion.SOAP12, SOAP11: SoapVersion.SOAP11}
# Header namespaces whose blocks we process (so mustUnderstand="1" on them is fine).
UNDERSTOOD: Final = frozenset({WSSE, WSA, WSA_2004})
_ROLES_FOR_US: Final = frozenset(
    {
        "",
        "http://www.w3.org/2003/05/soap-envelope/role/next",
        "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
        "http://schemas.xmlsoap.org/soap/actor/next",
    }
)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    version: SoapVersion
    operation: str
    """Clark name of the Body's first child element (the wrapper element of the operation)."""
    headers: tuple[etree._Element, ...]

    def header(self, namespace: str, local: str) -> etree._Element | None:
        tag = clark(namespace, local)
        return next((h for h in self.headers if h.tag == tag), None)

    def not_understood(self) -> list[str]:
        """Header blocks addressed to us with mustUnderstand set that we do not process."""
        env = self.version.namespace
        missing = []
        for block in self.headers:
            flag = (block.get(clark(env, "mustUnderstand")) or "").strip()
            if flag not in ("1", "true"):
                continue
            role = block.get(clark(env, "role")) or block.get(clark(env, "actor")) or ""
            if role not in _ROLES_FOR_US:
                continue
            if etree.QName(block).namespace not in UNDERSTOOD:
                missing.append(block.tag)
        return missing


def _fault_version(data: bytes) -> SoapVersion:
    """Best guess for answering a message we could not parse: 1.1 only if it says so."""
    return SoapVersion.SOAP11 if SOAP11.encode() in data[:2048] else SoapVersion.SOAP12


def parse_envelope(data: bytes) -> Envelope:
    """Parse and check the envelope; raises :class:`EnvelopeError` with the fault to send."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise EnvelopeError(
            OnvifFault.sender("WellFormed", "Well-formed Error"), _fault_version(data)
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise EnvelopeError(
            OnvifFault.sender("WellFormed", "Well-formed Error: a DTD is not allowed"),
            _fault_version(data),
        )
    qname = etree.QName(root)
    version = _VERSIONS.get(qname.namespace or "")
    if version is None or qname.localname != "Envelope":
        raise EnvelopeError(
            OnvifFault("VersionMismatch", (), "SOAP version mismatch"), SoapVersion.SOAP12
        )
    env = version.namespace
    header = root.find(clark(env, "Header"))
    body = root.find(clark(env, "Body"))
    payload = None if body is None else next(body.iterchildren(tag=etree.Element), None)
    if payload is None:
        raise EnvelopeError(
            OnvifFault.sender("Tag", "No Tag: the Body holds no operation"), version
        )
    headers = () if header is None else tuple(header.iterchildren(tag=etree.Element))
    return Envelope(version, payload.tag, headers)


class EnvelopeError(Exception):
    """The message cannot be processed; ``fault`` says why, in ``version``'s envelope."""

    def __init__(self, fault: OnvifFault, version: SoapVersion) -> None:
        super().__init__(str(fault))
        self.fault = fault
        self.version = version
