"""Positions of resources: reading a free-text location, great-circle distances, tt:GeoLocation.

``tt:RecordingSourceInformation/Location`` is free text (tt:Description), but resource queries
publish a ``tt:GeoLocation`` (attributes ``lon``, ``lat``, ``elevation``) and filter by
distance. A location counts as a position only when the text is one: an RFC 5870 ``geo:`` URI
(``geo:lat,lon[,alt]`` with optional parameters; a ``crs`` other than wgs84 is not ours to
convert, so it is no position) or a bare ``lat,lon[,alt]`` triple. Anything else is a place
name; the caller makes a location scope of it instead. Altitudes are metres.

Distances use the haversine formula on the mean Earth radius: within 0.5 % of the WGS 84
geodesic, far better than the metre-scale radii of a location query need.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from lxml import etree

from nvr.onvif.namespaces import TT, clark

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean Earth radius (IUGG)."""

_NUMBER: Final = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_GEO_URI: Final = re.compile(
    rf"^geo:({_NUMBER}),({_NUMBER})(?:,({_NUMBER}))?((?:;[^;]*)*)$", re.IGNORECASE
)
_TRIPLE: Final = re.compile(rf"^({_NUMBER})\s*,\s*({_NUMBER})(?:\s*,\s*({_NUMBER}))?$")
GEO_LOCATION: Final = clark(TT, "GeoLocation")


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    """Degrees north, -90..90."""
    lon: float
    """Degrees east, -180..180."""
    elevation: float | None = None
    """Metres above the reference ellipsoid/sea level, if known."""


def _point(lat: str, lon: str, alt: str | None) -> GeoPoint | None:
    latitude, longitude = float(lat), float(lon)
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return None
    return GeoPoint(latitude, longitude, float(alt) if alt is not None else None)


def _wgs84(parameters: str) -> bool:
    """RFC 5870 parameters: ``crs`` defaults to wgs84; any other CRS is not one we read."""
    for parameter in parameters.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "crs" and value.strip().lower() != "wgs84":
            return False
    return True


def parse_location(text: str | None) -> GeoPoint | None:
    """The position ``text`` states (``geo:`` URI or ``lat,lon[,alt]``), else None."""
    text = (text or "").strip()
    match = _GEO_URI.match(text)
    if match is not None:
        lat, lon, alt, parameters = match.groups()
        return _point(lat, lon, alt) if _wgs84(parameters) else None
    match = _TRIPLE.match(text)
    if match is not None:
        return _point(*match.groups())
    return None


def distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Distance in metres: great-circle, combined with the height difference when both
    points have one."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    d_phi, d_lambda = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    ground = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h))))
    if a.elevation is None or b.elevation is None:
        return ground
    return math.hypot(ground, a.elevation - b.elevation)


def _number(value: float) -> str:
    return repr(float(value))


def geo_element(point: GeoPoint) -> etree._Element:
    """``tt:GeoLocation`` with ``lon``, ``lat`` (xs:double) and ``elevation`` (xs:float)."""
    element = etree.Element(GEO_LOCATION, nsmap={"tt": TT})
    element.set("lon", _number(point.lon))
    element.set("lat", _number(point.lat))
    if point.elevation is not None:
        element.set("elevation", _number(point.elevation))
    return element


def point_of(element: object) -> GeoPoint | None:
    """The position a ``tt:GeoLocation`` element holds (None if it is not one)."""
    if not isinstance(element, etree._Element) or element.tag != GEO_LOCATION:
        return None
    try:
        lat, lon = float(element.get("lat", "")), float(element.get("lon", ""))
        elevation = element.get("elevation")
        return GeoPoint(lat, lon, float(elevation) if elevation is not None else None)
    except ValueError:
        return None
