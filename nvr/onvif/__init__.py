"""The ONVIF SOAP services of the recorder, mounted into the FastAPI app under ``/onvif/``.

:func:`mount_onvif` creates the shared :class:`OnvifContext` and mounts the device service;
every further service mounts the same way with :func:`mount_service`, adding its
:class:`ServiceEntry` so GetServices and GetCapabilities report it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nvr.onvif.context import OnvifContext, create_context, warn_if_no_users
from nvr.onvif.device import DEVICE_PATH, device_service
from nvr.onvif.device_capabilities import device_entry
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.restart import restart_hook
from nvr.onvif.soap import SoapEndpoint, SoapService, route

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.app import Daemon


def mount_service(
    app: FastAPI,
    context: OnvifContext,
    service: SoapService,
    path: str,
    entry: ServiceEntry | None = None,
) -> SoapEndpoint:
    """Serve ``service`` at ``path``; ``entry`` (if any) announces it in GetServices."""
    if entry is not None:
        context.registry.register(entry)
    endpoint = SoapEndpoint(service, context)
    app.router.routes.append(route(path, endpoint))
    return endpoint


def mount_onvif(app: FastAPI, daemon: Daemon) -> OnvifContext:
    context = create_context(
        daemon.config, daemon.engine, daemon.sessions, reboot=restart_hook(daemon)
    )
    warn_if_no_users(context.users)
    app.state.onvif = context
    mount_service(app, context, device_service(), DEVICE_PATH, device_entry(context))
    return context


__all__ = ["OnvifContext", "ServiceEntry", "SoapService", "mount_onvif", "mount_service"]
