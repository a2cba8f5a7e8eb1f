"""Discovery scopes: fixed ones describing the device, configurable ones a VMS sets.

Fixed: ``Profile/G``, ``type/Network_Video_Storage`` (the scope type ONVIF recorders
announce), ``hardware/<model>`` and ``name/<device name>``. Configurable scopes are persisted
and replaced/extended/shrunk with the faults of Core §8.3 (ScopeOverwrite, TooManyScopes,
FixedScope, NoScope). WS-Discovery answers from the same list.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Final
from urllib.parse import quote

from nvr.config import Config
from nvr.onvif import types_tt as tt
from nvr.onvif.device_settings import DeviceSettings
from nvr.onvif.faults import OnvifFault

ONVIF_SCOPE: Final = "onvif://www.onvif.org/"
MAX_CONFIGURABLE: Final = 32
MAX_SCOPE_LENGTH: Final = 512
_URI_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_lock = threading.Lock()


def device_name(config: Config) -> str:
    return config["device.name"] or socket.gethostname() or "nvr"


def fixed_scopes(config: Config) -> list[str]:
    return [
        ONVIF_SCOPE + "Profile/G",
        ONVIF_SCOPE + "type/Network_Video_Storage",
        ONVIF_SCOPE + "hardware/" + quote(config["device.model"], safe=""),
        ONVIF_SCOPE + "name/" + quote(device_name(config), safe=""),
    ]


def all_scopes(config: Config, settings: DeviceSettings) -> list[tt.Scope]:
    fixed = [tt.Scope(ScopeDef="Fixed", ScopeItem=s) for s in fixed_scopes(config)]
    return fixed + [tt.Scope(ScopeDef="Configurable", ScopeItem=s) for s in settings.scopes()]


def _checked(items: Iterable[str | None]) -> list[str]:
    """Validated, de-duplicated scope URIs in request order."""
    out: list[str] = []
    for item in items:
        text = (item or "").strip()
        if not _URI_RE.match(text) or len(text) > MAX_SCOPE_LENGTH:
            raise OnvifFault.sender("InvalidArgVal", f"invalid scope URI {text[:80]!r}")
        if text not in out:
            out.append(text)
    return out


def _too_many() -> OnvifFault:
    return OnvifFault.receiver(
        "Action", "TooManyScopes", f"at most {MAX_CONFIGURABLE} configurable scopes"
    )


def set_scopes(config: Config, settings: DeviceSettings, items: Sequence[str | None]) -> None:
    scopes = _checked(items)
    fixed = set(fixed_scopes(config))
    clash = next((s for s in scopes if s in fixed), None)
    if clash is not None:
        raise OnvifFault.sender(
            "OperationProhibited", "ScopeOverwrite", f"{clash} is a fixed scope"
        )
    if len(scopes) > MAX_CONFIGURABLE:
        raise _too_many()
    with _lock:
        settings.set_scopes(scopes)


def add_scopes(config: Config, settings: DeviceSettings, items: Sequence[str | None]) -> None:
    fixed = set(fixed_scopes(config))
    with _lock:
        current = settings.scopes()
        new = [s for s in _checked(items) if s not in fixed and s not in current]
        if len(current) + len(new) > MAX_CONFIGURABLE:
            raise _too_many()
        if new:
            settings.set_scopes(current + new)


def remove_scopes(
    config: Config, settings: DeviceSettings, items: Sequence[str | None]
) -> list[str]:
    """Remove all of ``items`` or none; returns what was removed."""
    fixed = set(fixed_scopes(config))
    wanted = [(item or "").strip() for item in items]
    with _lock:
        current = settings.scopes()
        for item in wanted:
            if item in fixed:
                raise OnvifFault.sender(
                    "OperationProhibited", "FixedScope", f"{item} is a fixed scope"
                )
            if item not in current:
                raise OnvifFault.sender("InvalidArgVal", "NoScope", f"no scope {item[:80]!r}")
        settings.set_scopes([s for s in current if s not in wanted])
    return list(dict.fromkeys(wanted))
