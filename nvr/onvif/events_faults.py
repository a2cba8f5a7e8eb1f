"""The Event service's faults: WS-BaseNotification / WS-Resource faults and PullMessages limits.

Core §9.11: faults for WS-BaseNotification messages follow that specification, carry the
``wsa:Action`` ``…/addressing/soap/fault`` and are receiver faults (HTTP 500). The subcode is
the fault element's QName (``wsnt:InvalidFilterFault``, ``wsrf-r:ResourceUnknownFault``) and
the Detail holds that element with the wsrf-bf base fault content (Timestamp, Description).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from nvr.events import utc_text
from nvr.onvif.events_time import format_duration
from nvr.onvif.faults import WSA_FAULT_ACTION, OnvifFault
from nvr.onvif.namespaces import TEV, WSNT, clark

WSRF_R: Final = "http://docs.oasis-open.org/wsrf/r-2"
WSRF_BF: Final = "http://docs.oasis-open.org/wsrf/bf-2"


def _utc(epoch_seconds: float) -> str:
    return utc_text(int(epoch_seconds) * 1_000_000)


def base_fault(
    namespace: str,
    name: str,
    reason: str,
    now: float,
    *,
    extra: Sequence[etree._Element] = (),
) -> OnvifFault:
    """``env:Receiver / {namespace}name`` with a wsrf-bf BaseFaultType detail."""
    detail = etree.Element(clark(namespace, name), nsmap={"wsrf-bf": WSRF_BF})
    etree.SubElement(detail, clark(WSRF_BF, "Timestamp")).text = _utc(now)
    etree.SubElement(detail, clark(WSRF_BF, "Description")).text = reason
    detail.extend(extra)
    return OnvifFault(
        "Receiver", (clark(namespace, name),), reason, detail=detail, action=WSA_FAULT_ACTION
    )


def resource_unknown(now: float, reason: str = "no such subscription") -> OnvifFault:
    return base_fault(WSRF_R, "ResourceUnknownFault", reason, now)


def notification_fault(name: str, reason: str, now: float) -> OnvifFault:
    """A wsnt fault without extra detail (InvalidTopicExpressionFault, …)."""
    return base_fault(WSNT, name, reason, now)


def invalid_filter(unknown: etree.QName, reason: str, now: float) -> OnvifFault:
    """``wsnt:InvalidFilterFault`` naming the filter element we do not understand.

    The QName value needs its prefix in scope; the element declares it, and the events
    endpoint keeps such declarations (see events_service.declare_value_prefixes).
    """
    element = etree.Element(clark(WSNT, "UnknownFilter"), nsmap={"uf": unknown.namespace or WSNT})
    element.text = f"uf:{unknown.localname}"
    return base_fault(WSNT, "InvalidFilterFault", reason, now, extra=[element])


def unacceptable_time(initial: bool, reason: str, now: float, maximum: float) -> OnvifFault:
    """(Initial)TerminationTime in the past or unreadable; tells the acceptable range."""
    name = (
        "UnacceptableInitialTerminationTimeFault" if initial else "UnacceptableTerminationTimeFault"
    )
    minimum = etree.Element(clark(WSNT, "MinimumTime"))
    minimum.text = _utc(now + 1)
    maximum_element = etree.Element(clark(WSNT, "MaximumTime"))
    maximum_element.text = _utc(maximum)
    return base_fault(WSNT, name, reason, now, extra=[minimum, maximum_element])


def pull_limits(max_timeout: float, max_messages: int) -> OnvifFault:
    """PullMessages Timeout above what we support: tev:PullMessagesFaultResponse (Core §9.1)."""
    detail = etree.Element(clark(TEV, "PullMessagesFaultResponse"), nsmap={"tev": TEV})
    etree.SubElement(detail, clark(TEV, "MaxTimeout")).text = format_duration(max_timeout)
    etree.SubElement(detail, clark(TEV, "MaxMessageLimit")).text = str(max_messages)
    return OnvifFault.sender(
        "InvalidArgVal", f"Timeout above {format_duration(max_timeout)}", detail=detail
    )
