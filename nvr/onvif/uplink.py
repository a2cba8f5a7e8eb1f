"""The ONVIF Uplink service (uplink.wsdl) at ``/onvif/uplink_service`` (uplink.md A.6).

Configurations are persisted by :class:`~nvr.uplink.repository.UplinkRepository`; the IDs a
configuration names (client certificate, validation policy, authorization server) must exist
in the uplink keystore the operator fills with ``nvr keystore``. After every change the
daemon's connection manager (``daemon.uplinks``, absent in setups without one) gets the new
list; GetUplinks reports its live status per address, ``Offline`` when there is no manager.

SetUplink checks, in this order: the address (``https``/``wss`` absolute URI, else
``InvalidArgs/ProtocolNotSupported``), the authentication mode (exactly one of CertificateID
and AuthorizationServer: ``InvalidArgs/MissingAuthentication`` or
``…/AmbiguousAuthentication``), the keystore IDs (``InvalidArgVal/CertificateID``,
``…/AuthorizationServerConfigurationToken``, ``…/CertPathValidationPolicyID``), the user
levels (``InvalidArgVal/UserLevel``), then the limit for a new address
(``env:Receiver/ter:Action/ter:MaxUplinks``, as the Receiver service's MaxReceivers).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from spyne import AnyUri, rpc

from nvr.onvif import uplink_types as ut
from nvr.onvif.access import Level
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.endpoints import BackendEndpoint, serve_endpoint
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TUP
from nvr.onvif.operations import compose
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.soap import SoapService
from nvr.onvif.types_tt import repeated, required
from nvr.onvif.uplink_policy import UPLINK_ACCESS, UPLINK_OPERATIONS
from nvr.uplink.keystore import FileKeystore
from nvr.uplink.repository import MAX_ADDRESS_LENGTH, UplinkLimitReached, UplinkRepository
from nvr.uplink.settings import Keystore, UplinkConfiguration, UplinkState

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.onvif.context import OnvifContext

log = logging.getLogger("nvr.onvif.uplink")

UPLINK_PATH: Final = "/onvif/uplink_service"
UPLINK_VERSION: Final = (26, 6)
"""uplink.wsdl schema version we implement."""
PROTOCOLS: Final = ("https", "wss")
AUTHORIZATION_MODES: Final = ("mTLS", "AccessToken")
USER_LEVELS: Final = (Level.ADMINISTRATOR.value, Level.OPERATOR.value, Level.USER.value)
"""What UserLevel may list: the tt:UserLevel values a user can hold (no roles: MaxUserRoles 0)."""


class UplinkStates(Protocol):
    """What the service needs of the connection manager (``nvr.uplink`` ``UplinkManager``)."""

    def update(self, configs: list[UplinkConfiguration]) -> None: ...

    def state(self, remote_address: str) -> UplinkState: ...


@dataclass(frozen=True)
class UplinkBackend:
    """Persistence, keystore and the connection manager (looked up per call: it starts late)."""

    repository: UplinkRepository
    keystore: Keystore
    max_uplinks: int
    manager: Callable[[], UplinkStates | None]

    def capabilities(self) -> ut.Capabilities:
        return ut.Capabilities(
            MaxUplinks=self.max_uplinks,
            Protocols=" ".join(PROTOCOLS),
            AuthorizationModes=" ".join(AUTHORIZATION_MODES),
            StreamingOverUplink=True,
        )

    def state(self, remote_address: str) -> UplinkState:
        manager = self.manager()
        return UplinkState() if manager is None else manager.state(remote_address)

    def changed(self) -> None:
        """Hand the manager the new list; the change is saved even if that fails."""
        manager = self.manager()
        if manager is None:
            return
        try:
            manager.update(self.repository.list())
        except Exception:
            log.exception("the uplink manager did not take the new configurations")


_backend: contextvars.ContextVar[UplinkBackend] = contextvars.ContextVar("uplink_backend")


# ---- pure helpers ------------------------------------------------------------------------------


def check_address(address: str | None) -> str:
    """An ``https://`` or ``wss://`` absolute URI with a host, else ProtocolNotSupported."""
    text = (address or "").strip()
    if len(text) > MAX_ADDRESS_LENGTH:
        raise OnvifFault.sender(
            "InvalidArgVal", "Address", f"RemoteAddress longer than {MAX_ADDRESS_LENGTH}"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        parts = None
    usable = (
        parts is not None
        and parts.scheme.lower() in PROTOCOLS
        and bool(parts.hostname)
        and not any(c.isspace() or ord(c) < 0x20 for c in text)
    )
    if not usable:
        raise OnvifFault.sender(
            "InvalidArgs",
            "ProtocolNotSupported",
            f"RemoteAddress {text[:200]!r} is not an https:// or wss:// URI with a host",
        )
    return text


def check_user_levels(text: str | None) -> tuple[str, ...]:
    levels = tuple((text or "").split())
    wrong = [item for item in levels if item not in USER_LEVELS]
    if not levels or wrong:
        what = f"{wrong[0][:64]!r} is not" if wrong else "no user level is"
        raise OnvifFault.sender(
            "InvalidArgVal",
            "UserLevel",
            f"{what} a user level the uplink can grant: use {', '.join(USER_LEVELS)}",
        )
    return levels


def _optional(text: str | None) -> str | None:
    return text if text else None


def configuration(wire: ut.Configuration, keystore: Keystore) -> UplinkConfiguration:
    """A checked configuration from a SetUplink request (Status and Error are ignored)."""
    address = check_address(wire.RemoteAddress)
    certificate = _optional(wire.CertificateID)
    server = _optional(wire.AuthorizationServer)
    policy = _optional(wire.CertPathValidationPolicyID)
    if certificate is None and server is None:
        raise OnvifFault.sender(
            "InvalidArgs",
            "MissingAuthentication",
            "set CertificateID (mTLS) or AuthorizationServer (AccessToken)",
        )
    if certificate is not None and server is not None:
        raise OnvifFault.sender(
            "InvalidArgs",
            "AmbiguousAuthentication",
            "set either CertificateID (mTLS) or AuthorizationServer (AccessToken), not both",
        )
    if certificate is not None and keystore.certificate(certificate) is None:
        raise OnvifFault.sender(
            "InvalidArgVal", "CertificateID", f"no certificate {certificate[:64]!r} in the keystore"
        )
    if server is not None and keystore.authorization_server(server) is None:
        raise OnvifFault.sender(
            "InvalidArgVal",
            "AuthorizationServerConfigurationToken",
            f"no authorization server {server[:64]!r} in the keystore",
        )
    if policy is not None and keystore.trust_anchors(policy) is None:
        raise OnvifFault.sender(
            "InvalidArgVal",
            "CertPathValidationPolicyID",
            f"no certification path validation policy {policy[:64]!r} in the keystore",
        )
    return UplinkConfiguration(
        remote_address=address,
        user_level=check_user_levels(wire.UserLevel),
        certificate_id=certificate,
        cert_path_validation_policy_id=policy,
        authorization_server=server,
    )


def wire_configuration(cfg: UplinkConfiguration, state: UplinkState) -> ut.Configuration:
    return ut.Configuration(
        RemoteAddress=cfg.remote_address,
        CertificateID=cfg.certificate_id,
        UserLevel=" ".join(cfg.user_level),
        Status=state.status.value,
        CertPathValidationPolicyID=cfg.cert_path_validation_policy_id,
        AuthorizationServer=cfg.authorization_server,
        Error=state.error or None,
    )


# ---- the service -------------------------------------------------------------------------------


class UplinkMethods:
    """Namespace of the uplink operations (composed into one spyne service)."""

    @rpc(_returns=required(ut.Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> ut.Capabilities:
        return _backend.get().capabilities()

    @rpc(_returns=repeated(ut.Configuration), _out_variable_name="Configuration")
    def GetUplinks(ctx: Any) -> list[ut.Configuration]:
        backend = _backend.get()
        configs = backend.repository.list()
        return [wire_configuration(c, backend.state(c.remote_address)) for c in configs]

    @rpc(required(ut.Configuration))
    def SetUplink(ctx: Any, Configuration: ut.Configuration) -> None:
        backend = _backend.get()
        cfg = configuration(Configuration, backend.keystore)
        try:
            backend.repository.upsert(cfg, max_count=backend.max_uplinks)
        except UplinkLimitReached:
            raise OnvifFault.receiver(
                "Action", "MaxUplinks", f"{backend.max_uplinks} uplinks are configured already"
            ) from None
        backend.changed()

    @rpc(AnyUri.customize(min_occurs=1))
    def DeleteUplink(ctx: Any, RemoteAddress: str | None) -> None:
        backend = _backend.get()
        address = (RemoteAddress or "").strip()
        if not backend.repository.delete(address):
            raise OnvifFault.sender(
                "InvalidArgVal", "Address", f"no uplink to {address[:200]!r} is configured"
            )
        backend.changed()


@cache
def uplink_service() -> SoapService:
    """The uplink service definition (built once per process: spyne apps are costly)."""
    return SoapService(
        name="UplinkService",
        namespace=TUP,
        services=(compose("UplinkService", [UplinkMethods], UPLINK_OPERATIONS),),
        access=UPLINK_ACCESS,
    )


def uplink_entry(backend: UplinkBackend) -> ServiceEntry:
    """GetServices lists it; tt:Capabilities (GetCapabilities) has no slot for uplinks."""
    return ServiceEntry(
        namespace=TUP,
        path=UPLINK_PATH,
        version=UPLINK_VERSION,
        capabilities=lambda: model_element(backend.capabilities(), ut.Capabilities, "Capabilities"),
    )


def mount_uplink(app: FastAPI, context: OnvifContext, daemon: Any) -> UplinkBackend:
    """Serve the Uplink service; ``daemon.uplinks`` (the connection manager) is read per call."""
    backend = UplinkBackend(
        repository=UplinkRepository(context.sessions),
        keystore=FileKeystore.for_config(context.config),
        max_uplinks=int(context.config["uplink.max_uplinks"]),
        manager=lambda: getattr(daemon, "uplinks", None),
    )
    endpoint = BackendEndpoint(uplink_service(), context, backend, _backend)
    serve_endpoint(app, context, UPLINK_PATH, endpoint, uplink_entry(backend))
    return backend


__all__ = [
    "UPLINK_PATH",
    "UplinkBackend",
    "UplinkMethods",
    "check_address",
    "configuration",
    "mount_uplink",
    "uplink_service",
]
