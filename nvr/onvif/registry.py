"""The services this device offers, as GetServices and GetCapabilities report them.

Each mounted service adds one :class:`ServiceEntry`; the device service never needs to know
the others. ``capabilities`` builds the service's own ``<xxx:Capabilities>`` element (for
GetServices with IncludeCapability); ``legacy`` builds its part of the old GetCapabilities
answer, a spyne ``tt:`` model placed in the slot named by ``legacy_slot``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from nvr.onvif.types_tt import Capabilities, CapabilitiesExtension

# Where a service's legacy capabilities may go: a top-level element of tt:Capabilities or a
# child of tt:Capabilities/tt:Extension (the parts types_tt models).
TOP_LEVEL_SLOTS: Final = tuple(
    k for k in Capabilities._type_info if k not in ("Device", "Extension")
)
EXTENSION_SLOTS: Final = tuple(CapabilitiesExtension._type_info)


@dataclass(frozen=True)
class ServiceEntry:
    namespace: str
    path: str
    """Absolute path of the endpoint, e.g. ``/onvif/device_service``."""
    version: tuple[int, int]
    capabilities: Callable[[], etree._Element] | None = None
    legacy_slot: str | None = None
    legacy: Callable[[str], Any] | None = None
    """Given the service's XAddr, the tt: capabilities model instance for ``legacy_slot``."""

    def __post_init__(self) -> None:
        if self.legacy_slot is not None and self.legacy_slot not in (
            TOP_LEVEL_SLOTS + EXTENSION_SLOTS
        ):
            raise ValueError(f"unknown legacy capabilities slot {self.legacy_slot!r}")

    def xaddr(self, base_url: str) -> str:
        return base_url + self.path


class ServiceRegistry:
    """Registered services in registration order (the device service first)."""

    def __init__(self) -> None:
        self._entries: dict[str, ServiceEntry] = {}
        self._lock = threading.Lock()

    def register(self, entry: ServiceEntry) -> None:
        with self._lock:
            if entry.namespace in self._entries:
                raise ValueError(f"service {entry.namespace} is already registered")
            self._entries[entry.namespace] = entry

    def entries(self) -> list[ServiceEntry]:
        with self._lock:
            return list(self._entries.values())

    def get(self, namespace: str) -> ServiceEntry | None:
        with self._lock:
            return self._entries.get(namespace)

    def by_slot(self, slot: str) -> ServiceEntry | None:
        return next((e for e in self.entries() if e.legacy_slot == slot), None)
