"""The Event service's HTTP endpoint: the shared SOAP gate plus what events need on top.

* Handlers find their :class:`PullPointManager` (one per daemon) and the request's extra
  namespace declarations through context variables set around the gate's worker-thread call.
* QName *values* — topic text ``tns1:…``, item types ``xs:string``, fault QNames — need their
  prefixes in scope, but spyne removes every declaration no element name uses. The finished
  envelope therefore gets them declared on its root element.
* Successful answers carry ``wsa:Action`` (and ``wsa:RelatesTo`` when the request had a
  ``wsa:MessageID``): Core §9 requires WS-Addressing on both sides of the event service.
* The thread pool is sized so the at most one PullMessages waiting per pull point never
  starves the other operations.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final
from xml.sax.saxutils import escape

from lxml import etree

from nvr.onvif.envelope import Envelope
from nvr.onvif.events_policy import RESPONSE_ACTIONS
from nvr.onvif.events_pullpoint import PullPointManager
from nvr.onvif.events_topics import VALUE_PREFIXES
from nvr.onvif.namespaces import SOAP11, SOAP12, WSA, WSA_2004, clark
from nvr.onvif.request import HttpRequest
from nvr.onvif.soap import SoapEndpoint, SoapResponse, SoapService

if TYPE_CHECKING:
    from nvr.onvif.context import OnvifContext

SPARE_THREADS: Final = 16
"""Worker threads beyond one per pull point, for every other request."""

_manager: contextvars.ContextVar[PullPointManager] = contextvars.ContextVar("events_manager")
_prefixes: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("events_prefixes")


def current_manager() -> PullPointManager:
    """The pull points of the daemon serving this request (inside a handler only)."""
    return _manager.get()


def declare_prefix(prefix: str, namespace: str) -> None:
    """Keep ``xmlns:prefix`` on the response: a QName value in it uses the prefix."""
    _prefixes.get()[prefix] = namespace


@contextmanager
def _request_scope(manager: PullPointManager) -> Iterator[dict[str, str]]:
    prefixes: dict[str, str] = dict(VALUE_PREFIXES)
    tokens = (_manager.set(manager), _prefixes.set(prefixes))
    try:
        yield prefixes
    finally:
        _prefixes.reset(tokens[1])
        _manager.reset(tokens[0])


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _message_id(envelope: Envelope | None) -> str | None:
    if envelope is None:
        return None
    for namespace in (WSA, WSA_2004):
        header = envelope.header(namespace, "MessageID")
        if header is not None and header.text:
            return header.text.strip()
    return None


def finish_envelope(body: bytes, prefixes: dict[str, str], relates_to: str | None) -> bytes:
    """Declare ``prefixes`` on the Envelope; add wsa:Action/RelatesTo to a known response.

    The declarations are spliced into the serialised start tag: moving the children under a
    new root would let lxml drop declarations it deems redundant (a fault's subcode prefix
    bound to a namespace the root also binds), which QName values still need.
    """
    root = etree.fromstring(body, _parser())
    env = etree.QName(root).namespace
    if env not in (SOAP12, SOAP11):
        return body
    payload = root.find(f"{{{env}}}Body/*")
    action = RESPONSE_ACTIONS.get(payload.tag) if payload is not None else None
    if action is not None:
        header = root.find(clark(env, "Header"))
        if header is None:
            header = etree.Element(clark(env, "Header"))
            root.insert(0, header)
        etree.SubElement(header, clark(WSA, "Action"), nsmap={"wsa": WSA}).text = action
        if relates_to:
            relation = etree.SubElement(header, clark(WSA, "RelatesTo"), nsmap={"wsa": WSA})
            relation.text = relates_to
    text = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    missing = [(p, ns) for p, ns in prefixes.items() if p not in root.nsmap]
    if missing:
        declarations = "".join(
            f' xmlns:{p}="{escape(ns, {chr(34): "&quot;"})}"' for p, ns in missing
        )
        end = text.index(b">")  # of the Envelope start tag (it always has children)
        text = text[:end] + declarations.encode() + text[end:]
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + text


class EventsEndpoint(SoapEndpoint):
    """:class:`SoapEndpoint` for the Event service, at its address and every pull point's."""

    def __init__(
        self, service: SoapService, context: OnvifContext, manager: PullPointManager
    ) -> None:
        super().__init__(service, context, threads=manager.max_pull_points + SPARE_THREADS)
        self.manager = manager

    def handle(self, request: HttpRequest) -> SoapResponse:
        with _request_scope(self.manager) as prefixes:
            response = super().handle(request)
        content_type = dict(response.headers).get("content-type", "")
        if "xml" in content_type and response.body:
            relates_to = _message_id(response.envelope)
            try:
                response.body = finish_envelope(response.body, prefixes, relates_to)
            except etree.XMLSyntaxError:
                pass
        return response
