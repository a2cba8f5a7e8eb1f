"""WS-Discovery target service (Core §7): Hello on start, Bye on stop, answers to Probe/Resolve.

An asyncio datagram protocol on UDP 3702 joined to 239.255.255.250 on the chosen interfaces.
What it announces — scopes, discovery mode, endpoint UUID — is the device service's persisted
state, re-read every few seconds off the event loop: a change of scopes or XAddrs raises the
(persisted) MetadataVersion and sends a new Hello; NonDiscoverable sends one Bye and then
neither announces nor answers until the mode is Discoverable again.

Where it listens is decided in :mod:`nvr.onvif.discovery_network`. Replies are rate limited,
so the device cannot be used to amplify a flood of forged probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from nvr.config import Config
from nvr.onvif import discovery_messages as messages
from nvr.onvif.device_scopes import all_scopes
from nvr.onvif.device_settings import DeviceSettings
from nvr.onvif.discovery_messages import Probe, Target
from nvr.onvif.discovery_network import Network, network, open_socket, xaddrs

log = logging.getLogger("nvr.onvif.discovery")

METADATA: Final = "onvif.discovery_metadata"
REFRESH_SECONDS: Final = 5.0
MAX_DELAY: Final = 0.5
"""WS-Discovery APP_MAX_DELAY: answers to multicast probes are spread over this many seconds."""
REPLIES_PER_SECOND: Final = 20.0
REPLY_BURST: Final = 40.0


class DiscoverySettings(DeviceSettings):
    """The device settings plus the MetadataVersion bookkeeping discovery needs."""

    def metadata(self) -> tuple[int, str]:
        value = self._get(METADATA, {})
        return int(value.get("version", 1)), str(value.get("fingerprint", ""))

    def set_metadata(self, version: int, fingerprint: str) -> None:
        self._set(METADATA, {"version": version, "fingerprint": fingerprint})


@dataclass(frozen=True, slots=True)
class DiscoveryState:
    discoverable: bool
    target: Target


def load_state(
    config: Config, settings: DiscoverySettings, urls: tuple[str, ...]
) -> DiscoveryState:
    """Read the announced state (blocking: database); bumps MetadataVersion on any change."""
    scopes = tuple(s.ScopeItem for s in all_scopes(config, settings))
    fingerprint = hashlib.sha256("\n".join((*scopes, "", *urls)).encode()).hexdigest()
    version, known = settings.metadata()
    if fingerprint != known:
        version = version + 1 if known else version
        settings.set_metadata(version, fingerprint)
    target = Target("urn:uuid:" + settings.endpoint_uuid(), scopes, urls, version)
    return DiscoveryState(settings.discovery_mode() != "NonDiscoverable", target)


class _RateLimit:
    """A token bucket: at most ``rate`` replies a second after a burst of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class DiscoveryResponder(asyncio.DatagramProtocol):
    """The WS-Discovery target service; ``source`` reads the state (called in a thread)."""

    def __init__(
        self,
        source: Callable[[], DiscoveryState],
        net: Network,
        *,
        max_delay: float = MAX_DELAY,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        self._source = source
        self.network = net
        self._max_delay = max_delay
        self._refresh = refresh
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: DiscoveryState | None = None
        self._instance = int(time.time())
        self._number = 0
        self._limit = _RateLimit(REPLIES_PER_SECOND, REPLY_BURST)

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (tests bind port 0)."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = open_socket(self.network)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self.state = await asyncio.to_thread(self._source)
        if self.state.discoverable:
            self._announce(messages.hello(self.state.target, self._sequence()))
        self._task = asyncio.create_task(self._watch(), name="ws-discovery")
        log.info("WS-Discovery listening on %s:%d", *self.address)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._transport is not None:
            if self.state is not None and self.state.discoverable:
                self._announce(messages.bye(self.state.target, self._sequence()))
            self._transport.close()
            self._transport = None

    def _sequence(self) -> tuple[int, int]:
        self._number += 1
        return self._instance, self._number

    def _announce(self, payload: bytes) -> None:
        transport, net = self._transport, self.network
        if transport is None:
            return
        for destination in net.announce:
            transport.sendto(payload, destination)
        if net.group is None:
            return
        sock = transport.get_extra_info("socket")
        for interface in net.interfaces:
            try:
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface)
                )
                transport.sendto(payload, (net.group, net.bind[1]))
            except OSError as error:
                log.warning("WS-Discovery: cannot announce on %s: %s", interface, error)

    async def _watch(self) -> None:
        """Follow the discovery mode, scopes and addresses; announce what changed."""
        while True:
            await asyncio.sleep(self._refresh)
            try:
                new = await asyncio.to_thread(self._source)
            except Exception:
                log.exception("WS-Discovery: reading the device state failed")
                continue
            old, self.state = self.state, new
            if old is None:
                continue
            if old.discoverable and not new.discoverable:
                self._announce(messages.bye(old.target, self._sequence()))
            elif new.discoverable and (not old.discoverable or old.target != new.target):
                self._announce(messages.hello(new.target, self._sequence()))

    # --- incoming -----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        state = self.state
        if state is None or not state.discoverable or len(data) > messages.MAX_DATAGRAM:
            return
        message = messages.parse(data)
        if message is None:
            return
        target = state.target
        if isinstance(message, Probe):
            if not messages.matches(message, target):
                return
            reply = messages.probe_matches(target, message.message_id, self._sequence())
        elif message.address == target.address:
            reply = messages.resolve_matches(target, message.message_id, self._sequence())
        else:
            return
        if not self._limit.allow():
            log.debug("WS-Discovery: reply to %s dropped by the rate limit", addr[0])
            return
        delay = random.uniform(0, self._max_delay) if self._max_delay > 0 else 0.0
        asyncio.get_running_loop().call_later(delay, self._send, reply, addr)

    def _send(self, payload: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(payload, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("WS-Discovery socket error: %s", exc)


def responder(config: Config, sessions: sessionmaker[Session], **kwargs: Any) -> DiscoveryResponder:
    """The daemon's responder, from its configuration and the device settings."""
    settings = DiscoverySettings(sessions)
    return DiscoveryResponder(
        lambda: load_state(config, settings, xaddrs(config)), network(config), **kwargs
    )


async def start_discovery(
    config: Config, sessions: sessionmaker[Session]
) -> DiscoveryResponder | None:
    """Start WS-Discovery unless it is switched off; a failure only costs discovery."""
    if not config["discovery.enabled"]:
        return None
    service = responder(config, sessions)
    try:
        await service.start()
    except Exception as error:  # a busy port or an unreadable state must not stop the daemon
        log.warning("WS-Discovery is off: %s", error)
        await service.stop()
        return None
    return service


__all__ = ["DiscoveryResponder", "DiscoveryState", "Network", "start_discovery"]
