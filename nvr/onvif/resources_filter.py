"""The resource-query filters (ResourceQuery §6.3–6.6): Location, Prefix, Scope and Select.

The specification gives only the XSD fragments and not where they go; we read them as further
children of the ``wsnt:Filter`` of CreatePullPointSubscription, next to TopicExpression and
MessageContent, in the ONVIF schema namespace (``tt:LocationFilter``…; the fragments name no
namespace of their own, so unqualified elements are accepted too, as are unqualified or
``tt:`` children). Like every part of a wsnt:Filter, each of them must hold (AND). They apply
to ``tns1:Resource/…`` messages only; every other message passes them untouched, so one
subscription can mix resources and ordinary events.

* LocationFilter ``lon``, ``lat``, ``height``?, ``radius`` (metres), ``includeUnknown``?: the
  resource's tt:GeoLocation lies within ``radius`` (great circle; with ``height`` and a known
  elevation the height difference counts too); a resource without one matches only with
  ``includeUnknown`` true.
* PrefixFilter ``Prefix``: the Source ``Token`` is ``Prefix:…`` (unprefixed tokens never match).
* ScopeFilter ``Scope``+ with optional ``Match`` (WS-Discovery MatchBy URI: rfc3986, the
  default, or strcmp0): every Scope must match one of the resource's Scope items, matched as
  WS-Discovery does (Core §7.3.3).
* SelectFilter ``Path``+: which Data items are sent — ``/Name``, ``/Location``, ``/Scope``,
  ``/Offline``, and ``/Scope/<category>`` for the ``onvif://www.onvif.org/<category>/…``
  scopes only (the spec's example ``/Scope/Location``; categories compare case-insensitively).
  The Source Token is always sent; the Paths of several SelectFilters add up.

Malformed content raises :class:`ResourceFilterError` (the Event service answers
``wsnt:InvalidMessageContentExpressionFault``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Final

from lxml import etree

from nvr.events import Event, Items
from nvr.onvif.device_scopes import ONVIF_SCOPE
from nvr.onvif.discovery_messages import RFC3986, STRCMP0, scope_matches
from nvr.onvif.events_topics import TOPIC_PREFIX
from nvr.onvif.namespaces import TT
from nvr.onvif.resources_geo import GeoPoint, distance_m, point_of

RESOURCE_TOPIC: Final = f"{TOPIC_PREFIX}:Resource/"
"""Topics under this prefix are resources; the filters here apply to them only."""
FILTER_NAMES: Final = ("LocationFilter", "PrefixFilter", "ScopeFilter", "SelectFilter")
FILTER_NAMESPACES: Final = (TT, None)
TOKEN: Final = "Token"
LOCATION: Final = "Location"
SCOPE: Final = "Scope"
DATA_ITEMS: Final = ("Name", LOCATION, SCOPE, "Offline")
MATCH_RULES: Final = (RFC3986, STRCMP0)
MAX_TEXT: Final = 1024
_PATH: Final = re.compile(r"^/{0,2}(?:[A-Za-z_][\w.-]*:)?([A-Za-z]+)(?:/([\w.-]+))?$")


class ResourceFilterError(ValueError):
    """A resource filter we cannot read."""


def is_resource(event: Event) -> bool:
    return event.topic.startswith(RESOURCE_TOPIC)


@dataclass(frozen=True, slots=True)
class LocationFilter:
    center: GeoPoint
    radius: float
    include_unknown: bool = False

    def matches(self, point: GeoPoint | None) -> bool:
        if point is None:
            return self.include_unknown
        return distance_m(self.center, point) <= self.radius


@dataclass(frozen=True, slots=True)
class Selector:
    item: str
    category: str | None = None
    """For Scope items: only ``onvif://www.onvif.org/<category>/…`` (lower case)."""

    def takes(self, name: str, value: str | None) -> bool:
        if name != self.item:
            return False
        if self.category is None:
            return True
        return (value or "").lower().startswith(f"{ONVIF_SCOPE}{self.category}/")


@dataclass(frozen=True)
class ResourceFilter:
    """The resource conditions of one subscription; the empty one passes everything."""

    locations: tuple[LocationFilter, ...] = ()
    prefixes: tuple[str, ...] = ()
    scopes: tuple[tuple[str, str], ...] = ()
    """(scope, MatchBy rule) pairs; each must match one of the resource's scopes."""
    select: tuple[Selector, ...] | None = None

    def __bool__(self) -> bool:
        return bool(self.locations or self.prefixes or self.scopes or self.select is not None)

    def matches(self, event: Event) -> bool:
        if not is_resource(event):
            return True
        token = event.source_dict().get(TOKEN, "")
        prefix, colon, _ = token.partition(":")
        if any(not colon or prefix != wanted for wanted in self.prefixes):
            return False
        if self.locations:
            point = next((point_of(v) for n, v in event.elements if n == LOCATION), None)
            if not all(f.matches(point) for f in self.locations):
                return False
        have = [value for name, value in event.data if name == SCOPE]
        return all(any(scope_matches(s, h, rule) for h in have) for s, rule in self.scopes)

    def view(self, event: Event) -> Event:
        """``event`` with only the selected Data items (SelectFilter)."""
        if self.select is None or not is_resource(event):
            return event
        selectors = self.select
        return replace(
            event,
            data=tuple((n, v) for n, v in event.data if any(s.takes(n, v) for s in selectors)),
            elements=tuple(
                (n, v) for n, v in event.elements if any(s.takes(n, None) for s in selectors)
            ),
        )


