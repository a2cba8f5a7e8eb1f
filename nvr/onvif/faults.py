"""ONVIF SOAP faults (Core §5.11): one exception type and one XML builder for both SOAP versions.

ONVIF faults are a SOAP 1.2 ``Code/Value`` (``env:Sender``, ``env:Receiver``…) followed by a
chain of nested ``Subcode/Value`` QNames in the ``ter:`` namespace, e.g.
``env:Sender / ter:InvalidArgVal / ter:NoRecording``. spyne's own SOAP 1.2 fault writer emits
unprefixed subcodes and no ``ter`` declaration, so every fault — raised by a handler, by spyne
itself (bad XML, unknown method, validation) or by the request gate (authentication) — is
rendered here instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Final

from lxml import etree
from spyne.model.fault import Fault

from nvr.onvif.namespaces import SOAP11, SOAP12, TER, WSA, XML, clark

WSA_FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"


class SoapVersion(IntEnum):
    SOAP11 = 11
    SOAP12 = 12

    @property
    def namespace(self) -> str:
        return SOAP12 if self is SoapVersion.SOAP12 else SOAP11

    @property
    def content_type(self) -> str:
        if self is SoapVersion.SOAP12:
            return "application/soap+xml; charset=utf-8"
        return "text/xml; charset=utf-8"


# SOAP 1.1 spells the two common codes differently.
_SOAP11_CODES: Final = {"Sender": "Client", "Receiver": "Server"}


class OnvifFault(Fault):
    """A SOAP fault with the ONVIF subcode chain; raise it from any handler.

    ``subcodes`` are local names in the ``ter:`` namespace, or ``{namespace}local`` for
    others (e.g. WS-BaseNotification faults). ``detail`` is an optional element placed in
    ``env:Detail``; ``action`` adds a ``wsa:Action`` header (event-service faults).
    """

    def __init__(
        self,
        code: str,
        subcodes: Sequence[str],
        reason: str,
        *,
        detail: etree._Element | None = None,
        action: str | None = None,
        status: int | None = None,
    ) -> None:
        names = [s.rpartition("}")[2] for s in subcodes]
        spyne_code = ".".join([_SOAP11_CODES.get(code, code), *names])
        super().__init__(spyne_code, reason)
        self.code = code
        self.subcodes = tuple(subcodes)
        self.reason = reason
        self.fault_detail = detail
        self.action = action
        self._status = status

    @classmethod
    def sender(cls, *parts: str, **kwargs: object) -> OnvifFault:
        """``OnvifFault.sender("InvalidArgVal", "NoRecording", "no recording 'X'")``."""
        return cls("Sender", parts[:-1], parts[-1], **kwargs)  # type: ignore[arg-type]

    @classmethod
    def receiver(cls, *parts: str, **kwargs: object) -> OnvifFault:
        """``OnvifFault.receiver("ActionNotSupported", "GetFoo is not supported")``."""
        return cls("Receiver", parts[:-1], parts[-1], **kwargs)  # type: ignore[arg-type]

    @property
    def http_status(self) -> int:
        """SOAP 1.2 HTTP binding: Sender → 400, everything else → 500."""
        if self._status is not None:
            return self._status
        return 400 if self.code == "Sender" else 500

    def __repr__(self) -> str:
        chain = "/".join([self.code, *self.subcodes])
        return f"OnvifFault({chain}: {self.reason!r})"

    __str__ = __repr__


def action_not_supported(what: str) -> OnvifFault:
    return OnvifFault.receiver("ActionNotSupported", f"{what} is not supported by this device")


def not_authorized(reason: str = "Sender not Authorized", status: int = 400) -> OnvifFault:
    return OnvifFault.sender("NotAuthorized", reason, status=status)


# spyne's own faults (raised while parsing, dispatching or validating) in ONVIF terms.
_SPYNE_FAULTS: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    "Client.XMLSyntaxError": ("Sender", ("WellFormed",), "Well-formed Error"),
    "Client.SoapError": ("Sender", ("WellFormed",), "Well-formed Error"),
    "Client.ResourceNotFound": (
        "Receiver",
        ("ActionNotSupported",),
        "Optional Action Not Implemented",
    ),
    "Client.ValidationError": ("Sender", ("InvalidArgs",), "Invalid Args"),
    "Client.SchemaValidationError": ("Sender", ("InvalidArgs",), "Invalid Args"),
    "Client.RequestTooLong": ("Sender", ("InvalidArgs",), "Request too long"),
    "Client.RequestNotAllowed": ("Sender", ("UnknownAction",), "Unknown Action"),
}


def as_onvif_fault(fault: BaseException) -> OnvifFault:
    """Translate any spyne fault into an ONVIF one; internals never reach the client."""
    if isinstance(fault, OnvifFault):
        return fault
    code = getattr(fault, "faultcode", "Server") or "Server"
    known = _SPYNE_FAULTS.get(code)
    if known is not None:
        env_code, subcodes, reason = known
        detail = getattr(fault, "faultstring", "")
        if code == "Client.ValidationError" and detail:
            reason = f"{reason}: {str(detail)[:200]}"
        return OnvifFault(env_code, subcodes, reason)
    if code.startswith("Client"):
        return OnvifFault.sender("InvalidArgs", "Invalid Args")
    return OnvifFault.receiver("Action", "Action Failed")


def _subcode_texts(
    fault: OnvifFault, in_scope: Mapping[str | None, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The subcodes as QName texts, and the prefixes (beyond ``ter``) they need declared.

    A namespace already bound where the fault lands (``in_scope``) keeps that prefix: lxml
    drops a second declaration of the same namespace when the fault is appended there.
    """
    texts: list[str] = []
    extra: dict[str, str] = {}
    for name in fault.subcodes:
        namespace, local = TER, name
        if name.startswith("{"):
            namespace, _, local = name[1:].partition("}")
        if namespace == TER:
            texts.append(f"ter:{local}")
            continue
        bound = next((p for p, uri in (in_scope or {}).items() if p and uri == namespace), None)
        if bound is not None:
            texts.append(f"{bound}:{local}")
            continue
        prefix = next((p for p, ns in extra.items() if ns == namespace), f"ns{len(extra)}")
        extra[prefix] = namespace
        texts.append(f"{prefix}:{local}")
    return texts, extra


