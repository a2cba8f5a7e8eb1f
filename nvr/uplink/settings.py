"""What an uplink is (``tup:Configuration``) and what it is doing, shared by the Uplink
service, the repository that persists configurations and the connection manager.

Kept free of I/O so each side can import it without pulling in the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class UplinkStatus(StrEnum):
    """``tup:Configuration/Status``."""

    OFFLINE = "Offline"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"


@dataclass(frozen=True, slots=True)
class UplinkConfiguration:
    """One configured uplink; ``remote_address`` (``https://`` or ``wss://``) is its key.

    Exactly one of ``certificate_id`` (mTLS) and ``authorization_server`` (AccessToken) is set.
    """

    remote_address: str
    user_level: tuple[str, ...]
    certificate_id: str | None = None
    cert_path_validation_policy_id: str | None = None
    authorization_server: str | None = None


@dataclass(frozen=True, slots=True)
class UplinkState:
    """Live status of one uplink and the last error, for GetUplinks."""

    status: UplinkStatus = UplinkStatus.OFFLINE
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A keystore entry the device can present for mTLS: PEM chain and PEM private key."""

    certificate_id: str
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class AuthorizationServer:
    """An OAuth2 authorization server the device gets uplink access tokens from
    (client-credentials grant)."""

    token: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    ca_file: Path | None = None
    """Trust anchors for the token endpoint's certificate; None = the system's."""


class Keystore(Protocol):
    """Where the connection manager finds the TLS material a configuration names."""

    def certificate(self, certificate_id: str) -> ClientCertificate | None: ...

    def trust_anchors(self, policy_id: str) -> Path | None:
        """PEM bundle of the CAs a certification path validation policy trusts."""
        ...

    def authorization_server(self, token: str) -> AuthorizationServer | None: ...