def signature(event: Event) -> tuple[Items, tuple[tuple[str, bytes], ...]]:
    """What a subscriber sees of an event's data: to tell whether a change shows."""
    elements = tuple(
        (name, etree.tostring(value) if isinstance(value, etree._Element) else repr(value).encode())
        for name, value in event.elements
    )
    return event.data, elements


# --- parsing ----------------------------------------------------------------------------------


def is_resource_filter(element: etree._Element) -> bool:
    name = etree.QName(element)
    return name.namespace in FILTER_NAMESPACES and name.localname in FILTER_NAMES


def _children(element: etree._Element, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    """(local name, text) of the children; only ``allowed`` names, in tt:, no or the
    parent's namespace."""
    parent = etree.QName(element).namespace
    out: list[tuple[str, str]] = []
    for child in element.iterchildren(tag=etree.Element):
        name = etree.QName(child)
        if name.namespace not in (TT, None, parent) or name.localname not in allowed:
            raise ResourceFilterError(
                f"{etree.QName(element).localname} has no element {name.localname!r}"
            )
        text = (child.text or "").strip()
        if len(text) > MAX_TEXT:
            raise ResourceFilterError(f"{name.localname} is too long")
        out.append((name.localname, text))
    return out


def _single(items: list[tuple[str, str]], name: str, *, required: bool) -> str | None:
    values = [text for local, text in items if local == name]
    if len(values) > 1:
        raise ResourceFilterError(f"{name} is given {len(values)} times")
    if required and not values:
        raise ResourceFilterError(f"{name} is missing")
    return values[0] if values else None


def _double(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ResourceFilterError(f"{name} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ResourceFilterError(f"{name} must be finite")
    return value


def _boolean(text: str | None, name: str) -> bool:
    if text is None:
        return False
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ResourceFilterError(f"{name} {text[:40]!r} is not a boolean")


def _required_double(items: list[tuple[str, str]], name: str) -> float:
    value = _double(_single(items, name, required=True) or "", name)
    return 0.0 if value is None else value


def parse_location_filter(element: etree._Element) -> LocationFilter:
    items = _children(element, ("lon", "lat", "height", "radius", "includeUnknown"))
    lon, lat = _required_double(items, "lon"), _required_double(items, "lat")
    height = _double(_single(items, "height", required=False), "height")
    radius = _required_double(items, "radius")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ResourceFilterError("lat must lie in -90..90 and lon in -180..180")
    if radius < 0:
        raise ResourceFilterError("radius must not be negative")
    unknown = _boolean(_single(items, "includeUnknown", required=False), "includeUnknown")
    return LocationFilter(GeoPoint(lat, lon, height), radius, unknown)


def parse_prefix_filter(element: etree._Element) -> str:
    prefix = _single(_children(element, ("Prefix",)), "Prefix", required=True)
    if not prefix or ":" in prefix:
        raise ResourceFilterError("Prefix must be a non-empty string without ':'")
    return prefix


def parse_scope_filter(element: etree._Element) -> tuple[tuple[str, str], ...]:
    _children(element, ("Scope",))
    scopes: list[tuple[str, str]] = []
    for child in element.iterchildren(tag=etree.Element):
        scope = (child.text or "").strip()
        rule = (child.get("Match") or RFC3986).strip()
        if not scope:
            raise ResourceFilterError("an empty Scope")
        if rule not in MATCH_RULES:
            raise ResourceFilterError(f"Match rule {rule[:80]!r} is not supported")
        scopes.append((scope, rule))
    if not scopes:
        raise ResourceFilterError("ScopeFilter needs at least one Scope")
    return tuple(scopes)


def parse_select_filter(element: etree._Element) -> tuple[Selector, ...]:
    selectors: list[Selector] = []
    for _, text in _children(element, ("Path",)):
        match = _PATH.match(text)
        if match is None or match.group(1) not in DATA_ITEMS:
            raise ResourceFilterError(f"Path {text[:60]!r} selects none of {', '.join(DATA_ITEMS)}")
        item, category = match.groups()
        if category is not None and item != SCOPE:
            raise ResourceFilterError(f"{item} has no parts to select ({text[:60]!r})")
        selectors.append(Selector(item, category.lower() if category else None))
    if not selectors:
        raise ResourceFilterError("SelectFilter needs at least one Path")
    return tuple(selectors)


def parse_resource_filters(elements: list[etree._Element]) -> ResourceFilter:
    """The resource filter elements of one wsnt:Filter, combined."""
    locations: list[LocationFilter] = []
    prefixes: list[str] = []
    scopes: list[tuple[str, str]] = []
    select: list[Selector] | None = None
    for element in elements:
        kind = etree.QName(element).localname
        if kind == "LocationFilter":
            locations.append(parse_location_filter(element))
        elif kind == "PrefixFilter":
            prefixes.append(parse_prefix_filter(element))
        elif kind == "ScopeFilter":
            scopes.extend(parse_scope_filter(element))
        elif kind == "SelectFilter":
            select = [*(select or ()), *parse_select_filter(element)]
        else:  # pragma: no cover - is_resource_filter decides what reaches here
            raise ResourceFilterError(f"{kind} is not a resource filter")
    return ResourceFilter(
        tuple(locations), tuple(prefixes), tuple(scopes), None if select is None else tuple(select)
    )
