"""Read-only facts about the host's network, from Linux's /sys, /proc and /etc.

The device service reports them (GetNetworkInterfaces, GetDNS, GetNTP, GetNetworkDefaultGateway)
but never changes them: an NVR daemon does not own the host's network configuration
(capability ``NetworkConfigNotSupported``). Anything unreadable is simply left out.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SYS_NET: Final = Path("/sys/class/net")
_SIOCGIFADDR: Final = 0x8915
_SIOCGIFNETMASK: Final = 0x891B
_ARPHRD_LOOPBACK: Final = 772
# ARPHRD → IANA ifType: ethernetCsmacd 6, softwareLoopback 24, ieee80211 71, other 1.
_IF_TYPES: Final = {1: 6, _ARPHRD_LOOPBACK: 24, 801: 71, 802: 71, 803: 71}


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    enabled: bool
    mac: str
    mtu: int | None
    if_type: int
    speed: int
    """Mb/s; 0 when unknown."""
    full_duplex: bool
    ipv4: tuple[str, int] | None
    """(address, prefix length) of the primary IPv4 address."""
    dhcp: bool


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or "", 0)
    except ValueError:
        return default


def _ioctl_ipv4(name: str, request: int) -> str | None:
    packed = struct.pack("256s", name.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            result = fcntl.ioctl(sock.fileno(), request, packed)
    except OSError:
        return None
    return socket.inet_ntoa(result[20:24])


def _ipv4(name: str) -> tuple[str, int] | None:
    address = _ioctl_ipv4(name, _SIOCGIFADDR)
    if address is None:
        return None
    mask = _ioctl_ipv4(name, _SIOCGIFNETMASK) or "255.255.255.255"
    return address, ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen


def _interface(path: Path) -> Interface:
    name = path.name
    arp_type = _int(_read(path / "type"), 1)
    if_type = 71 if (path / "wireless").exists() else _IF_TYPES.get(arp_type, 1)
    mtu = _int(_read(path / "mtu"), 0) or None
    index = _read(path / "ifindex") or ""
    return Interface(
        name=name,
        enabled=bool(_int(_read(path / "flags"), 0) & 0x1),
        mac=_read(path / "address") or "00:00:00:00:00:00",
        mtu=mtu,
        if_type=if_type,
        speed=max(0, _int(_read(path / "speed"), 0)),
        full_duplex=(_read(path / "duplex") or "full") != "half",
        ipv4=_ipv4(name),
        dhcp=bool(index) and Path("/run/systemd/netif/leases", index).exists(),
    )


def interfaces(sys_net: Path = SYS_NET) -> list[Interface]:
    """The host's interfaces, loopback only if there is nothing else."""
    try:
        paths = sorted(p for p in sys_net.iterdir() if p.is_dir())
    except OSError:
        paths = []
    found = [_interface(p) for p in paths]
    others = [i for i in found if i.if_type != 24]
    return others or found


def default_gateways(route_file: Path = Path("/proc/net/route")) -> list[str]:
    """IPv4 default gateways from the kernel routing table."""
    gateways: list[str] = []
    text = _read(route_file) or ""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[1] != "00000000":
            continue
        with contextlib.suppress(ValueError, struct.error):
            if not int(fields[3], 16) & 0x2:  # RTF_GATEWAY
                continue
            address = socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
            if address not in gateways:
                gateways.append(address)
    return gateways


def dns(resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[list[str], list[str]]:
    """(name servers, search domains) from resolv.conf."""
    servers: list[str] = []
    domains: list[str] = []
    for line in (_read(resolv_conf) or "").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif len(fields) >= 2 and fields[0] in ("search", "domain"):
            domains.extend(d for d in fields[1:] if d not in domains)
    return servers, domains


_NTP_FILES: Final = (
    Path("/etc/systemd/timesyncd.conf"),
    Path("/etc/chrony/chrony.conf"),
    Path("/etc/chrony.conf"),
    Path("/etc/ntp.conf"),
    Path("/etc/ntpsec/ntp.conf"),
)


def ntp_servers(files: tuple[Path, ...] = _NTP_FILES) -> list[str]:
    """NTP servers named in timesyncd, chrony or ntpd configuration."""
    servers: list[str] = []
    for path in files:
        for line in (_read(path) or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("NTP="):
                names = line[4:].split()
            elif line.split()[:1] in (["server"], ["pool"]):
                names = line.split()[1:2]
            else:
                continue
            servers.extend(n for n in names if n not in servers)
    return servers


def address_kind(text: str) -> str:
    """IPv4, IPv6 or DNS (a host name)."""
    try:
        return "IPv4" if ipaddress.ip_address(text).version == 4 else "IPv6"
    except ValueError:
        return "DNS"
