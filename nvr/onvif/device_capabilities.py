"""What the device service announces: tds:DeviceServiceCapabilities, the legacy tt:Capabilities
(GetCapabilities) and its own GetServices entry.

The flags are true only for what is implemented: HTTP Digest (the configured algorithms) and
UsernameToken, the default access policy, no network/TLS/firmware/backup management.
WS-Discovery (:mod:`nvr.onvif.discovery`) answers Resolve and sends Bye, unless it is switched
off in the configuration, when the device announces no discovery at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from lxml import etree
from spyne.util.xml import get_object_as_xml

from nvr.onvif import types_tt as tt
from nvr.onvif.device_types import (
    DeviceServiceCapabilities,
    NetworkCapabilities,
    SecurityCapabilities,
    SystemCapabilities,
)
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TDS
from nvr.onvif.registry import ServiceEntry
from nvr.users import MAX_PASSWORD

if TYPE_CHECKING:
    from nvr.onvif.context import OnvifContext

DEVICE_PATH: Final = "/onvif/device_service"
DEVICE_VERSION: Final = (26, 6)
"""devicemgmt.wsdl release we implement (schema version 26.06)."""
MAX_USERS: Final = 32
MAX_USERNAME_LENGTH: Final = 64
"""nvr.users.NAME_RE allows 1 to 64 characters."""
MAX_PASSWORD_LENGTH: Final = MAX_PASSWORD


def discovery_enabled(context: OnvifContext) -> bool:
    return bool(context.config["discovery.enabled"])


def service_capabilities(context: OnvifContext) -> DeviceServiceCapabilities:
    discovery = discovery_enabled(context)
    return DeviceServiceCapabilities(
        Network=NetworkCapabilities(
            IPFilter=False,
            ZeroConfiguration=False,
            IPVersion6=False,
            DynDNS=False,
            Dot11Configuration=False,
            Dot1XConfigurations=0,
            HostnameFromDHCP=False,
            NTP=0,
            DHCPv6=False,
        ),
        Security=SecurityCapabilities(
            TLS1_0=False,
            TLS1_1=False,
            TLS1_2=False,
            OnboardKeyGeneration=False,
            AccessPolicyConfig=False,
            DefaultAccessPolicy=True,
            Dot1X=False,
            RemoteUserHandling=False,
            X_509Token=False,
            SAMLToken=False,
            KerberosToken=False,
            UsernameToken=True,
            HttpDigest=True,
            RELToken=False,
            JsonWebToken=False,
            MaxUsers=MAX_USERS,
            MaxUserNameLength=MAX_USERNAME_LENGTH,
            MaxPasswordLength=MAX_PASSWORD_LENGTH,
            HashingAlgorithms=" ".join(context.digest_algorithms),
        ),
        System=SystemCapabilities(
            DiscoveryResolve=discovery,
            DiscoveryBye=discovery,
            RemoteDiscovery=False,
            SystemBackup=False,
            SystemLogging=False,
            HttpFirmwareUpgrade=False,
            HttpSystemBackup=False,
            HttpSystemLogging=False,
            HttpSupportInformation=False,
            StorageConfiguration=False,
            DiscoveryNotSupported=not discovery,
            NetworkConfigNotSupported=True,
            UserConfigNotSupported=False,
        ),
    )


def model_element(instance: Any, cls: type, name: str) -> etree._Element:
    """A spyne model instance as a standalone element named ``name`` in the type's namespace."""
    return get_object_as_xml(instance, cls, name)


def legacy_device(xaddr: str, discovery: bool) -> tt.DeviceCapabilities:
    return tt.DeviceCapabilities(
        XAddr=xaddr,
        Network=tt.NetworkCapabilities(
            IPFilter=False, ZeroConfiguration=False, IPVersion6=False, DynDNS=False
        ),
        System=tt.SystemCapabilities(
            DiscoveryResolve=discovery,
            DiscoveryBye=discovery,
            RemoteDiscovery=False,
            SystemBackup=False,
            SystemLogging=False,
            FirmwareUpgrade=False,
            SupportedVersions=[tt.OnvifVersion(Major=DEVICE_VERSION[0], Minor=DEVICE_VERSION[1])],
        ),
        IO=tt.IOCapabilities(InputConnectors=0, RelayOutputs=0),
        Security=tt.SecurityCapabilities(
            TLS1_1=False,
            TLS1_2=False,
            OnboardKeyGeneration=False,
            AccessPolicyConfig=False,
            X_509Token=False,
            SAMLToken=False,
            KerberosToken=False,
            RELToken=False,
        ),
    )


def legacy_capabilities(
    context: OnvifContext, base_url: str, categories: Iterable[str]
) -> tt.Capabilities:
    """GetCapabilities: ``All`` (or nothing) gives everything; unknown categories fault."""
    wanted = set(categories) or {"All"}
    everything = "All" in wanted
    result = tt.Capabilities()
    if everything or "Device" in wanted:
        result.Device = legacy_device(base_url + DEVICE_PATH, discovery_enabled(context))
    extension = tt.CapabilitiesExtension()
    for entry in context.registry.entries():
        slot = entry.legacy_slot
        if slot is None or entry.legacy is None or not (everything or slot in wanted):
            continue
        target = result if slot in tt.Capabilities._type_info else extension
        setattr(target, slot, entry.legacy(entry.xaddr(base_url)))
    if everything and any(getattr(extension, k) is not None for k in extension._type_info):
        result.Extension = extension
    missing = sorted(wanted - {"All", "Device"} - {k for k in wanted if getattr(result, k, None)})
    if missing:
        raise OnvifFault.receiver(
            "ActionNotSupported", "NoSuchService", f"no {missing[0]} service on this device"
        )
    return result


def device_entry(context: OnvifContext) -> ServiceEntry:
    return ServiceEntry(
        namespace=TDS,
        path=DEVICE_PATH,
        version=DEVICE_VERSION,
        capabilities=lambda: model_element(
            service_capabilities(context), DeviceServiceCapabilities, "Capabilities"
        ),
    )
