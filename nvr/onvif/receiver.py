"""The ONVIF Receiver service (receiver.wsdl) at ``/onvif/receiver_service`` (receiver.md).

Each operation maps onto the daemon's :class:`~nvr.ingest.receivers.ReceiverManager` through
a :class:`ReceiverBackend` the endpoint puts in scope of the handlers (a context variable, as
the Replay and Search services do). Camera credentials may sit in a MediaUri's userinfo; they
are returned only to callers allowed to change receivers (ACTUATE), others see the URI
without them.
"""

from __future__ import annotations

import contextvars
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from spyne import Unicode, rpc

from nvr.onvif import receiver_types as rv
from nvr.onvif import types_tt as tt
from nvr.onvif.access import AccessClass, allowed
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.endpoints import BackendEndpoint, serve_endpoint
from nvr.onvif.namespaces import TRV
from nvr.onvif.operations import compose
from nvr.onvif.receiver_backend import ReceiverBackend, engine_config, wire_receiver
from nvr.onvif.receiver_policy import RECEIVER_ACCESS, RECEIVER_OPERATIONS
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.request import soap_request
from nvr.onvif.soap import SoapService
from nvr.onvif.types_tt import repeated, required

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.onvif.context import OnvifContext

RECEIVER_PATH: Final = "/onvif/receiver_service"
RECEIVER_VERSION: Final = (26, 6)
"""receiver.wsdl schema version we implement."""

_backend: contextvars.ContextVar[ReceiverBackend] = contextvars.ContextVar("receiver_backend")


def _may_see_credentials(ctx: Any) -> bool:
    return allowed(soap_request(ctx).principal.level, AccessClass.ACTUATE)


class ReceiverMethods:
    """Namespace of the receiver operations (composed into one spyne service)."""

    @rpc(_returns=required(rv.Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> rv.Capabilities:
        return _backend.get().capabilities()

    @rpc(_returns=repeated(rv.Receiver), _out_variable_name="Receivers")
    def GetReceivers(ctx: Any) -> list[rv.Receiver]:
        secrets = _may_see_credentials(ctx)
        infos = _backend.get().read(lambda m: m.list())
        return [wire_receiver(i, with_credentials=secrets) for i in infos]

    @rpc(required(Unicode), _returns=required(rv.Receiver), _out_variable_name="Receiver")
    def GetReceiver(ctx: Any, ReceiverToken: str) -> rv.Receiver:
        info = _backend.get().read(lambda m: m.get(ReceiverToken))
        return wire_receiver(info, with_credentials=_may_see_credentials(ctx))

    @rpc(
        required(rv.ReceiverConfiguration),
        _returns=required(rv.Receiver),
        _out_variable_name="Receiver",
    )
    def CreateReceiver(ctx: Any, Configuration: rv.ReceiverConfiguration) -> rv.Receiver:
        config = engine_config(Configuration)
        info = _backend.get().run(lambda m: m.create(config))
        return wire_receiver(info, with_credentials=True)

    @rpc(required(Unicode))
    def DeleteReceiver(ctx: Any, ReceiverToken: str) -> None:
        _backend.get().run(lambda m: m.delete(ReceiverToken))

    @rpc(required(Unicode), required(rv.ReceiverConfiguration))
    def ConfigureReceiver(
        ctx: Any, ReceiverToken: str, Configuration: rv.ReceiverConfiguration
    ) -> None:
        backend = _backend.get()
        backend.read(lambda m: m.get(ReceiverToken))  # UnknownToken before BadConfiguration
        config = engine_config(Configuration)
        backend.run(lambda m: m.configure(ReceiverToken, config))

    @rpc(required(Unicode), required(rv.ReceiverMode))
    def SetReceiverMode(ctx: Any, ReceiverToken: str, Mode: str) -> None:
        _backend.get().run(lambda m: m.set_mode(ReceiverToken, Mode))

    @rpc(
        required(Unicode),
        _returns=required(rv.ReceiverStateInformation),
        _out_variable_name="ReceiverState",
    )
    def GetReceiverState(ctx: Any, ReceiverToken: str) -> rv.ReceiverStateInformation:
        state, auto_created = _backend.get().read(lambda m: m.state(ReceiverToken))
        return rv.ReceiverStateInformation(State=state, AutoCreated=auto_created)


@cache
def receiver_service() -> SoapService:
    """The receiver service definition (built once per process: spyne apps are costly)."""
    return SoapService(
        name="ReceiverService",
        namespace=TRV,
        services=(compose("ReceiverService", [ReceiverMethods], RECEIVER_OPERATIONS),),
        access=RECEIVER_ACCESS,
    )


def receiver_entry(backend: ReceiverBackend) -> ServiceEntry:
    return ServiceEntry(
        namespace=TRV,
        path=RECEIVER_PATH,
        version=RECEIVER_VERSION,
        capabilities=lambda: model_element(backend.capabilities(), rv.Capabilities, "Capabilities"),
        legacy_slot="Receiver",
        legacy=lambda xaddr: tt.ReceiverCapabilities(XAddr=xaddr, **backend.attributes()),
    )


def mount_receiver(app: FastAPI, context: OnvifContext, daemon: Any) -> ReceiverBackend:
    """Serve the Receiver service for ``daemon``; ``daemon.ingest`` (set when the daemon
    starts) is read per call, until then changes answer a Receiver fault."""

    def manager() -> Any:
        ingest = getattr(daemon, "ingest", None)
        return None if ingest is None else ingest.receivers

    backend = ReceiverBackend(manager)
    # records the serving loop: the manager's coroutines run there
    endpoint = BackendEndpoint(receiver_service(), context, backend, _backend, records_loop=True)
    serve_endpoint(app, context, RECEIVER_PATH, endpoint, receiver_entry(backend))
    return backend


__all__ = [
    "RECEIVER_PATH",
    "ReceiverMethods",
    "mount_receiver",
    "receiver_service",
]
