"""The host's network facts (:mod:`nvr.onvif.netinfo`) as ONVIF tt: structures."""

from __future__ import annotations

import socket

from nvr.config import Config
from nvr.onvif import netinfo
from nvr.onvif import types_tt as tt


def hostname() -> tt.HostnameInformation:
    return tt.HostnameInformation(FromDHCP=False, Name=socket.gethostname() or None)


def _connection(interface: netinfo.Interface) -> tt.NetworkInterfaceConnectionSetting:
    return tt.NetworkInterfaceConnectionSetting(
        AutoNegotiation=True,
        Speed=interface.speed,
        Duplex="Full" if interface.full_duplex else "Half",
    )


def _ipv4(interface: netinfo.Interface) -> tt.IPv4NetworkInterface | None:
    if interface.ipv4 is None:
        return None
    address = tt.PrefixedIPv4Address(Address=interface.ipv4[0], PrefixLength=interface.ipv4[1])
    config = tt.IPv4Configuration(DHCP=interface.dhcp)
    if interface.dhcp:
        config.FromDHCP = address
    elif interface.ipv4[0].startswith("169.254."):
        config.LinkLocal = address
    else:
        config.Manual = [address]
    return tt.IPv4NetworkInterface(Enabled=True, Config=config)


def network_interfaces() -> list[tt.NetworkInterface]:
    return [
        tt.NetworkInterface(
            token=i.name[:64],
            Enabled=i.enabled,
            Info=tt.NetworkInterfaceInfo(Name=i.name, HwAddress=i.mac, MTU=i.mtu),
            Link=tt.NetworkInterfaceLink(
                AdminSettings=_connection(i), OperSettings=_connection(i), InterfaceType=i.if_type
            ),
            IPv4=_ipv4(i),
        )
        for i in netinfo.interfaces()
    ]


def network_protocols(config: Config) -> list[tt.NetworkProtocol]:
    return [
        tt.NetworkProtocol(Name="HTTP", Enabled=True, Port=[config["http.port"]]),
        tt.NetworkProtocol(Name="RTSP", Enabled=True, Port=[config["rtsp.port"]]),
    ]


def _ip_address(text: str) -> tt.IPAddress | None:
    kind = netinfo.address_kind(text)
    if kind == "IPv4":
        return tt.IPAddress(Type="IPv4", IPv4Address=text)
    if kind == "IPv6":
        return tt.IPAddress(Type="IPv6", IPv6Address=text)
    return None


def dns() -> tt.DNSInformation:
    servers, domains = netinfo.dns()
    addresses = [a for a in (_ip_address(s) for s in servers) if a is not None]
    return tt.DNSInformation(
        FromDHCP=False, SearchDomain=domains or None, DNSManual=addresses or None
    )


def _network_host(text: str) -> tt.NetworkHost:
    kind = netinfo.address_kind(text)
    host = tt.NetworkHost(Type=kind)
    if kind == "IPv4":
        host.IPv4Address = text
    elif kind == "IPv6":
        host.IPv6Address = text
    else:
        host.DNSname = text
    return host


def ntp() -> tt.NTPInformation:
    servers = [_network_host(s) for s in netinfo.ntp_servers()]
    return tt.NTPInformation(FromDHCP=False, NTPManual=servers or None)


def default_gateway() -> tt.NetworkGateway:
    return tt.NetworkGateway(IPv4Address=netinfo.default_gateways() or None)
