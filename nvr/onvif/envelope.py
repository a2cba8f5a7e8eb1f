"""First look at an incoming SOAP message, before authentication and dispatch.

The gate needs the SOAP version, the operation (the Body's first child) and the header blocks
to decide who may call what; it also refuses what no SOAP server should parse (DTDs, entity
tricks, oversized documents) so spyne only ever sees well-formed, entity-free envelopes. spyne
is handed the parsed document (:mod:`nvr.onvif.spyne_compat`), so each message is parsed once;
the parser drops what spyne's own would (comments, processing instructions).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Final

from lxml import etree

from nvr.onvif.faults import OnvifFault, SoapVersion
from nvr.onvif.namespaces import SOAP11, SOAP12, WSA, WSA_2004, WSSE, clark

_VERSIONS: Final = {SOAP12: SoapVersion.SOAP12, SOAP11: SoapVersion.SOAP11}
# Beyond libxml2's own limits (depth 256, 50 000-character names, no entities): ONVIF messages
# declare a dozen namespaces and carry a few attributes per element; thousands of either only
# make every later namespace lookup and attribute scan (spyne's, ours) slower.
MAX_NAMESPACE_DECLARATIONS: Final = 256
MAX_ATTRIBUTES: Final = 256
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
        remove_comments=True,
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    version: SoapVersion
    operation: str
    """Clark name of the Body's first child element (the wrapper element of the operation)."""
    headers: tuple[etree._Element, ...]
    document: etree._Element
    """The whole message (its root), which spyne deserializes."""

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


def _namespace_declarations(data: bytes) -> int:
    """How many namespace declarations ``data`` (already known well-formed) makes."""
    if data.count(b"xmlns") <= MAX_NAMESPACE_DECLARATIONS:  # cheap upper bound
        return 0
    events = etree.iterparse(
        BytesIO(data), events=("start-ns",), resolve_entities=False, no_network=True
    )
    return sum(1 for _ in events)


def _over_limits(root: etree._Element, data: bytes) -> str | None:
    if _namespace_declarations(data) > MAX_NAMESPACE_DECLARATIONS:
        return f"more than {MAX_NAMESPACE_DECLARATIONS} namespace declarations"
    if data.count(b"=") > MAX_ATTRIBUTES and any(  # the count: a cheap upper bound
        len(e.attrib) > MAX_ATTRIBUTES for e in root.iter(etree.Element)
    ):
        return f"more than {MAX_ATTRIBUTES} attributes on an element"
    return None


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
    excess = _over_limits(root, data)
    if excess is not None:
        raise EnvelopeError(
            OnvifFault.sender("WellFormed", f"Well-formed Error: {excess}"), _fault_version(data)
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
    return Envelope(version, payload.tag, headers, root)


class EnvelopeError(Exception):
    """The message cannot be processed; ``fault`` says why, in ``version``'s envelope."""

    def __init__(self, fault: OnvifFault, version: SoapVersion) -> None:
        super().__init__(str(fault))
        self.fault = fault
        self.version = version
