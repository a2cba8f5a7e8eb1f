"""Where spyne falls short for the Event service: dispatching ``wsnt:`` requests, and its WSDL.

* spyne dispatches on ``{service namespace}name`` whatever namespace a request element is
  in, so Renew and Unsubscribe (``wsnt:`` elements) are re-keyed under their real names; the
  request gate then finds them, and their access classes, by the Body's first child.
* Its WSDL declares members taken from another schema (``sub_ns``, e.g. ``wsnt:CurrentTime``)
  as local elements of the message's own namespace, writes XmlData(AnyXml) content as
  simpleContent of anyType (which no schema processor accepts), and references the messages of
  ``wsnt:`` operations under the wrong prefix. :func:`fix_wsdl` states what is really sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, Final, NamedTuple

from lxml import etree

from nvr.onvif.events_policy import WSNT_OPERATIONS
from nvr.onvif.faults import SoapVersion
from nvr.onvif.namespaces import WSNT, clark
from nvr.onvif.soap import SoapService

_XS: Final = "{http://www.w3.org/2001/XMLSchema}"
_WSDL: Final = "{http://schemas.xmlsoap.org/wsdl/}"


class Foreign(NamedTuple):
    """A member of a message type that is an element of another schema."""

    namespace: str
    message: str
    member: str
    member_namespace: str


def foreign_members(interface: Any) -> Iterator[Foreign]:
    for descriptors in interface.service_method_map.values():
        for descriptor in descriptors:
            for message in (descriptor.in_message, descriptor.out_message):
                namespace = message.get_namespace()
                for name, member in message._type_info.items():
                    sub_ns = member.Attributes.sub_ns
                    if isinstance(sub_ns, str) and sub_ns != namespace:
                        yield Foreign(namespace, message.get_type_name(), name, sub_ns)


def _schemas(root: etree._Element) -> dict[str, etree._Element]:
    return {s.get("targetNamespace", ""): s for s in root.iter(f"{_XS}schema")}


def _any_elements(root: etree._Element) -> None:
    for content in list(root.iter(f"{_XS}simpleContent")):
        extension = content.find(f"{_XS}extension")
        if extension is None or extension.get("base") != "xs:anyType" or len(extension):
            continue
        sequence = etree.Element(f"{_XS}sequence")
        etree.SubElement(
            sequence,
            f"{_XS}any",
            namespace="##any",
            processContents="lax",
            minOccurs="0",
            maxOccurs="unbounded",
        )
        content.getparent().replace(content, sequence)


def _references(root: etree._Element, foreign: Iterable[Foreign]) -> None:
    schemas = _schemas(root)
    prefixes = {uri: prefix for prefix, uri in root.nsmap.items() if prefix}
    for item in foreign:
        schema, target = schemas.get(item.namespace), schemas.get(item.member_namespace)
        if schema is None or target is None or item.member_namespace not in prefixes:
            continue
        local = schema.find(
            f"{_XS}complexType[@name='{item.message}']/{_XS}sequence/{_XS}element"
            f"[@name='{item.member}']"
        )
        if local is None:
            continue
        if target.find(f"{_XS}element[@name='{item.member}']") is None:
            etree.SubElement(target, f"{_XS}element", name=item.member, type=local.get("type"))
        for attribute in ("name", "type", "nillable"):
            local.attrib.pop(attribute, None)
        local.set("ref", f"{prefixes[item.member_namespace]}:{item.member}")


def _message_references(root: etree._Element, namespace: str) -> None:
    for message in root.iter(f"{_WSDL}input", f"{_WSDL}output"):
        reference = message.get("message", "")
        if reference.startswith("wsnt:"):
            message.set("message", "tev:" + reference.partition(":")[2])
    schema = _schemas(root).get(namespace)
    for element in [] if schema is None else schema.findall(f"{_XS}element"):
        if (element.get("type") or "").startswith("wsnt:"):
            schema.remove(element)  # a second declaration of the wsnt: request elements


def fix_wsdl(wsdl: bytes, namespace: str, foreign: Iterable[Foreign]) -> bytes:
    root = etree.fromstring(wsdl)
    _any_elements(root)
    _references(root, foreign)
    _message_references(root, namespace)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class EventsSoapService(SoapService):
    """A SoapService with ``wsnt:`` operations and a WSDL that matches what is sent."""

    @cached_property
    def applications(self) -> Any:
        applications = SoapService.applications.func(self)  # type: ignore[attr-defined]
        for application in applications.values():
            methods = application.app.interface.service_method_map
            for operation in WSNT_OPERATIONS:
                methods[clark(WSNT, operation)] = methods.pop(clark(self.namespace, operation))
        return applications

    def wsdl(self, url: str) -> bytes:
        interface = self.applications[SoapVersion.SOAP12].app.interface
        return fix_wsdl(super().wsdl(url), self.namespace, foreign_members(interface))
