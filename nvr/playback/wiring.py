"""The daemon's replay front door: one RTSP server for recordings (and the demo), with ONVIF users.

:func:`start_playback` is what ``nvr serve`` calls once the store is open; the returned
:class:`PlaybackHandle` is what the Replay service and the RTSP-over-WebSocket route find on the
daemon (``daemon.playback``) to learn the RTSP port and to apply a new SessionTimeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nvr.onvif.access import AccessClass, Level, allowed
from nvr.onvif.context import DIGEST_REALM
from nvr.onvif.replay import RECORDINGS_PREFIX
from nvr.onvif.replay_settings import ReplaySettings
from nvr.onvif.throttle import LoginThrottle
from nvr.playback.replay import RecordingResolver
from nvr.playback.resource import ResourceResolver
from nvr.playback.server import RtspAuth, RtspServer, Throttle
from nvr.protocol.rtsp_auth import ServerAuthenticator
from nvr.secretbox import SecretBox
from nvr.users import UserDirectory

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from nvr.config import Config
    from nvr.store import Store

__all__ = ["PlaybackHandle", "UserAccess", "start_playback"]


class PlaybackHost(Protocol):
    """What :func:`start_playback` needs of the daemon (a test may pass something smaller)."""

    config: Config
    sessions: sessionmaker[Session]
    store: Store | None


class UserAccess:
    """RTSP Digest against the ONVIF users; every request needs READ_MEDIA (replay.md B.1).

    Password lookups are database reads, so they run in a worker thread; the user's level is
    remembered from that same lookup for :meth:`authorize`, which the server calls right after
    a successful verification and which must not block.
    """

    def __init__(self, users: UserDirectory) -> None:
        self._users = users
        self._levels: dict[str, Level] = {}

    async def password(self, name: str) -> str | None:
        return await asyncio.to_thread(self._lookup, name)

    def _lookup(self, name: str) -> str | None:
        info = self._users.get(name)
        password = self._users.password(name) if info is not None else None
        if info is None or password is None:
            self._levels.pop(name, None)
            return None
        self._levels[name] = Level.of(info.level)
        return password

    def authorize(self, name: str, method: str, path: str) -> bool:
        level = self._levels.get(name)
        return level is not None and allowed(level, AccessClass.READ_MEDIA)


def rtsp_auth(config: Config, users: UserDirectory, throttle: Throttle | None = None) -> RtspAuth:
    """Digest with the realm and the algorithms (in order) the SOAP services use; failed
    logins count against ``throttle`` (the SOAP gate's, so an address has one guessing budget
    across both front doors)."""
    access = UserAccess(users)
    algorithms = config["security.digest_algorithms"].upper().split(",")
    return RtspAuth(
        DIGEST_REALM,
        access.password,
        authorize=access.authorize,
        authenticator=ServerAuthenticator(DIGEST_REALM, algorithms=algorithms),
        throttle=throttle if throttle is not None else LoginThrottle(),
    )


@dataclass
class PlaybackHandle:
    server: RtspServer
    resolver: RecordingResolver

    def set_session_timeout(self, seconds: int) -> None:
        """New sessions get it; running ones keep the timeout their SETUP response announced."""
        self.server.session_timeout = seconds

    async def stop(self) -> None:
        """Tear every RTSP session down, then stop the store reader threads."""
        await self.server.stop()
        self.resolver.close()


def _soap_throttle(daemon: object) -> Throttle | None:
    """The SOAP gate's login throttle when the daemon serves the ONVIF app (``nvr serve``)."""
    context = getattr(getattr(getattr(daemon, "app", None), "state", None), "onvif", None)
    return getattr(getattr(context, "auth", None), "throttle", None)


async def start_playback(daemon: PlaybackHost) -> PlaybackHandle:
    """Serve ``/recordings/<token>`` (and ``daemon.rtsp_resources``, if any, for other paths)
    on ``rtsp.host``/``rtsp.port``; raises OSError when the port cannot be bound."""
    if daemon.store is None:
        raise RuntimeError("start_playback needs the open store")
    config = daemon.config
    fallback: ResourceResolver | None = getattr(daemon, "rtsp_resources", None)
    users = UserDirectory(daemon.sessions, SecretBox.from_file(config.key_file))
    timeout = await asyncio.to_thread(ReplaySettings(daemon.sessions, config).session_timeout)
    resolver = RecordingResolver(daemon.store, prefix=RECORDINGS_PREFIX, fallback=fallback)
    server = RtspServer(
        config["rtsp.host"],
        config["rtsp.port"],
        resolver,
        auth=rtsp_auth(config, users, _soap_throttle(daemon)),
        session_timeout=timeout,
    )
    try:
        await server.start()
    except BaseException:
        resolver.close()
        raise
    return PlaybackHandle(server, resolver)
