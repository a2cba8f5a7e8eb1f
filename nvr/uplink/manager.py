"""All configured uplinks, connected in parallel (uplink.md A.3), and their status.

:meth:`UplinkManager.update` reconciles the running clients with a new list of configurations
(new ones start, removed ones stop, changed ones restart) and may be called from any thread,
e.g. by the Uplink service's SOAP handlers in their worker threads. :meth:`state` is
thread-safe too; everything else runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from nvr.uplink.client import UplinkClient
from nvr.uplink.dispatch import RtspLookup
from nvr.uplink.session import Timers
from nvr.uplink.settings import Keystore, UplinkConfiguration, UplinkState, UplinkStatus
from nvr.uplink.streams import AsgiApp

__all__ = ["Timers", "UplinkManager"]

log = logging.getLogger(__name__)


class UplinkManager:
    """One :class:`UplinkClient` per configuration.

    ``app`` is the daemon's ASGI app (what tunnelled requests are served by), ``rtsp`` finds
    the RTSP server for tunnelled RTSP over HTTP, ``device`` identifies this device for the
    reconnect jitter. ``listeners`` are called on the loop with every state change.
    """

    def __init__(
        self,
        app: AsgiApp,
        keystore: Keystore | None,
        rtsp: RtspLookup,
        *,
        device: str,
        timers: Timers | None = None,
    ) -> None:
        self._app = app
        self._keystore = keystore
        self._rtsp = rtsp
        self._device = device
        self._timers = timers or Timers()
        self._lock = threading.Lock()
        self._wanted: dict[str, UplinkConfiguration] = {}
        self._states: dict[str, UplinkState] = {}
        self._clients: dict[str, UplinkClient] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.listeners: list[Callable[[str, UplinkState], None]] = []

    async def start(self) -> None:
        """Connect every configuration given so far."""
        self._loop = asyncio.get_running_loop()
        self._reconcile()

    def update(self, configs: Sequence[UplinkConfiguration]) -> None:
        """The uplinks that should exist from now on (thread-safe)."""
        with self._lock:
            self._wanted = {config.remote_address: config for config in configs}
        loop = self._loop
        if loop is None or self._closed:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._reconcile()
        else:
            loop.call_soon_threadsafe(self._reconcile)

    def state(self, remote_address: str) -> UplinkState:
        """Status and last error of an uplink (``Offline`` if unknown; thread-safe)."""
        with self._lock:
            return self._states.get(remote_address, UplinkState())

    def client(self, remote_address: str) -> UplinkClient | None:
        return self._clients.get(remote_address)

    async def close(self) -> None:
        """Stop every uplink and wait until their connections are closed."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.stop() for client in clients), return_exceptions=True)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def _reconcile(self) -> None:
        if self._closed:
            return
        with self._lock:
            wanted = dict(self._wanted)
        for address, client in list(self._clients.items()):
            if wanted.get(address) != client.config:
                del self._clients[address]
                self._stop(client)
        for address, config in wanted.items():
            if address not in self._clients:
                client = UplinkClient(
                    config,
                    app=self._app,
                    rtsp=self._rtsp,
                    keystore=self._keystore,
                    device=self._device,
                    timers=self._timers,
                    report=self._report,
                )
                self._clients[address] = client
                client.start()

    def _stop(self, client: UplinkClient) -> None:
        task = asyncio.get_running_loop().create_task(client.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _report(self, client: UplinkClient, state: UplinkState) -> None:
        remote_address = client.config.remote_address
        with self._lock:
            current = self._clients.get(remote_address)
            if current is not None and current is not client:
                return  # a replaced client stopping: its successor reports for the address
            if current is None and state.status is not UplinkStatus.OFFLINE:
                return  # a removed client's last words
            if state.status is UplinkStatus.OFFLINE and remote_address not in self._wanted:
                self._states.pop(remote_address, None)
            else:
                self._states[remote_address] = state
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                listener(remote_address, state)
