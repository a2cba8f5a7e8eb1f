"""Everything the ONVIF services share: configuration, database, users, authenticator, registry.

One :class:`OnvifContext` per daemon; every :class:`~nvr.onvif.soap.SoapEndpoint` holds it and
handlers reach it through ``soap_request(ctx).context``. ``reboot`` is injectable so tests can
see SystemReboot without the process going away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nvr.config import Config
from nvr.onvif.auth import SoapAuthenticator
from nvr.onvif.device_settings import DeviceSettings
from nvr.onvif.registry import ServiceRegistry
from nvr.onvif.throttle import LoginThrottle
from nvr.onvif.wssecurity import PasswordText, UsernameTokenVerifier
from nvr.protocol.rtsp_auth import ServerAuthenticator
from nvr.secretbox import SecretBox
from nvr.users import UserDirectory

log = logging.getLogger("nvr.onvif")

DIGEST_REALM = "nvr"
_ALGORITHMS = {"sha-256": "SHA-256", "md5": "MD5"}


@dataclass
class OnvifContext:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    users: UserDirectory
    auth: SoapAuthenticator
    settings: DeviceSettings
    reboot: Callable[[], None]
    registry: ServiceRegistry = field(default_factory=ServiceRegistry)
    clock: Callable[[], float] = time.time

    @property
    def digest_algorithms(self) -> tuple[str, ...]:
        return self.auth.digest.algorithms


def create_context(
    config: Config,
    engine: Engine,
    sessions: sessionmaker[Session],
    *,
    reboot: Callable[[], None],
    clock: Callable[[], float] = time.time,
) -> OnvifContext:
    box = SecretBox.from_file(config.key_file)
    users = UserDirectory(sessions, box)
    algorithms = [_ALGORITHMS[a] for a in config["security.digest_algorithms"].split(",")]
    auth = SoapAuthenticator(
        users,
        digest=ServerAuthenticator(DIGEST_REALM, algorithms=algorithms),
        wsse=UsernameTokenVerifier(
            window=config["security.wsse_window_seconds"],
            password_text=PasswordText(config["security.wsse_password_text"]),
            clock=clock,
        ),
        throttle=LoginThrottle(
            max_failures=config["security.login_failures"],
            window=config["security.login_window_seconds"],
            max_lockout=config["security.lockout_max_seconds"],
        ),
    )
    return OnvifContext(
        config=config,
        engine=engine,
        sessions=sessions,
        box=box,
        users=users,
        auth=auth,
        settings=DeviceSettings(sessions),
        reboot=reboot,
        clock=clock,
    )


def warn_if_no_users(users: UserDirectory) -> bool:
    """Log how to create the first user when there is none; True if the table is empty."""
    if users.count():
        return False
    log.warning(
        "no ONVIF users exist, so every authenticated SOAP operation is refused; create an "
        "administrator with: nvr user add NAME --level administrator --password-stdin"
    )
    return True
