"""spyne SOAP services behind an ASGI endpoint: the gate every ONVIF request passes through.

One :class:`SoapService` describes a service (its spyne ``ServiceBase`` classes, namespace
and per-operation access classes); :class:`SoapEndpoint` serves it at a path of the FastAPI
app. For each POST the endpoint, in a worker thread: parses the envelope (refusing DTDs and
malformed XML), finds the operation, refuses unknown ones with ``ActionNotSupported``, checks
``mustUnderstand`` headers, authenticates and authorizes the caller, then hands the request to
spyne through a WSGI call and returns its answer. ``GET ?wsdl`` returns spyne's WSDL.
Where spyne needed bending, see :mod:`nvr.onvif.spyne_compat`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final
from xml.sax.saxutils import escape

import anyio
from lxml import etree
from spyne import ServiceBase
from spyne.interface.wsdl import Wsdl11
from spyne.server.wsgi import WsgiApplication

from nvr.onvif.access import AccessClass
from nvr.onvif.asgi import (
    Disconnected,
    Receive,
    Scope,
    Send,
    http_request,
    is_wsdl_query,
    read_body,
    send_response,
)
from nvr.onvif.auth import Refusal
from nvr.onvif.envelope import Envelope, EnvelopeError, parse_envelope
from nvr.onvif.faults import OnvifFault, SoapVersion, render_fault
from nvr.onvif.namespaces import apply_onvif_prefixes, clark
from nvr.onvif.request import ENVIRON_KEY, HttpRequest, SoapRequest
from nvr.onvif.spyne_compat import PROTOCOLS, OnvifApplication, finish_wsdl
from nvr.onvif.wsgi import build_environ, call_wsgi

if TYPE_CHECKING:
    from nvr.onvif.context import OnvifContext

log = logging.getLogger("nvr.onvif")

MAX_REQUEST_BYTES: Final = 1024 * 1024
"""Default of ``http.max_soap_request_bytes`` (used when the config lacks the setting)."""
_XML_TYPES: Final = ("application/soap+xml", "text/xml", "application/xml")
_ADDRESS_MARKER: Final = "http://nvr.invalid/endpoint-address"


# --- service definition -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SoapService:
    """A SOAP service: spyne classes, its target namespace and each operation's access class.

    ``access`` keys are operation names in ``namespace`` or ``{namespace}Name`` for others.
    """

    name: str
    namespace: str
    services: tuple[type[ServiceBase], ...]
    access: Mapping[str, AccessClass]
    _wsdl_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        missing = sorted(set(self.operations) - set(self.access_by_operation))
        if missing:
            raise ValueError(f"{self.name}: no access class for {', '.join(missing)}")

    @cached_property
    def applications(self) -> dict[SoapVersion, WsgiApplication]:
        apps = {}
        for version, protocol in PROTOCOLS.items():
            app = OnvifApplication(
                list(self.services),
                tns=self.namespace,
                name=self.name,
                in_protocol=protocol(validator="soft", cleanup_namespaces=False),
                out_protocol=protocol(cleanup_namespaces=False),
            )
            apply_onvif_prefixes(app.interface)
            apps[version] = WsgiApplication(app)
        return apps

    @cached_property
    def operations(self) -> list[str]:
        """Clark names of every operation spyne dispatches for this service."""
        interface = self.applications[SoapVersion.SOAP12].app.interface
        return sorted(interface.service_method_map)

    @cached_property
    def access_by_operation(self) -> dict[str, AccessClass]:
        return {
            (name if name.startswith("{") else clark(self.namespace, name)): access
            for name, access in self.access.items()
        }

    @cached_property
    def _wsdl_template(self) -> bytes:
        app = self.applications[SoapVersion.SOAP12].app
        document = Wsdl11(app.interface)
        document.build_interface_document(_ADDRESS_MARKER)
        return finish_wsdl(document.get_interface_document(), self.namespace)

    def wsdl(self, url: str) -> bytes:
        """spyne's WSDL for the service at ``url`` (built once; only the address varies)."""
        with self._wsdl_lock:  # spyne's WSDL builder is not thread-safe
            template = self._wsdl_template
        return template.replace(_ADDRESS_MARKER.encode(), escape(url, {'"': "&quot;"}).encode())


# --- the endpoint -----------------------------------------------------------------------------


@dataclass(slots=True)
class SoapResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    after: list[Callable[[], None]] = field(default_factory=list)
    envelope: Envelope | None = None
    """The request as the gate parsed it, when it was dispatched."""


