"""The FastAPI application: ``/healthz`` and the ONVIF SOAP services under ``/onvif/``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from nvr import __version__
from nvr.onvif import mount_onvif

if TYPE_CHECKING:
    from nvr.app import Daemon


def build_app(daemon: Daemon) -> FastAPI:
    app = FastAPI(title="nvr", version=__version__, docs_url="/api/docs", redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 once the daemon is ready (database migrated, store opened); 503 before."""
        status: dict[str, Any] = await daemon.health()
        return JSONResponse(status, status_code=200 if status["status"] == "ready" else 503)

    mount_onvif(app, daemon)
    return app
