"""The ONVIF Event service (event.wsdl): the real-time pull point interface of Core §9.

``/onvif/events_service`` answers GetServiceCapabilities, GetEventProperties and
CreatePullPointSubscription; each subscription is addressed by its own path,
``/onvif/events_service/pullpoint/<id>`` — what every client does with the returned endpoint
reference — where PullMessages, Renew, Unsubscribe and SetSynchronizationPoint act on it. A
pull point operation sent to the service address instead is routed by its ``wsa:To`` header.
Seek (persistent storage) and the MQTT event broker operations answer ActionNotSupported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from lxml import etree
from spyne import AnyUri, AnyXml, Boolean, Integer32, Unicode, rpc

from nvr.onvif import types_tt as tt
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.events_endpoint import EventsEndpoint, current_manager, declare_prefix
from nvr.onvif.events_faults import (
    invalid_filter,
    notification_fault,
    pull_limits,
    resource_unknown,
    unacceptable_time,
)
from nvr.onvif.events_filter import (
    CONTENT_DIALECTS,
    TOPIC_DIALECTS,
    EventFilter,
    FilterError,
    parse_filter,
)
from nvr.onvif.events_policy import EVENT_ACCESS, EVENT_OPERATIONS
from nvr.onvif.events_pullpoint import (
    MAX_LIFETIME,
    MAX_MESSAGE_LIMIT,
    MAX_TIMEOUT,
    PullInProgress,
    PullPoint,
    PullPointManager,
    PullPointsExhausted,
    UnknownPullPoint,
)
from nvr.onvif.events_render import notification_message
from nvr.onvif.events_time import parse_absolute_or_relative, parse_duration
from nvr.onvif.events_topics import WSTOP, topic_set
from nvr.onvif.events_types import (
    Capabilities,
    EndpointReference,
    NotificationMessage,
    TopicSet,
    UtcTime,
    ZuluDateTime,
    in_ns,
)
from nvr.onvif.events_wsdl import EventsSoapService
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TEV, WSA, WSA_2004, WSNT, clark
from nvr.onvif.operations import compose
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.request import soap_request
from nvr.onvif.soap import route
from nvr.onvif.types_tt import repeated, required

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.events import EventBus
    from nvr.onvif.context import OnvifContext

EVENTS_PATH: Final = "/onvif/events_service"
PULLPOINT_PATH: Final = EVENTS_PATH + "/pullpoint"
EVENTS_VERSION: Final = (26, 6)
"""event.wsdl release we implement (Core 26.06)."""
REAP_INTERVAL: Final = 30
TOPIC_NAMESPACE_LOCATION: Final = "http://www.onvif.org/onvif/ver10/topics/topicns.xml"
SCHEMA_LOCATION: Final = "http://www.onvif.org/onvif/ver10/schema/onvif.xsd"


def service_capabilities(manager: PullPointManager) -> Capabilities:
    return Capabilities(
        WSSubscriptionPolicySupport=True,
        WSPausableSubscriptionManagerInterfaceSupport=False,
        MaxNotificationProducers=0,
        MaxPullPoints=manager.max_pull_points,
        PersistentNotificationStorage=False,
        MaxEventBrokers=0,
        MetadataOverMQTT=False,
    )


# --- request helpers --------------------------------------------------------------------------


@contextmanager
def _existing(manager: PullPointManager) -> Iterator[None]:
    """A pull point that vanished (expired, unsubscribed) is a ResourceUnknownFault."""
    try:
        yield
    except UnknownPullPoint:
        raise resource_unknown(manager.now()) from None


def _point(ctx: Any) -> PullPoint:
    """The pull point a request addresses: by its path, else by its wsa:To header."""
    manager = current_manager()
    point_id = _point_id(soap_request(ctx).http.path)
    if point_id is None:
        for header in ctx.in_header_doc or ():
            if header.tag in (clark(WSA, "To"), clark(WSA_2004, "To")) and header.text:
                point_id = _point_id(urlsplit(header.text.strip()).path)
    if point_id is None:
        raise resource_unknown(
            manager.now(), "send this to the address CreatePullPointSubscription returned"
        )
    with _existing(manager):
        return manager.get(point_id)


def _point_id(path: str) -> str | None:
    prefix = PULLPOINT_PATH + "/"
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].strip("/") or None


def _filter(element: etree._Element | None, now: float) -> EventFilter:
    try:
        return parse_filter(element)
    except FilterError as error:
        if error.unknown is None:
            raise notification_fault(error.fault, error.reason, now) from None
        declare_prefix("uf", error.unknown.namespace or WSNT)
        raise invalid_filter(error.unknown, error.reason, now) from None


def _future_time(text: str, now: float, *, initial: bool) -> float:
    """An (Initial)TerminationTime, absolute or relative, that lies in the future."""
    try:
        value = parse_absolute_or_relative(text, now)
    except ValueError:
        reason = f"unreadable time {text[:60]!r}" if text.strip() else "no time given"
        raise unacceptable_time(initial, reason, now, now + MAX_LIFETIME) from None
    if value <= now:
        raise unacceptable_time(initial, "the time is not in the future", now, now + MAX_LIFETIME)
    return value


def _changed_only(policy: etree._Element | None) -> bool:
    """tev:ChangedOnly in the SubscriptionPolicy (other policies are ignored)."""
    element = None if policy is None else policy.find(clark(TEV, "ChangedOnly"))
    return element is not None and (element.text or "true").strip().lower() in ("true", "1")


def _body_child(ctx: Any, name: str) -> etree._Element | None:
    """A child of the request wrapper as parsed (keeps its namespace context)."""
    body = ctx.in_body_doc
    return None if body is None else body.find(clark(TEV, name))


def _time(seconds: float) -> ZuluDateTime:
    return ZuluDateTime.at(seconds)


WsntTime: Final = in_ns(UtcTime, WSNT)


class EventMethods:
    """Namespace of the implemented event operations (composed into one spyne service)."""

    @rpc(_returns=required(Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> Capabilities:
        return service_capabilities(current_manager())

    @rpc(
        AnyXml,
        Unicode,
        AnyXml,
        _returns=(required(EndpointReference), WsntTime, WsntTime),
        _out_variable_names=("SubscriptionReference", "CurrentTime", "TerminationTime"),
    )
    def CreatePullPointSubscription(
        ctx: Any, Filter: Any, InitialTerminationTime: str | None, SubscriptionPolicy: Any
    ) -> tuple[EndpointReference, ZuluDateTime, ZuluDateTime]:
        manager = current_manager()
        now = manager.now()
        event_filter = _filter(_body_child(ctx, "Filter"), now)
        text = (InitialTerminationTime or "").strip()
        termination = _future_time(text, now, initial=True) if text else None
        changed_only = _changed_only(_body_child(ctx, "SubscriptionPolicy"))
        try:
            point = manager.create(event_filter, termination, changed_only)
        except PullPointsExhausted as error:
            raise notification_fault("SubscribeCreationFailedFault", str(error), now) from None
        address = f"{soap_request(ctx).http.base_url}{PULLPOINT_PATH}/{point.id}"
        return EndpointReference(Address=address), _time(now), _time(point.termination)

    @rpc(
        _returns=(
            repeated(AnyUri, 1),
            in_ns(required(Boolean), WSNT),
            in_ns(required(TopicSet), WSTOP),
            in_ns(repeated(AnyUri, 1), WSNT),
            repeated(AnyUri, 1),
            repeated(AnyUri, 1),
        ),
        _out_variable_names=(
            "TopicNamespaceLocation",
            "FixedTopicSet",
            "TopicSet",
            "TopicExpressionDialect",
            "MessageContentFilterDialect",
            "MessageContentSchemaLocation",
        ),
    )
    def GetEventProperties(ctx: Any) -> tuple[Any, ...]:
        return (
            [TOPIC_NAMESPACE_LOCATION],
            True,
            TopicSet(topics=list(topic_set())),
            list(TOPIC_DIALECTS),
            list(CONTENT_DIALECTS),
            [SCHEMA_LOCATION],
        )

    @rpc(
        required(Unicode),
        required(Integer32),
        _returns=(UtcTime, UtcTime, in_ns(repeated(NotificationMessage), WSNT)),
        _out_variable_names=("CurrentTime", "TerminationTime", "NotificationMessage"),
    )
    def PullMessages(
        ctx: Any, Timeout: str, MessageLimit: int
    ) -> tuple[ZuluDateTime, ZuluDateTime, list[NotificationMessage]]:
        point = _point(ctx)
        manager = current_manager()
        try:
            timeout = parse_duration(Timeout)
        except ValueError:
            raise OnvifFault.sender("InvalidArgVal", f"Timeout {Timeout[:40]!r}") from None
        if timeout < 0:
            raise OnvifFault.sender("InvalidArgVal", "Timeout is negative")
        if timeout > MAX_TIMEOUT:
            raise pull_limits(MAX_TIMEOUT, MAX_MESSAGE_LIMIT)
        try:
            with _existing(manager):
                events = manager.pull(point, timeout, MessageLimit)
        except PullInProgress:
            raise notification_fault(
                "UnableToGetMessagesFault", "a PullMessages is already waiting", manager.now()
            ) from None
        messages = [notification_message(event) for event in events]
        return _time(manager.now()), _time(point.termination), messages

    @rpc()
    def SetSynchronizationPoint(ctx: Any) -> None:
        point = _point(ctx)
        with _existing(current_manager()):
            current_manager().synchronize(point)

    @rpc(
        Unicode,
        _in_message_name=clark(WSNT, "Renew"),
        _out_message_name=clark(WSNT, "RenewResponse"),
        _returns=(UtcTime, UtcTime),
        _out_variable_names=("TerminationTime", "CurrentTime"),
    )
    def Renew(ctx: Any, TerminationTime: str | None) -> tuple[ZuluDateTime, ZuluDateTime]:
        point = _point(ctx)
        manager = current_manager()
        now = manager.now()
        requested = _future_time(TerminationTime or "", now, initial=False)
        with _existing(manager):
            termination = manager.renew(point, requested)
        return _time(termination), _time(now)

    @rpc(
        _in_message_name=clark(WSNT, "Unsubscribe"),
        _out_message_name=clark(WSNT, "UnsubscribeResponse"),
    )
    def Unsubscribe(ctx: Any) -> None:
        point = _point(ctx)
        with _existing(current_manager()):
            current_manager().unsubscribe(point)


# --- the service ------------------------------------------------------------------------------


@cache
def events_service() -> EventsSoapService:
    """The event service definition (built once per process: spyne apps are costly)."""
    return EventsSoapService(
        name="EventService",
        namespace=TEV,
        services=(compose("EventService", [EventMethods], EVENT_OPERATIONS),),
        access=EVENT_ACCESS,
    )


def events_entry(manager: PullPointManager) -> ServiceEntry:
    return ServiceEntry(
        namespace=TEV,
        path=EVENTS_PATH,
        version=EVENTS_VERSION,
        capabilities=lambda: model_element(
            service_capabilities(manager), Capabilities, "Capabilities"
        ),
        legacy_slot="Events",
        legacy=lambda xaddr: tt.EventCapabilities(
            XAddr=xaddr,
            WSSubscriptionPolicySupport=True,
            WSPullPointSupport=True,
            WSPausableSubscriptionManagerInterfaceSupport=False,
        ),
    )


def mount_events(
    app: FastAPI, context: OnvifContext, bus: EventBus, scheduler: Any = None
) -> PullPointManager:
    """Serve the event service and its pull points; returns the (started) pull points.

    ``scheduler`` (APScheduler) runs the reaper of expired pull points; call the manager's
    ``close()`` when the daemon is asked to stop, so waiting PullMessages end at once.
    """
    config = context.config
    manager = PullPointManager(
        bus,
        clock=context.clock,
        max_pull_points=config["events.max_pull_points"],
        queue_limit=config["events.queue_limit"],
    )
    manager.start()
    endpoint = EventsEndpoint(events_service(), context, manager)
    context.registry.register(events_entry(manager))
    app.router.routes.append(route(EVENTS_PATH, endpoint))
    app.router.routes.append(route(PULLPOINT_PATH + "/{point_id}", endpoint))
    if scheduler is not None:
        scheduler.add_job(
            manager.reap, "interval", seconds=REAP_INTERVAL, max_instances=1, coalesce=True
        )
    return manager


__all__ = [
    "EVENTS_PATH",
    "PULLPOINT_PATH",
    "EventMethods",
    "events_service",
    "mount_events",
]
