"""Who is exporting: the ``suep`` ExportUnit fields of this device."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from nvr.export.onvif_file import ExportUnit

if TYPE_CHECKING:
    from nvr.config import Config

_SYS_NET = Path("/sys/class/net")


def _format_mac(value: int) -> str:
    return ":".join(f"{(value >> s) & 0xFF:02X}" for s in range(40, -8, -8))


def primary_mac(sys_net: Path = _SYS_NET) -> str:
    """The MAC of the first real network interface that is up (then any), "" if none."""
    candidates: list[tuple[bool, str, str]] = []
    try:
        for iface in sorted(sys_net.iterdir()):
            if iface.name == "lo":
                continue
            try:
                mac = (iface / "address").read_text().strip().upper()
                up = (iface / "operstate").read_text().strip() == "up"
            except OSError:
                continue
            if len(mac) == 17 and mac != "00:00:00:00:00:00":
                candidates.append((not up, iface.name, mac))
    except OSError:
        pass
    if candidates:
        return min(candidates)[2]
    node = uuid.getnode()
    return "" if node >> 40 & 1 else _format_mac(node)  # multicast bit: a random stand-in


def local_unit(config: Config) -> ExportUnit:
    """Name (``device.name`` or the host name), device service URL, MAC."""
    name = config.values.get("device.name") or socket.gethostname()
    host = config["http.host"]
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{config['http.port']}/onvif/device_service"
    return ExportUnit(name=name, url=url, mac=primary_mac())
