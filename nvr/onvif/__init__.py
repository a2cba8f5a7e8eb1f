"""The ONVIF SOAP services of the recorder, mounted into the FastAPI app under ``/onvif/``.

:func:`mount_onvif` creates the shared :class:`OnvifContext` and mounts the device and event
services; every further service mounts the same way with :func:`mount_service`, adding its
:class:`ServiceEntry` so GetServices and GetCapabilities report it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nvr.onvif.context import OnvifContext, create_context, warn_if_no_users
from nvr.onvif.device import DEVICE_PATH, device_service
from nvr.onvif.device_capabilities import device_entry
from nvr.onvif.endpoints import serve_endpoint
from nvr.onvif.events_service import mount_events
from nvr.onvif.receiver import mount_receiver
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.replay import mount_replay
from nvr.onvif.restart import restart_hook
from nvr.onvif.soap import SoapEndpoint, SoapService
from nvr.onvif.uplink import mount_uplink

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
    return serve_endpoint(app, context, path, SoapEndpoint(service, context), entry)


def mount_onvif(app: FastAPI, daemon: Daemon) -> OnvifContext:
    context = create_context(
        daemon.config, daemon.engine, daemon.sessions, reboot=restart_hook(daemon)
    )
    warn_if_no_users(context.users)
    app.state.onvif = context
    mount_service(app, context, device_service(), DEVICE_PATH, device_entry(context))
    app.state.events = mount_events(app, context, daemon.bus, daemon.scheduler)
    daemon.on_stop_requested.append(app.state.events.close)
    from nvr import search  # late: the search package builds on this one

    app.state.search = search.mount(app, context, daemon)
    app.state.replay = mount_replay(app, context, daemon)
    from nvr.onvif.recording import mount_recording  # late: uses the search models

    app.state.recording = mount_recording(app, context, daemon)
    app.state.receiver = mount_receiver(app, context, daemon)
    app.state.uplink = mount_uplink(app, context, daemon)
    return context


__all__ = ["OnvifContext", "ServiceEntry", "SoapService", "mount_onvif", "mount_service"]
