"""Mounting a SOAP service, and endpoints whose handlers need a piece of the daemon.

spyne handlers are static methods: a service that needs daemon state (its "backend": the
receiver manager, the replay settings, ...) gets it from a context variable that
:class:`BackendEndpoint` sets around each request, in the worker thread that runs it.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

from nvr.onvif.registry import ServiceEntry
from nvr.onvif.soap import SoapEndpoint, SoapResponse, SoapService, route

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.onvif.asgi import Receive, Scope, Send
    from nvr.onvif.context import OnvifContext
    from nvr.onvif.request import HttpRequest

__all__ = ["BackendEndpoint", "serve_endpoint"]

B = TypeVar("B")
E = TypeVar("E", bound=SoapEndpoint)


class _LoopUser(Protocol):
    loop: asyncio.AbstractEventLoop | None


class BackendEndpoint(SoapEndpoint, Generic[B]):
    """:class:`SoapEndpoint` with ``backend`` in ``slot`` while a request is handled.

    With ``records_loop`` it stores the event loop serving the requests (the daemon's) in
    ``backend.loop`` first: backends run the daemon's coroutines there from handler threads.
    """

    def __init__(
        self,
        service: SoapService,
        context: OnvifContext,
        backend: B,
        slot: ContextVar[B],
        *,
        records_loop: bool = False,
        threads: int = 16,
    ) -> None:
        super().__init__(service, context, threads=threads)
        self.backend = backend
        self._slot = slot
        self._records_loop = records_loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._records_loop:
            cast(_LoopUser, self.backend).loop = asyncio.get_running_loop()
        await super().__call__(scope, receive, send)

    def handle(self, request: HttpRequest) -> SoapResponse:
        token = self._slot.set(self.backend)
        try:
            return super().handle(request)
        finally:
            self._slot.reset(token)


def serve_endpoint(
    app: FastAPI, context: OnvifContext, path: str, endpoint: E, entry: ServiceEntry | None
) -> E:
    """Route ``path`` to ``endpoint``; ``entry`` (if any) announces it in GetServices and
    GetCapabilities."""
    if entry is not None:
        context.registry.register(entry)
    app.router.routes.append(route(path, endpoint))
    return endpoint