def qname_prefixes(
    fault: OnvifFault, in_scope: Mapping[str | None, str] | None = None
) -> list[str]:
    """Prefixes used only inside QName values (namespace clean-up must keep them)."""
    texts, _ = _subcode_texts(fault, in_scope)
    return ["ter", *dict.fromkeys(t.partition(":")[0] for t in texts)]


def fault_element(
    fault: OnvifFault,
    version: SoapVersion,
    env_prefix: str = "env",
    in_scope: Mapping[str | None, str] | None = None,
) -> etree._Element:
    """The ``Fault`` element; ``env_prefix`` must be the envelope's prefix where it lands,
    ``in_scope`` the namespaces declared there."""
    texts, extra = _subcode_texts(fault, in_scope)
    env = version.namespace
    root = etree.Element(clark(env, "Fault"), nsmap={env_prefix: env, "ter": TER, **extra})
    if version is SoapVersion.SOAP12:
        code = etree.SubElement(root, clark(env, "Code"))
        etree.SubElement(code, clark(env, "Value")).text = f"{env_prefix}:{fault.code}"
        parent = code
        for text in texts:
            parent = etree.SubElement(parent, clark(env, "Subcode"))
            etree.SubElement(parent, clark(env, "Value")).text = text
        reason = etree.SubElement(root, clark(env, "Reason"))
        text_elt = etree.SubElement(reason, clark(env, "Text"))
        text_elt.set(clark(XML, "lang"), "en")
        text_elt.text = fault.reason
        if fault.fault_detail is not None:
            detail = etree.SubElement(root, clark(env, "Detail"))
            detail.append(copy.deepcopy(fault.fault_detail))
        return root
    # SOAP 1.1: the dotted form its spec suggests ("Client.Authentication"), in env's namespace.
    locals_ = [t.partition(":")[2] for t in texts]
    dotted = ".".join([_SOAP11_CODES.get(fault.code, fault.code), *locals_])
    etree.SubElement(root, "faultcode").text = f"{env_prefix}:{dotted}"
    etree.SubElement(root, "faultstring").text = fault.reason
    if fault.fault_detail is not None:
        etree.SubElement(root, "detail").append(copy.deepcopy(fault.fault_detail))
    return root


def action_header(action: str) -> etree._Element:
    element = etree.Element(clark(WSA, "Action"), nsmap={"wsa": WSA})
    element.text = action
    return element


def render_fault(fault: OnvifFault, version: SoapVersion) -> bytes:
    """A complete envelope holding ``fault`` (for faults raised before spyne runs)."""
    env = version.namespace
    envelope = etree.Element(clark(env, "Envelope"), nsmap={"env": env})
    if fault.action or fault.code == "VersionMismatch":
        header = etree.SubElement(envelope, clark(env, "Header"))
        if fault.action:
            header.append(action_header(fault.action))
        if fault.code == "VersionMismatch" and version is SoapVersion.SOAP12:
            upgrade = etree.SubElement(header, clark(env, "Upgrade"))
            supported = etree.SubElement(upgrade, clark(env, "SupportedEnvelope"))
            supported.set("qname", "env:Envelope")
    etree.SubElement(envelope, clark(env, "Body")).append(fault_element(fault, version))
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
