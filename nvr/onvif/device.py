"""The ONVIF Device service (devicemgmt.wsdl) at ``/onvif/device_service``.

Handlers are thin: each reads the shared context, delegates to a module with one job
(capabilities, time, scopes, users, network) and returns spyne models. Operations of the WSDL
without a handler here are answered ``ActionNotSupported`` by :func:`~nvr.onvif.operations.compose`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from spyne import AnyUri, Boolean, Unicode, rpc

from nvr import __version__
from nvr.onvif import device_network as network
from nvr.onvif import device_scopes as scopes
from nvr.onvif import device_users as users
from nvr.onvif import types_tt as tt
from nvr.onvif.device_capabilities import DEVICE_PATH, legacy_capabilities, service_capabilities
from nvr.onvif.device_policy import DEVICE_ACCESS, DEVICE_OPERATIONS
from nvr.onvif.device_time import apply_set, system_date_time
from nvr.onvif.device_types import DeviceServiceCapabilities, Service
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TDS
from nvr.onvif.operations import compose
from nvr.onvif.request import soap_request
from nvr.onvif.soap import SoapService
from nvr.onvif.types_tt import repeated, required


class DeviceMethods:
    """Namespace of the implemented device operations (composed into one spyne service)."""

    @rpc(required(Boolean), _returns=repeated(Service, 1), _out_variable_name="Service")
    def GetServices(ctx: Any, IncludeCapability: bool) -> list[Service]:
        request = soap_request(ctx)
        base = request.http.base_url
        services = []
        for entry in request.context.registry.entries():
            service = Service(
                Namespace=entry.namespace,
                XAddr=entry.xaddr(base),
                Version=tt.OnvifVersion(Major=entry.version[0], Minor=entry.version[1]),
            )
            if IncludeCapability and entry.capabilities is not None:
                service.Capabilities = entry.capabilities()
            services.append(service)
        return services

    @rpc(_returns=required(DeviceServiceCapabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> DeviceServiceCapabilities:
        return service_capabilities(soap_request(ctx).context)

    @rpc(
        repeated(tt.CapabilityCategory),
        _returns=required(tt.Capabilities),
        _out_variable_name="Capabilities",
    )
    def GetCapabilities(ctx: Any, Category: Sequence[str] | None) -> tt.Capabilities:
        request = soap_request(ctx)
        return legacy_capabilities(request.context, request.http.base_url, Category or ())

    @rpc(
        _returns=(Unicode, Unicode, Unicode, Unicode, Unicode),
        _out_variable_names=(
            "Manufacturer",
            "Model",
            "FirmwareVersion",
            "SerialNumber",
            "HardwareId",
        ),
    )
    def GetDeviceInformation(ctx: Any) -> tuple[str, str, str, str, str]:
        context = soap_request(ctx).context
        config = context.config
        return (
            config["device.manufacturer"],
            config["device.model"],
            __version__,
            config["device.serial_number"] or context.settings.endpoint_uuid(),
            config["device.hardware_id"] or config["device.model"],
        )

    @rpc(_returns=required(tt.SystemDateTime), _out_variable_name="SystemDateAndTime")
    def GetSystemDateAndTime(ctx: Any) -> tt.SystemDateTime:
        context = soap_request(ctx).context
        return system_date_time(context.settings.date_time(), context.clock())

    @rpc(
        required(tt.SetDateTimeType),
        required(Boolean),
        tt.TimeZone,
        tt.DateTime,
    )
    def SetSystemDateAndTime(
        ctx: Any,
        DateTimeType: str,
        DaylightSavings: bool,
        TimeZone: tt.TimeZone | None,
        UTCDateTime: tt.DateTime | None,
    ) -> None:
        context = soap_request(ctx).context
        settings = apply_set(
            context.settings.date_time(),
            date_time_type=DateTimeType,
            daylight_savings=DaylightSavings,
            time_zone=TimeZone,
            utc_date_time=UTCDateTime,
            now=context.clock(),
        )
        context.settings.set_date_time(settings)

    @rpc(_returns=repeated(tt.Scope, 1), _out_variable_name="Scopes")
    def GetScopes(ctx: Any) -> list[tt.Scope]:
        context = soap_request(ctx).context
        return scopes.all_scopes(context.config, context.settings)

    @rpc(repeated(AnyUri, 1))
    def SetScopes(ctx: Any, Scopes: Sequence[str]) -> None:
        context = soap_request(ctx).context
        scopes.set_scopes(context.config, context.settings, Scopes or ())

    @rpc(repeated(AnyUri, 1))
    def AddScopes(ctx: Any, ScopeItem: Sequence[str]) -> None:
        context = soap_request(ctx).context
        scopes.add_scopes(context.config, context.settings, ScopeItem or ())

    @rpc(repeated(AnyUri, 1), _returns=repeated(AnyUri), _out_variable_name="ScopeItem")
    def RemoveScopes(ctx: Any, ScopeItem: Sequence[str]) -> list[str]:
        context = soap_request(ctx).context
        return scopes.remove_scopes(context.config, context.settings, ScopeItem or ())

    @rpc(_returns=required(tt.DiscoveryModeType), _out_variable_name="DiscoveryMode")
    def GetDiscoveryMode(ctx: Any) -> str:
        return soap_request(ctx).context.settings.discovery_mode()

    @rpc(required(tt.DiscoveryModeType))
    def SetDiscoveryMode(ctx: Any, DiscoveryMode: str) -> None:
        if DiscoveryMode not in ("Discoverable", "NonDiscoverable"):
            raise OnvifFault.sender("InvalidArgVal", f"invalid discovery mode {DiscoveryMode!r}")
        soap_request(ctx).context.settings.set_discovery_mode(DiscoveryMode)

    @rpc(_returns=required(Unicode), _out_variable_name="GUID")
    def GetEndpointReference(ctx: Any) -> str:
        return "urn:uuid:" + soap_request(ctx).context.settings.endpoint_uuid()

    @rpc(_returns=repeated(tt.User), _out_variable_name="User")
    def GetUsers(ctx: Any) -> list[tt.User]:
        return users.list_users(soap_request(ctx).context)

    @rpc(repeated(tt.User, 1))
    def CreateUsers(ctx: Any, User: Sequence[tt.User]) -> None:
        users.create_users(soap_request(ctx).context, User or ())

    @rpc(repeated(Unicode, 1))
    def DeleteUsers(ctx: Any, Username: Sequence[str]) -> None:
        users.delete_users(soap_request(ctx).context, Username or ())

    @rpc(repeated(tt.User, 1))
    def SetUser(ctx: Any, User: Sequence[tt.User]) -> None:
        users.set_users(soap_request(ctx).context, User or ())

    @rpc(_returns=required(AnyUri), _out_variable_name="WsdlUrl")
    def GetWsdlUrl(ctx: Any) -> str:
        return soap_request(ctx).http.base_url + DEVICE_PATH + "?wsdl"

    @rpc(_returns=required(tt.HostnameInformation), _out_variable_name="HostnameInformation")
    def GetHostname(ctx: Any) -> tt.HostnameInformation:
        return network.hostname()

    @rpc(_returns=repeated(tt.NetworkInterface, 1), _out_variable_name="NetworkInterfaces")
    def GetNetworkInterfaces(ctx: Any) -> list[tt.NetworkInterface]:
        interfaces = network.network_interfaces()
        if not interfaces:
            raise OnvifFault.receiver("Action", "no network interface could be read")
        return interfaces

    @rpc(_returns=repeated(tt.NetworkProtocol), _out_variable_name="NetworkProtocols")
    def GetNetworkProtocols(ctx: Any) -> list[tt.NetworkProtocol]:
        return network.network_protocols(soap_request(ctx).context.config)

    @rpc(_returns=required(tt.NTPInformation), _out_variable_name="NTPInformation")
    def GetNTP(ctx: Any) -> tt.NTPInformation:
        return network.ntp()

    @rpc(_returns=required(tt.DNSInformation), _out_variable_name="DNSInformation")
    def GetDNS(ctx: Any) -> tt.DNSInformation:
        return network.dns()

    @rpc(_returns=required(tt.NetworkGateway), _out_variable_name="NetworkGateway")
    def GetNetworkDefaultGateway(ctx: Any) -> tt.NetworkGateway:
        return network.default_gateway()

    @rpc(_returns=required(Unicode), _out_variable_name="Message")
    def SystemReboot(ctx: Any) -> str:
        request = soap_request(ctx)
        request.after_response.append(request.context.reboot)
        return "The nvr service restarts now; it will be back in a few seconds."


@cache
def device_service() -> SoapService:
    """The device service definition (built once per process: spyne apps are costly)."""
    return SoapService(
        name="DeviceService",
        namespace=TDS,
        services=(compose("DeviceService", [DeviceMethods], DEVICE_OPERATIONS),),
        access=DEVICE_ACCESS,
    )


__all__ = ["DEVICE_PATH", "DeviceMethods", "device_service"]
