"""spyne models of the Event service: tev: capabilities, the WS-Addressing endpoint reference,
the WS-BaseNotification message holder and the WS-Topics topic set.

Children are written in the namespace of their type (``wsnt:Topic`` inside a tev response),
members that the WSDL takes by reference from another schema carry ``sub_ns``
(``wsnt:CurrentTime`` in CreatePullPointSubscriptionResponse, ``tev:CurrentTime`` in
PullMessagesResponse — the namespace trap of Core §9.1).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from spyne import (
    AnyUri,
    AnyXml,
    Boolean,
    ComplexModel,
    DateTime,
    Integer32,
    Unicode,
    XmlAttribute,
    XmlData,
)

from nvr.onvif.events_topics import CONCRETE_SET, WSTOP
from nvr.onvif.namespaces import TEV, WSA, WSNT


class ZuluDateTime(dt.datetime):
    """A UTC datetime that spyne writes with ``Z`` and whole seconds.

    spyne's SOAP protocols always serialise DateTime with ``isoformat()`` (``+00:00``); Core
    §9.1 wants UTC with the ``Z`` indicator, so the instance formats itself.
    """

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return self.strftime("%Y-%m-%dT%H:%M:%SZ")

    @classmethod
    def at(cls, epoch_seconds: float) -> ZuluDateTime:
        moment = dt.datetime.fromtimestamp(int(epoch_seconds), dt.UTC)
        return cls(*moment.timetuple()[:6], tzinfo=dt.UTC)


UtcTime: Final = DateTime(min_occurs=1, nillable=False)
"""xs:dateTime, required; give it :class:`ZuluDateTime` values."""


def in_ns(kind: Any, namespace: str, **kwargs: Any) -> Any:
    """``kind`` as an element of another schema (``ref=`` in the official WSDL)."""
    return kind.customize(sub_ns=namespace, **kwargs)


class Capabilities(ComplexModel):
    """tev:Capabilities: only attributes (the vendor/ONVIF extension wildcard stays empty)."""

    __namespace__ = TEV
    WSSubscriptionPolicySupport = XmlAttribute(Boolean)
    WSPausableSubscriptionManagerInterfaceSupport = XmlAttribute(Boolean)
    MaxNotificationProducers = XmlAttribute(Integer32)
    MaxPullPoints = XmlAttribute(Integer32)
    PersistentNotificationStorage = XmlAttribute(Boolean)
    EventBrokerProtocols = XmlAttribute(Unicode)
    MaxEventBrokers = XmlAttribute(Integer32)
    MetadataOverMQTT = XmlAttribute(Boolean)


class EndpointReference(ComplexModel):
    """wsa:EndpointReferenceType with just its Address (what a pull point client needs)."""

    __namespace__ = WSA
    __type_name__ = "EndpointReferenceType"
    Address = AnyUri(min_occurs=1, nillable=False)


class TopicExpression(ComplexModel):
    """wsnt:TopicExpressionType: the topic as text, its dialect as attribute."""

    __namespace__ = WSNT
    __type_name__ = "TopicExpressionType"
    value = XmlData(Unicode)
    Dialect = XmlAttribute(AnyUri, use="required")


class NotificationMessage(ComplexModel):
    """wsnt:NotificationMessageHolderType; ``Message`` holds one ``tt:Message`` element.

    Also the type of ``tt:Event`` in search results, so the Search service can reuse it.
    """

    __namespace__ = WSNT
    __type_name__ = "NotificationMessageHolderType"
    Topic = TopicExpression
    Message = AnyXml(min_occurs=1, nillable=False)


class TopicSet(ComplexModel):
    """wstop:TopicSetType: the root topic elements of events_topics.topic_set(), as they are."""

    __namespace__ = WSTOP
    __type_name__ = "TopicSetType"
    topics = XmlData(AnyXml).customize(max_occurs="unbounded")


def notification(topic: str, message: Any) -> NotificationMessage:
    return NotificationMessage(
        Topic=TopicExpression(value=topic, Dialect=CONCRETE_SET), Message=message
    )
