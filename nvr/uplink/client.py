"""One configured uplink kept connected (uplink.md A.2–A.3): dial, serve, back off, redial.

Status follows the connection: ``Connecting`` from the first dial until the cloud's HTTP/2
SETTINGS arrive, ``Connected`` while the tunnel serves, ``Connecting`` again (with the reason
in ``Error``) while it waits to redial, ``Offline`` once stopped. Key material is re-read from
the keystore before every attempt, so fixing it needs no restart.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from nvr.uplink.backoff import delays, spread
from nvr.uplink.carrier import dial
from nvr.uplink.credentials import CredentialError, access_token, tls_context
from nvr.uplink.dispatch import RtspLookup, dispatcher
from nvr.uplink.handshake import HandshakeError
from nvr.uplink.levels import granted_principal
from nvr.uplink.session import SessionEnded, Timers, TunnelSession
from nvr.uplink.settings import Keystore, UplinkConfiguration, UplinkState, UplinkStatus
from nvr.uplink.streams import AsgiApp

__all__ = ["UplinkClient", "describe"]

log = logging.getLogger(__name__)

StateSink = Callable[["UplinkClient", UplinkState], None]


def describe(exc: BaseException) -> str:
    """A one-line Error text for GetUplinks."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: server certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "connection attempt timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


class UplinkClient:
    """The task that keeps one uplink connected; ``report`` receives every state change."""

    def __init__(
        self,
        config: UplinkConfiguration,
        *,
        app: AsgiApp,
        rtsp: RtspLookup,
        keystore: Keystore | None,
        device: str,
        timers: Timers,
        report: StateSink,
    ) -> None:
        self.config = config
        self._app = app
        self._rtsp = rtsp
        self._keystore = keystore
        self._timers = timers
        self._report = report
        self._factor = spread(device, config.remote_address)
        self._principal = granted_principal(config.remote_address, config.user_level)
        self._task: asyncio.Task[None] | None = None
        self._session: TunnelSession | None = None
        self.connections = 0
        """Tunnels established so far (diagnostics, tests)."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"uplink {self.config.remote_address}"
        )

    async def stop(self, grace: float = 2.0) -> None:
        """Hang up (answering requests in progress for up to ``grace`` s) and stop."""
        task, self._task = self._task, None
        session = self._session
        if session is not None and task is not None:
            await session.shutdown(grace)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set(UplinkStatus.OFFLINE, None)

    def _set(self, status: UplinkStatus, error: str | None) -> None:
        self._report(self, UplinkState(status, error))

    async def _run(self) -> None:
        timers = self._timers
        backoff = delays(self._factor, timers.backoff_first, timers.backoff_cap)
        self._set(UplinkStatus.CONNECTING, None)
        while True:
            try:
                error = await self._connect_and_serve()
                backoff = delays(self._factor, timers.backoff_first, timers.backoff_cap)
            except (OSError, HandshakeError, CredentialError, TimeoutError, EOFError) as exc:
                error = describe(exc)
            except Exception as exc:  # a bug: keep the uplink alive all the same
                log.exception("uplink %s failed", self.config.remote_address)
                error = describe(exc)
            log.warning("uplink %s: %s", self.config.remote_address, error)
            self._set(UplinkStatus.CONNECTING, error)
            await asyncio.sleep(next(backoff))

    async def _connect_and_serve(self) -> str:
        """One connection; returns why it ended once it had been established."""
        config, timers = self.config, self._timers
        async with asyncio.timeout(timers.connect_timeout):
            tls = await asyncio.to_thread(tls_context, config, self._keystore)
            token = await asyncio.to_thread(access_token, config, self._keystore)
            carrier, early = await dial(config.remote_address, tls, token)
        self.connections += 1

        def ready() -> None:
            log.info("uplink %s connected", config.remote_address)
            self._set(UplinkStatus.CONNECTED, None)

        session = TunnelSession(
            carrier,
            dispatcher(self._app, self._principal, self._rtsp),
            timers,
            initial=early,
            on_ready=ready,
        )
        self._session = session
        try:
            await session.run()
        except SessionEnded as exc:
            return str(exc)
        finally:
            self._session = None
        return "the tunnel ended"