def _fault_response(
    fault: OnvifFault, version: SoapVersion, status: int | None = None
) -> SoapResponse:
    return SoapResponse(
        status or fault.http_status,
        [("content-type", version.content_type)],
        render_fault(fault, version),
    )


def _plain(status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> SoapResponse:
    return SoapResponse(
        status, [("content-type", "text/plain; charset=utf-8"), *headers], text.encode()
    )


def _request_limit(context: OnvifContext) -> int:
    try:
        return int(context.config["http.max_soap_request_bytes"])
    except (KeyError, TypeError):
        return MAX_REQUEST_BYTES


class SoapEndpoint:
    """ASGI application serving one :class:`SoapService` (mount it with :func:`route`)."""

    def __init__(self, service: SoapService, context: OnvifContext, *, threads: int = 16) -> None:
        self.service = service
        self.context = context
        self._limiter = anyio.CapacityLimiter(threads)
        self.max_request_bytes = _request_limit(context)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        if method == "GET" and is_wsdl_query(query):
            request = http_request(scope, b"")
            response = await anyio.to_thread.run_sync(
                self.wsdl_response, request, limiter=self._limiter
            )
        elif method != "POST":
            response = _plain(405, "SOAP requests must be POSTed\n", [("allow", "POST, GET")])
        else:
            try:
                body = await read_body(scope, receive, self.max_request_bytes)
            except Disconnected:
                return
            if body is None:
                response = _plain(413, "request too large\n")
            else:
                request = http_request(scope, body)
                response = await anyio.to_thread.run_sync(
                    self.handle, request, limiter=self._limiter
                )
        await send_response(send, response.status, response.headers, response.body)
        for callback in response.after:
            try:
                callback()
            except Exception:
                log.exception("after-response action failed")

    def wsdl_response(self, request: HttpRequest) -> SoapResponse:
        body = self.service.wsdl(request.base_url + request.path)
        return SoapResponse(200, [("content-type", "text/xml; charset=utf-8")], body)

    def handle(self, request: HttpRequest) -> SoapResponse:
        """Everything between the request body and the response body (blocking)."""
        started = time.monotonic()
        try:
            response = self._handle(request)
        except Exception:
            log.exception("SOAP request to %s failed", request.path)
            fault = OnvifFault.receiver("Action", "Action Failed")
            response = _fault_response(fault, SoapVersion.SOAP12)
        log.debug(
            "%s %s -> %d in %.1f ms",
            request.client,
            request.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _handle(self, request: HttpRequest) -> SoapResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _XML_TYPES:
            return _plain(415, f"unsupported content type {content_type[:80]!r}\n")
        probe = self.context.auth.probe(request)
        if probe is not None:
            response = _fault_response(probe.fault, SoapVersion.SOAP12, probe.status)
            response.headers.extend(probe.headers)
            return response
        try:
            envelope = parse_envelope(request.body)
        except EnvelopeError as exc:
            return _fault_response(exc.fault, exc.version)
        version = envelope.version
        access = self.service.access_by_operation.get(envelope.operation)
        if access is None:
            local = etree.QName(envelope.operation).localname
            fault = OnvifFault.receiver("ActionNotSupported", f"unknown operation {local[:80]}")
            return _fault_response(fault, version)
        not_understood = envelope.not_understood()
        if not_understood:
            fault = OnvifFault(
                "MustUnderstand", (), f"header {not_understood[0][:120]} not understood"
            )
            return _fault_response(fault, version, 500)
        decision = self.context.auth.authenticate(request, envelope.headers, access)
        if isinstance(decision, Refusal):
            response = _fault_response(decision.fault, version, decision.status)
            response.headers.extend(decision.headers)
            return response
        soap = SoapRequest(request, decision, self.context, envelope=envelope)
        if not content_type:
            request = request.with_header("content-type", version.content_type)
        environ = build_environ(request, {ENVIRON_KEY: soap})
        status, headers, body = call_wsgi(self.service.applications[version], environ)
        kept = [(k.lower(), v) for k, v in headers if k.lower() not in ("content-length",)]
        return SoapResponse(status, kept, body, soap.after_response, envelope)


def route(path: str, endpoint: SoapEndpoint) -> Any:
    """A starlette route for ``endpoint`` accepting every method (405s are ours)."""
    from starlette.routing import Route

    return Route(path, endpoint=endpoint, include_in_schema=False)
