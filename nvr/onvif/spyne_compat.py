"""spyne, bent where ONVIF needs something spyne does not do (all such changes live here).

* Faults: every fault — from a handler, or spyne's own (bad argument, unknown method) — is
  written by :mod:`nvr.onvif.faults` (``ter:`` subcode chains, SOAP 1.2 ``Reason/Text
  xml:lang``, optional ``wsa:Action`` header) with HTTP 400 for Sender, 500 otherwise.
* Namespace clean-up keeps the ``ter`` declaration that only QName *values* use.
* An OnvifFault raised by a handler is the answer, not an error: it is not logged with a
  traceback (nor are spyne's client-error logs for bad input).
* spyne runs a full ``gc.collect()`` after a request (at most once a second, to close
  attachment files we never use); a collection of the daemon's heap holds the GIL for
  hundreds of milliseconds, so that is switched off.
* The WSDL gets ONVIF-style soapAction values and a stable order of schema children.
* The message is not parsed again: the gate's tree (:mod:`nvr.onvif.envelope`) is reused.
* ``xs:boolean`` and ``xs:duration`` values are checked: spyne reads any word as false and
  crashes on (or half-reads) a malformed duration; both are a wrong-typed argument
  (``env:Sender/ter:InvalidArgs``), not a server error.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, Final

import spyne.const
from lxml import etree
from spyne import Application
from spyne.error import ValidationError
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12

from nvr.onvif.faults import (
    OnvifFault,
    SoapVersion,
    action_header,
    as_onvif_fault,
    fault_element,
    qname_prefixes,
)
from nvr.onvif.namespaces import clark
from nvr.onvif.request import ENVIRON_KEY

log = logging.getLogger("nvr.onvif")

spyne.const.MIN_GC_INTERVAL = float("inf")


_ID_ELEMENTS: Final = etree.XPath("//*[string(@id)]")
"""What ``etree.XMLID`` indexes (spyne resolves SOAP 1.1 ``href`` references with it)."""
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
_DURATION: Final = re.compile(
    r"-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
)


class _OnvifFaultsMixin:
    """Fault XML, HTTP status and namespace clean-up for spyne's SOAP protocols; strict
    booleans and durations."""

    soap_version: SoapVersion

    def boolean_from_bytes(self, cls: Any, string: str | bytes) -> bool:
        text = string.decode() if isinstance(string, bytes) else string
        value = _BOOLEANS.get(text.strip().lower())
        if value is None:
            raise ValidationError(text[:40], "%r is not an xs:boolean")
        return value

    def duration_from_unicode(self, cls: Any, string: str) -> Any:
        text = string.strip()
        if text and not _DURATION.fullmatch(text):
            raise ValidationError(text[:40], "%r is not an xs:duration")
        return super().duration_from_unicode(cls, text)  # type: ignore[misc]

    def create_in_document(self, ctx: Any, charset: str | None = None) -> None:
        """The gate parsed and checked the message already: take its tree (and, as spyne's
        ``XMLID`` parse would give, the elements by ``id``)."""
        soap = ctx.transport.req_env.get(ENVIRON_KEY)
        envelope = getattr(soap, "envelope", None)
        if envelope is None:
            super().create_in_document(ctx, charset)  # type: ignore[misc]
            return
        root = envelope.document
        ctx.in_document = (root, {e.get("id"): e for e in _ID_ELEMENTS(root)})

    def fault_to_parent(
        self, ctx: Any, cls: Any, inst: Any, parent: Any, ns: Any, *a: Any, **k: Any
    ) -> None:
        env = self.soap_version.namespace
        prefix = next((p for p, uri in parent.nsmap.items() if uri == env and p), "env")
        fault = as_onvif_fault(inst)
        parent.append(fault_element(fault, self.soap_version, prefix, parent.nsmap))

    schema_validation_error_to_parent = fault_to_parent

    def fault_to_http_response_code(self, fault: Any) -> str:
        status = as_onvif_fault(fault).http_status
        return f"{status} {HTTPStatus(status).phrase}"

    def serialize(self, ctx: Any, message: Any) -> None:
        super().serialize(ctx, message)  # type: ignore[misc]
        keep: list[str] = []
        if ctx.out_error is not None:
            fault = as_onvif_fault(ctx.out_error)
            keep = qname_prefixes(fault, ctx.out_document.nsmap)
            if fault.action:
                header = etree.Element(clark(self.soap_version.namespace, "Header"))
                header.append(action_header(fault.action))
                ctx.out_document.insert(0, header)
        etree.cleanup_namespaces(ctx.out_document, keep_ns_prefixes=keep)


class OnvifSoap12(_OnvifFaultsMixin, Soap12):
    soap_version = SoapVersion.SOAP12


class OnvifSoap11(_OnvifFaultsMixin, Soap11):
    soap_version = SoapVersion.SOAP11


class OnvifApplication(Application):  # type: ignore[misc]
    """An OnvifFault from a handler is an answer, not an error worth a traceback."""

    def call_wrapper(self, ctx: Any) -> Any:
        try:
            return super().call_wrapper(ctx)
        except OnvifFault as fault:
            log.debug("%s: %r", ctx.method_request_string, fault)
            ctx.out_error = fault
            return None


PROTOCOLS: Final = {SoapVersion.SOAP12: OnvifSoap12, SoapVersion.SOAP11: OnvifSoap11}


class _ClientFaultFilter(logging.Filter):
    """spyne logs every client error (bad argument…) with a traceback at ERROR; we answer
    those with a fault, which is all they deserve."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.msg
        return not (isinstance(fault, Fault) and str(fault.faultcode).startswith("Client"))


for _name in ("spyne.server._base", "spyne.server.wsgi", "spyne.application.client"):
    logging.getLogger(_name).addFilter(_ClientFaultFilter())


_XS: Final = "{http://www.w3.org/2001/XMLSchema}"
_SCHEMA_ORDER: Final = {_XS + "import": 0, _XS + "simpleType": 1, _XS + "complexType": 1}


def finish_wsdl(wsdl: bytes, namespace: str) -> bytes:
    """ONVIF-style soapAction values, and a stable order of schema children.

    spyne orders types by a topological sort over sets of classes, which varies between
    runs; the order of schema children carries no meaning, so sort them by kind and name.
    """
    root = etree.fromstring(wsdl)
    for operation in root.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}operation"):
        name = operation.getparent().get("name")
        operation.set("soapAction", f"{namespace}/{name}")
    types = root.find("{http://schemas.xmlsoap.org/wsdl/}types")
    for schema in [] if types is None else list(types):
        children = sorted(
            schema,
            key=lambda e: (_SCHEMA_ORDER.get(e.tag, 2), e.get("namespace") or e.get("name") or ""),
        )
        schema[:] = children
    if types is not None:
        types[:] = sorted(types, key=lambda e: e.get("targetNamespace") or "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
