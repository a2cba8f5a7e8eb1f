"""Where WS-Discovery listens and announces, and the socket for it.

It follows the HTTP server: ``discovery.interface`` if set, else ``http.host`` when that is one
address, else every interface with an IPv4 address; XAddrs name those addresses. When only
loopback remains (a daemon bound to 127.0.0.1, as the tests run it) nothing is multicast at
all: the responder binds the loopback address and answers probes sent to it directly.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from nvr.config import Config
from nvr.onvif import netinfo
from nvr.onvif.device_capabilities import DEVICE_PATH

log = logging.getLogger("nvr.onvif.discovery")


@dataclass(frozen=True, slots=True)
class Network:
    """Where the responder listens and where its Hello/Bye go."""

    bind: tuple[str, int]
    group: str | None = None
    """Multicast group joined on each of ``interfaces`` (None: unicast only)."""
    interfaces: tuple[str, ...] = ()
    announce: tuple[tuple[str, int], ...] = ()
    """Unicast destinations of Hello/Bye (besides the group)."""


def addresses(config: Config) -> list[str]:
    """The local IPv4 addresses discovery serves, loopback only if nothing else is left."""
    chosen = config["discovery.interface"] or config["http.host"]
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(chosen)
        if address.version == 4 and not address.is_unspecified:
            return [str(address)]
    found = [i.ipv4[0] for i in netinfo.interfaces() if i.enabled and i.ipv4]
    outside = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return outside or found or ["127.0.0.1"]


def network(config: Config) -> Network:
    local = addresses(config)
    port = config["discovery.port"]
    if all(ipaddress.ip_address(a).is_loopback for a in local):
        return Network(bind=(local[0], port))
    return Network(bind=("", port), group=config["discovery.group"], interfaces=tuple(local))


def xaddrs(config: Config) -> tuple[str, ...]:
    port = config["http.port"]
    return tuple(f"http://{a}:{port}{DEVICE_PATH}" for a in addresses(config))


def open_socket(net: Network) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(net.bind)
        if net.group is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            group = socket.inet_aton(net.group)
            for interface in net.interfaces:
                try:
                    request = group + socket.inet_aton(interface)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
                except OSError as error:
                    log.warning(
                        "WS-Discovery: cannot join %s on %s: %s", net.group, interface, error
                    )
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
