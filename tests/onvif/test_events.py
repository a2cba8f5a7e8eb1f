"""The Event service through zeep built from the official event.wsdl, events published on the
daemon's bus by the test; every response (faults too) is validated against the official
schemas. Raw requests cover what zeep would not send."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import zeep
import zeep.exceptions
from lxml import etree
from requests.auth import HTTPDigestAuth

from nvr.events import Event
from nvr.onvif.events_filter import ITEM_FILTER
from nvr.onvif.events_policy import (
    EVENT_PORT_OPERATIONS,
    PULL_POINT_OPERATIONS,
    SUBSCRIPTION_MANAGER_OPERATIONS,
)
from nvr.onvif.events_pullpoint import PullPointManager
from nvr.onvif.events_service import EVENTS_PATH, PULLPOINT_PATH
from nvr.onvif.events_topics import CONCRETE, CONCRETE_SET, TNS1, TOPICS
from nvr.onvif.namespaces import TDS, TEV, TT, WSA, WSNT
from tests.onvif.conftest import ADMIN, OPERATOR, USER, OnvifServer
from tests.onvif.raw import envelope, post, username_token
from tests.onvif.schemas import WSDL_DIR, assert_valid
from tests.onvif.zeep_client import OnvifClient

EVENT_WSDL = "ver10/events/wsdl/event.wsdl"
WSRF_R = "http://docs.oasis-open.org/wsrf/r-2"
WSRF_BF = "http://docs.oasis-open.org/wsrf/bf-2"
WSTOP = "http://docs.oasis-open.org/wsn/t-1"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
NS = {"env": SOAP12, "tev": TEV, "wsnt": WSNT, "tt": TT, "wsa": WSA, "wstop": WSTOP}
RECEIVER = "tns1:Receiver/ChangeState"
TRACK = "tns1:RecordingHistory/Track/State"
JOB = "tns1:RecordingConfig/JobState"


def receiver_event(token: str, state: str = "Connected") -> Event:
    return Event(RECEIVER, (("ReceiverToken", token),), (("NewState", state),))


def track_source(track: str) -> tuple[tuple[str, str], ...]:
    return (("RecordingToken", "REC1"), ("Track", track))


def manager_of(server: OnvifServer) -> PullPointManager:
    return server.app.state.events


def publish(server: OnvifServer, *events: Event) -> None:
    assert server.daemon is not None
    for event in events:
        server.daemon.bus.publish(event)


# --- a VMS stand-in ---------------------------------------------------------------------------


class Pulled:
    """One received notification, read from the raw response (zeep drops the topic text)."""

    def __init__(self, element: etree._Element) -> None:
        topic = element.find("wsnt:Topic", NS)
        assert topic is not None and topic.get("Dialect") == CONCRETE_SET
        prefix, _, rest = (topic.text or "").partition(":")
        assert topic.nsmap[prefix] == TNS1  # the prefix is declared where the text is
        self.topic = f"tns1:{rest}"
        self.message = element.find("wsnt:Message/tt:Message", NS)
        assert self.message is not None
        self.operation = self.message.get("PropertyOperation")
        self.items = {
            i.get("Name"): i.get("Value") for i in self.message.iterfind(".//tt:SimpleItem", NS)
        }


class Subscription:
    def __init__(self, events: Events, result: Any) -> None:
        self.events = events
        self.address: str = result.SubscriptionReference.Address._value_1
        self.termination: dt.datetime = result.TerminationTime
        client = events.client.client
        self.pull_point = client.create_service(
            f"{{{TEV}}}PullPointSubscriptionBinding", self.address
        )
        self.manager = client.create_service(f"{{{TEV}}}SubscriptionManagerBinding", self.address)

    def pull(self, timeout: str = "PT0S", limit: int = 100) -> list[Pulled]:
        response = self.pull_point.PullMessages(Timeout=timeout, MessageLimit=limit)
        root = assert_valid(self.events.client.last_response, EVENT_WSDL)
        body = root.find("env:Body/tev:PullMessagesResponse", NS)
        assert body is not None
        assert [c.tag.split("}")[1] for c in body][:2] == ["CurrentTime", "TerminationTime"]
        assert body.find("tev:CurrentTime", NS).text.endswith("Z")
        self.termination = response.TerminationTime
        return [Pulled(m) for m in body.iterfind("wsnt:NotificationMessage", NS)]

    def call(self, port: Any, operation: str, **kwargs: Any) -> Any:
        result = getattr(port, operation)(**kwargs)
        assert_valid(self.events.client.last_response, EVENT_WSDL)
        return result


class Events:
    def __init__(self, server: OnvifServer, credentials: tuple[str, str] | None = ADMIN) -> None:
        self.server = server
        self.client = OnvifClient(
            server.base_url + EVENTS_PATH,
            digest=credentials,
            wsdl=EVENT_WSDL,
            binding=f"{{{TEV}}}EventBinding",
        )

    def call(self, operation: str, **kwargs: Any) -> Any:
        result = getattr(self.client.service, operation)(**kwargs)
        assert_valid(self.client.last_response, EVENT_WSDL)
        return result

    def filter(self, *parts: etree._Element) -> Any:
        return self.client.type(f"{{{WSNT}}}FilterType")(_value_1=list(parts))

    def subscribe(self, *parts: etree._Element, **kwargs: Any) -> Subscription:
        if parts:
            kwargs["Filter"] = self.filter(*parts)
        return Subscription(self, self.call("CreatePullPointSubscription", **kwargs))

    def fault(self, operation: str, **kwargs: Any) -> zeep.exceptions.Fault:
        with pytest.raises(zeep.exceptions.Fault) as info:
            getattr(self.client.service, operation)(**kwargs)
        assert_valid(self.client.last_response, EVENT_WSDL)
        return info.value


def topic(expression: str, dialect: str = CONCRETE_SET, **nsmap: str) -> etree._Element:
    element = etree.Element(
        f"{{{WSNT}}}TopicExpression", Dialect=dialect, nsmap=nsmap or {"tns1": TNS1}
    )
    element.text = expression
    return element


def content(expression: str, dialect: str = ITEM_FILTER) -> etree._Element:
    element = etree.Element(f"{{{WSNT}}}MessageContent", Dialect=dialect, nsmap={"tt": TT})
    element.text = expression
    return element


@pytest.fixture
def events(server: OnvifServer) -> Iterator[Events]:
    yield Events(server)
    manager_of(server).close()  # no PullMessages outlives the test


def fault_chain(fault: zeep.exceptions.Fault) -> list[str]:
    """[code, subcodes as Clark names]: the exact chain, namespaces included."""
    return [fault.code.partition(":")[2], *(q.text for q in fault.subcodes)]


def wsnt(name: str) -> str:
    return f"{{{WSNT}}}{name}"


def ter(name: str) -> str:
    return f"{{http://www.onvif.org/ver10/error}}{name}"


def last_fault(events: Events) -> etree._Element:
    root = etree.fromstring(events.client.last_response)
    action = root.find("env:Header/wsa:Action", NS)
    assert action is not None and action.text == FAULT_ACTION
    return root.find("env:Body/env:Fault/env:Detail", NS)


# --- the interface ----------------------------------------------------------------------------


def _port_type(wsdl: str, name: str) -> list[str]:
    root = etree.parse(str(WSDL_DIR / wsdl)).getroot()
    port = root.find(f"{{http://schemas.xmlsoap.org/wsdl/}}portType[@name='{name}']")
    assert port is not None
    return [op.get("name") for op in port.iterfind("{http://schemas.xmlsoap.org/wsdl/}operation")]


def test_operation_lists_are_the_official_ones() -> None:
    assert _port_type(EVENT_WSDL, "EventPortType") == list(EVENT_PORT_OPERATIONS)
    assert _port_type(EVENT_WSDL, "PullPointSubscription") == list(PULL_POINT_OPERATIONS)
    manager = _port_type("schema/common/bw-2.wsdl", "SubscriptionManager")
    assert set(SUBSCRIPTION_MANAGER_OPERATIONS) <= set(manager)


def test_capabilities_and_service_listing(events: Events, server: OnvifServer) -> None:
    anonymous = Events(server, None)
    capabilities = anonymous.call("GetServiceCapabilities")  # PRE_AUTH
    assert capabilities.MaxPullPoints == 64
    assert capabilities.WSSubscriptionPolicySupport is True
    assert capabilities.PersistentNotificationStorage is False
    assert capabilities.MaxNotificationProducers == 0
    device = OnvifClient(server.xaddr)
    services = device.service.GetServices(IncludeCapability=True)
    assert_valid(device.last_response)
    (entry,) = [s for s in services if s.Namespace == TEV]
    assert entry.XAddr == server.base_url + EVENTS_PATH
    legacy = device.service.GetCapabilities(Category=["Events"])
    assert legacy.Events.WSPullPointSupport is True
    assert legacy.Events.XAddr == server.base_url + EVENTS_PATH


def test_event_properties_describe_every_topic(events: Events) -> None:
    properties = events.call("GetEventProperties")
    assert properties.FixedTopicSet is True
    assert set(properties.TopicExpressionDialect) >= {CONCRETE, CONCRETE_SET}
    assert properties.MessageContentFilterDialect == [ITEM_FILTER]
    root = etree.fromstring(events.client.last_response)
    topic_set = root.find(".//wstop:TopicSet", NS)
    for description in TOPICS:
        root_topic, *children = description.topic.removeprefix("tns1:").split("/")
        node = topic_set.find("/".join([f"{{{TNS1}}}{root_topic}", *children]))
        assert node is not None, description.topic
        assert node.get(f"{{{WSTOP}}}topic") == "true"
        message = node.find("tt:MessageDescription", NS)
        assert message.get("IsProperty") == ("true" if description.is_property else "false")
        kinds = {
            d.get("Name"): d.get("Type")
            for d in message.iter(
                f"{{{TT}}}SimpleItemDescription", f"{{{TT}}}ElementItemDescription"
            )
        }
        assert kinds == {
            n: t for n, t in description.source + description.data + description.elements
        }


def test_unimplemented_operations_are_action_not_supported(events: Events) -> None:
    subscription = events.subscribe()
    headers = {"content-type": "application/soap+xml; charset=utf-8"}
    with httpx.Client(auth=httpx.DigestAuth(*ADMIN), headers=headers, timeout=10) as client:
        for url, body in [
            (
                subscription.address,
                "<tev:Seek><tev:UtcTime>2025-01-01T00:00:00Z</tev:UtcTime></tev:Seek>",
            ),
            (events.server.base_url + EVENTS_PATH, "<tev:GetEventBrokers/>"),
            (events.server.base_url + EVENTS_PATH, "<wsnt:Subscribe/>"),
        ]:
            response = client.post(url, content=_envelope(body))
            assert response.status_code == 500, response.text
            assert "ActionNotSupported" in response.text
            assert_valid(response.content, EVENT_WSDL)


def _envelope(body: str, header: str = "", version: int = 12) -> bytes:
    text = envelope(body, header, version=version).decode()
    return text.replace(
        "<s:Envelope ", f'<s:Envelope xmlns:tev="{TEV}" xmlns:wsnt="{WSNT}" xmlns:wsa="{WSA}" ', 1
    ).encode()


# --- subscriptions and pulling ----------------------------------------------------------------


def test_subscribe_pull_in_order_and_namespaces(events: Events, server: OnvifServer) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    subscription = events.subscribe(InitialTerminationTime="PT60S")
    root = etree.fromstring(events.client.last_response)
    response = root.find("env:Body/tev:CreatePullPointSubscriptionResponse", NS)
    assert [c.tag for c in response] == [
        f"{{{TEV}}}SubscriptionReference",
        f"{{{WSNT}}}CurrentTime",
        f"{{{WSNT}}}TerminationTime",
    ]
    assert response.findtext("wsnt:CurrentTime", namespaces=NS).endswith("Z")
    assert subscription.address.startswith(server.base_url + PULLPOINT_PATH + "/")
    assert dt.timedelta(seconds=59) <= subscription.termination - before <= dt.timedelta(seconds=62)
    publish(server, *(receiver_event(f"R{n}") for n in range(3)))
    pulled = subscription.pull()
    assert [(p.topic, p.items["ReceiverToken"]) for p in pulled] == [
        (RECEIVER, "R0"),
        (RECEIVER, "R1"),
        (RECEIVER, "R2"),
    ]
    assert pulled[0].operation is None
    assert pulled[0].message.get("UtcTime").endswith("Z")
    assert subscription.pull() == []  # none twice


def test_properties_start_initialized(events: Events, server: OnvifServer) -> None:
    bus = server.daemon.bus
    bus.publish_property(TRACK, track_source("VIDEO001"), (("IsDataPresent", "true"),))
    bus.publish_property(JOB, (("RecordingJobToken", "JOB1"),), (("State", "Active"),))
    subscription = events.subscribe()
    first = subscription.pull()
    assert [(p.topic, p.operation) for p in first] == [(TRACK, "Initialized"), (JOB, "Initialized")]
    bus.publish_property(TRACK, track_source("VIDEO001"), (("IsDataPresent", "false"),))
    bus.publish_property(TRACK, track_source("AUDIO001"), (("IsDataPresent", "true"),))
    changes = subscription.pull()
    assert [(p.operation, p.items["Track"]) for p in changes] == [
        ("Changed", "VIDEO001"),
        ("Initialized", "AUDIO001"),
    ]
    subscription.call(subscription.pull_point, "SetSynchronizationPoint")
    synced = subscription.pull()
    assert {(p.topic, p.operation, p.items.get("IsDataPresent")) for p in synced} == {
        (TRACK, "Initialized", "false"),
        (TRACK, "Initialized", "true"),
        (JOB, "Initialized", None),
    }
    policy = etree.Element(f"{{{TEV}}}ChangedOnly")
    policy.text = "true"
    changed_only = events.subscribe(SubscriptionPolicy={"_value_1": [policy]})
    assert changed_only.pull() == []
    bus.delete_property(TRACK, track_source("AUDIO001"))
    assert [p.operation for p in subscription.pull()] == ["Deleted"]
    assert changed_only.pull() == []


def test_message_limit_keeps_the_rest(events: Events, server: OnvifServer) -> None:
    subscription = events.subscribe()
    publish(server, *(receiver_event(f"R{n}") for n in range(5)))
    assert [p.items["ReceiverToken"] for p in subscription.pull(limit=2)] == ["R0", "R1"]
    assert [p.items["ReceiverToken"] for p in subscription.pull(limit=10)] == ["R2", "R3", "R4"]


def test_pull_returns_at_the_timeout_or_with_the_first_event(
    events: Events, server: OnvifServer
) -> None:
    subscription = events.subscribe()
    started = time.monotonic()
    assert subscription.pull("PT1S") == []
    assert 1.0 <= time.monotonic() - started < 2.5
    threading.Timer(0.3, publish, (server, receiver_event("late"))).start()
    started = time.monotonic()
    pulled = subscription.pull("PT20S")
    assert [p.items["ReceiverToken"] for p in pulled] == ["late"]
    assert time.monotonic() - started < 3


def test_topic_filters_select_exactly(events: Events, server: OnvifServer) -> None:
    subscriptions = {
        "history": events.subscribe(topic("tns1:RecordingHistory//.")),
        "either": events.subscribe(topic("tns1:Receiver/ChangeState|tns1:RecordingConfig//.")),
        "concrete": events.subscribe(topic("tns1:RecordingConfig/JobState", CONCRETE)),
        "own prefix": events.subscribe(topic("top:Receiver//.", top=TNS1)),
        "undeclared": events.subscribe(topic("tns1:Receiver/ChangeState", wsnt=WSNT)),
        "elsewhere": events.subscribe(topic("tns1:VideoSource//.")),
    }
    bus = server.daemon.bus
    bus.publish(receiver_event("R1"))
    bus.publish(Event("tns1:Receiver/ConnectionFailed", (("ReceiverToken", "R1"),)))
    bus.publish_property(JOB, (("RecordingJobToken", "JOB1"),), (("State", "Idle"),))
    bus.publish_property(TRACK, track_source("VIDEO001"), (("IsDataPresent", "true"),))
    got = {name: [p.topic for p in s.pull()] for name, s in subscriptions.items()}
    assert got == {
        "history": [TRACK],
        "either": [RECEIVER, JOB],
        "concrete": [JOB],
        "own prefix": [RECEIVER, "tns1:Receiver/ConnectionFailed"],
        "undeclared": [RECEIVER],
        "elsewhere": [],
    }


def test_message_content_filters_select_exactly(events: Events, server: OnvifServer) -> None:
    video = events.subscribe(
        topic("tns1:RecordingHistory//."),
        content('boolean(//tt:SimpleItem[@Name="Track" and @Value="VIDEO001"])'),
    )
    not_r1 = events.subscribe(content('not(boolean(//tt:SimpleItem[@Value="R1"]))'))
    bus = server.daemon.bus
    bus.publish_property(TRACK, track_source("VIDEO001"), (("IsDataPresent", "true"),))
    bus.publish_property(TRACK, track_source("AUDIO001"), (("IsDataPresent", "true"),))
    bus.publish(receiver_event("R1"))
    bus.publish(receiver_event("R2"))
    assert [p.items["Track"] for p in video.pull()] == ["VIDEO001"]
    assert [(p.topic, p.items.get("ReceiverToken")) for p in not_r1.pull()] == [
        (TRACK, None),
        (TRACK, None),
        (RECEIVER, "R2"),
    ]


FULL_DIALECT = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Full"
INVALID_FILTERS = [
    ([topic("tns1:Receiver", FULL_DIALECT)], "TopicExpressionDialectUnknownFault"),
    ([topic("tns1:Receiver//ChangeState")], "InvalidTopicExpressionFault"),
    ([topic("bad:Receiver")], "InvalidTopicExpressionFault"),
    ([content("boolean(//tt:Nothing)")], "InvalidMessageContentExpressionFault"),
    ([content("boolean(//tt:SimpleItem)", "urn:x")], "InvalidMessageContentExpressionFault"),
]


@pytest.mark.parametrize(("parts", "name"), INVALID_FILTERS)
def test_invalid_filters_are_wsnt_faults(
    events: Events, parts: list[etree._Element], name: str
) -> None:
    fault = events.fault("CreatePullPointSubscription", Filter=events.filter(*parts))
    assert fault_chain(fault) == ["Receiver", wsnt(name)]
    detail = last_fault(events)
    assert detail.find(f"wsnt:{name}/{{{WSRF_BF}}}Timestamp", NS) is not None
    assert manager_of(events.server).count == 0


def test_unknown_filter_element_is_invalid_filter_fault(events: Events) -> None:
    producer = etree.Element(f"{{{WSNT}}}ProducerProperties", Dialect="urn:x")
    producer.text = "x"
    foreign = etree.Element("{urn:example}Mine")
    for part, namespace in [(producer, WSNT), (foreign, "urn:example")]:
        fault = events.fault("CreatePullPointSubscription", Filter=events.filter(part))
        assert fault_chain(fault) == ["Receiver", wsnt("InvalidFilterFault")]
        unknown = last_fault(events).find("wsnt:InvalidFilterFault/wsnt:UnknownFilter", NS)
        prefix, _, local = unknown.text.partition(":")
        assert (unknown.nsmap[prefix], local) == (namespace, etree.QName(part).localname)


def test_initial_termination_time_forms(events: Events) -> None:
    now = dt.datetime.now(dt.UTC)
    absolute = (now + dt.timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    subscription = events.subscribe(InitialTerminationTime=absolute)
    assert subscription.termination.strftime("%Y-%m-%dT%H:%M:%SZ") == absolute
    default = events.subscribe()
    assert dt.timedelta(seconds=55) < default.termination - now < dt.timedelta(seconds=65)
    clamped = events.subscribe(InitialTerminationTime="P2D")
    assert clamped.termination - now < dt.timedelta(hours=1, seconds=5)
    for bad in ("PT0S", "2001-01-01T00:00:00Z", "tomorrow"):
        fault = events.fault("CreatePullPointSubscription", InitialTerminationTime=bad)
        assert fault_chain(fault) == ["Receiver", wsnt("UnacceptableInitialTerminationTimeFault")]
        detail = last_fault(events)
        assert detail.find(".//wsnt:MinimumTime", NS) is not None


def test_renew_unsubscribe_and_unknown_pull_points(events: Events) -> None:
    subscription = events.subscribe(InitialTerminationTime="PT30S")
    renewed = subscription.call(subscription.manager, "Renew", TerminationTime="PT120S")
    assert (
        dt.timedelta(seconds=118)
        <= renewed.TerminationTime - renewed.CurrentTime
        <= dt.timedelta(seconds=121)
    )
    root = etree.fromstring(events.client.last_response)
    response = root.find(f"env:Body/{{{WSNT}}}RenewResponse", NS)
    assert [c.tag for c in response] == [f"{{{WSNT}}}TerminationTime", f"{{{WSNT}}}CurrentTime"]
    with pytest.raises(zeep.exceptions.Fault) as info:
        subscription.manager.Renew(TerminationTime="2001-01-01T00:00:00Z")
    assert fault_chain(info.value) == ["Receiver", wsnt("UnacceptableTerminationTimeFault")]
    assert_valid(events.client.last_response, EVENT_WSDL)
    subscription.call(subscription.manager, "Unsubscribe")
    for port, operation, kwargs in [
        (subscription.pull_point, "PullMessages", {"Timeout": "PT0S", "MessageLimit": 1}),
        (subscription.manager, "Renew", {"TerminationTime": "PT60S"}),
        (subscription.manager, "Unsubscribe", {}),
        (subscription.pull_point, "SetSynchronizationPoint", {}),
    ]:
        with pytest.raises(zeep.exceptions.Fault) as info:
            getattr(port, operation)(**kwargs)
        assert_valid(events.client.last_response, EVENT_WSDL)
        assert fault_chain(info.value) == ["Receiver", f"{{{WSRF_R}}}ResourceUnknownFault"]
        detail = last_fault(events)
        assert detail.find(f"{{{WSRF_R}}}ResourceUnknownFault/{{{WSRF_BF}}}Timestamp") is not None
    assert manager_of(events.server).count == 0


def test_pull_point_operations_routed_by_wsa_to(events: Events, server: OnvifServer) -> None:
    subscription = events.subscribe()
    publish(server, receiver_event("R9"))
    body = pull_body("PT0S", 5)
    to = f"<wsa:To>{subscription.address}</wsa:To><wsa:MessageID>urn:uuid:1</wsa:MessageID>"
    with httpx.Client(auth=httpx.DigestAuth(*ADMIN), timeout=10) as client:
        headers = {"content-type": "application/soap+xml"}
        url = server.base_url + EVENTS_PATH
        routed = client.post(url, content=_envelope(body, to), headers=headers)
        assert routed.status_code == 200, routed.text
        root = assert_valid(routed.content, EVENT_WSDL)
        assert root.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:1"
        assert root.findtext("env:Header/wsa:Action", namespaces=NS).endswith(
            "PullPointSubscription/PullMessagesResponse"
        )
        assert len(root.findall(".//wsnt:NotificationMessage", NS)) == 1
        unaddressed = client.post(url, content=_envelope(body), headers=headers)
        assert unaddressed.status_code == 500 and "ResourceUnknownFault" in unaddressed.text
        unknown = client.post(url + "/pullpoint/nope", content=_envelope(body), headers=headers)
        assert unknown.status_code == 500 and "ResourceUnknownFault" in unknown.text
        soap11 = client.post(
            subscription.address,
            content=_envelope(body, version=11),
            headers={"content-type": "text/xml; charset=utf-8"},
        )
        assert soap11.status_code == 200, soap11.text
        assert b'xmlns:tns1="http://www.onvif.org/ver10/topics"' in soap11.content


def test_pull_limits_and_concurrent_pulls(events: Events, server: OnvifServer) -> None:
    subscription = events.subscribe()
    with pytest.raises(zeep.exceptions.Fault) as info:
        subscription.pull_point.PullMessages(Timeout="PT10M", MessageLimit=10)
    root = assert_valid(events.client.last_response, EVENT_WSDL)
    assert fault_chain(info.value) == ["Sender", ter("InvalidArgVal")]
    limits = root.find(".//env:Detail/tev:PullMessagesFaultResponse", NS)
    assert limits.findtext("tev:MaxTimeout", namespaces=NS) == "PT300S"
    assert int(limits.findtext("tev:MaxMessageLimit", namespaces=NS)) >= 100
    point = manager_of(server).get(subscription.address.rsplit("/", 1)[1])
    headers = {"content-type": "application/soap+xml; charset=utf-8"}
    with (
        httpx.Client(auth=httpx.DigestAuth(*ADMIN), timeout=10, headers=headers) as client,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        waiting = pool.submit(_raw_call, client, subscription.address, pull_body("PT5S"))
        deadline = time.monotonic() + 5
        while not point.pulling and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(zeep.exceptions.Fault) as info:
            subscription.pull_point.PullMessages(Timeout="PT1S", MessageLimit=1)
        assert_valid(events.client.last_response, EVENT_WSDL)
        assert fault_chain(info.value) == ["Receiver", wsnt("UnableToGetMessagesFault")]
        publish(server, receiver_event("wake"))
        root = waiting.result(5)
    assert len(root.findall(".//wsnt:NotificationMessage", NS)) == 1


def pull_body(timeout: str, limit: int = 10) -> str:
    return (
        f"<tev:PullMessages><tev:Timeout>{timeout}</tev:Timeout>"
        f"<tev:MessageLimit>{limit}</tev:MessageLimit></tev:PullMessages>"
    )


def test_element_items_in_messages(events: Events, server: OnvifServer) -> None:
    subscription = events.subscribe(topic("tns1:RecordingConfig//."))
    information = etree.Element(f"{{{TT}}}RecordingJobStateInformation")
    etree.SubElement(information, f"{{{TT}}}RecordingToken").text = "REC1"
    etree.SubElement(information, f"{{{TT}}}State").text = "PartiallyActive"
    server.daemon.bus.publish_property(
        JOB,
        (("RecordingJobToken", "JOB1"),),
        (("State", "PartiallyActive"),),
        elements=(("Information", information),),
    )
    server.daemon.bus.publish(
        Event(
            "tns1:RecordingConfig/RecordingJobConfiguration",
            (("RecordingJobToken", "JOB1"),),
            elements=(("Configuration", object()),),  # not XML: left out
        )
    )
    job, configuration = subscription.pull()
    element = job.message.find(
        "tt:Data/tt:ElementItem[@Name='Information']/tt:RecordingJobStateInformation", NS
    )
    assert element is not None and element.findtext("tt:State", namespaces=NS) == "PartiallyActive"
    assert configuration.message.find("tt:Data", NS) is None


# --- many pull points, expiry, access -----------------------------------------------------------


def _raw_call(client: httpx.Client, url: str, body: str) -> etree._Element:
    """POST with a fresh WS-UsernameToken (safe from many threads, unlike a shared Digest)."""
    response = client.post(url, content=_envelope(body, username_token(*USER)))
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content)


def test_64_pull_points_wait_and_wake_together(events: Events, server: OnvifServer) -> None:
    url = server.base_url + EVENTS_PATH
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    headers = {"content-type": "application/soap+xml; charset=utf-8"}
    with httpx.Client(timeout=20, limits=limits, headers=headers) as client:
        create = "<tev:CreatePullPointSubscription/>"
        addresses = [
            _raw_call(client, url, create).findtext(".//wsa:Address", namespaces=NS)
            for _ in range(64)
        ]
        assert len(set(addresses)) == 64
        full = client.post(url, content=_envelope(create, username_token(*USER)))
        assert full.status_code == 500 and "SubscribeCreationFailedFault" in full.text
        assert_valid(full.content, EVENT_WSDL)
        manager = manager_of(server)
        points = [manager.get(a.rsplit("/", 1)[1]) for a in addresses]
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            futures = [pool.submit(_raw_call, client, a, pull_body("PT15S")) for a in addresses]
            deadline = time.monotonic() + 10
            while not all(p.pulling for p in points) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert all(p.pulling for p in points)
            # the service still answers other requests while 64 PullMessages wait
            started = time.monotonic()
            assert _raw_call(client, url, "<tev:GetEventProperties/>") is not None
            assert time.monotonic() - started < 2
            publish(server, receiver_event("all"))
            results = [f.result(10) for f in futures]
            assert time.monotonic() - started < 5
        for root in results:
            assert_valid(root, EVENT_WSDL)
            assert len(root.findall(".//wsnt:NotificationMessage", NS)) == 1


def test_expired_pull_points_are_reaped(events: Events, server: OnvifServer) -> None:
    manager = manager_of(server)
    subscription = events.subscribe(InitialTerminationTime="PT1S")
    kept = events.subscribe(InitialTerminationTime="PT60S")
    assert manager.count == 2
    time.sleep(1.2)
    assert manager.reap() == 1
    assert manager.count == 1
    with pytest.raises(zeep.exceptions.Fault) as info:
        subscription.pull_point.PullMessages(Timeout="PT0S", MessageLimit=1)
    assert fault_chain(info.value) == ["Receiver", f"{{{WSRF_R}}}ResourceUnknownFault"]
    assert kept.pull() == []
    jobs = [j for j in server.daemon.scheduler.get_jobs() if j.func == manager.reap]
    assert len(jobs) == 1  # the periodic reaper, run by the daemon's scheduler


@pytest.mark.parametrize("credentials", [USER, OPERATOR, ADMIN])
def test_every_user_level_may_use_events(server: OnvifServer, credentials: tuple[str, str]) -> None:
    events = Events(server, credentials)
    events.call("GetEventProperties")
    subscription = events.subscribe()
    assert subscription.pull() == []
    subscription.call(subscription.pull_point, "SetSynchronizationPoint")
    subscription.call(subscription.manager, "Renew", TerminationTime="PT30S")
    subscription.call(subscription.manager, "Unsubscribe")


def test_anonymous_gets_only_the_capabilities(server: OnvifServer) -> None:
    assert Events(server, None).call("GetServiceCapabilities").MaxPullPoints == 64
    address = Events(server).subscribe().address
    url = server.base_url + EVENTS_PATH
    for target, body in [
        (url, "<tev:GetEventProperties/>"),
        (url, "<tev:CreatePullPointSubscription/>"),
        (address, pull_body("PT0S")),
        (address, "<wsnt:Unsubscribe/>"),
        (address, "<wsnt:Renew><wsnt:TerminationTime>PT10S</wsnt:TerminationTime></wsnt:Renew>"),
    ]:
        response = post(target, _envelope(body))
        assert response.status_code == 401, (body, response.text)
        assert response.headers["www-authenticate"].startswith("Digest")
    assert manager_of(server).count == 1


def test_event_broker_configuration_needs_an_administrator(server: OnvifServer) -> None:
    read = "<tev:GetEventBrokers/>"
    delete = "<tev:DeleteEventBroker><tev:Address>mqtt://x</tev:Address></tev:DeleteEventBroker>"
    headers = {"content-type": "application/soap+xml"}
    with httpx.Client(auth=httpx.DigestAuth(*OPERATOR), timeout=10, headers=headers) as client:
        url = server.base_url + EVENTS_PATH
        assert "ActionNotSupported" in client.post(url, content=_envelope(read)).text
        refused = client.post(url, content=_envelope(delete))
        assert refused.status_code == 400 and "NotAuthorized" in refused.text


def test_our_published_wsdl_is_usable(events: Events, server: OnvifServer) -> None:
    ours = zeep.Client(server.base_url + EVENTS_PATH + "?wsdl")
    ours.transport.session.auth = HTTPDigestAuth(*ADMIN)
    result = ours.service.CreatePullPointSubscription(InitialTerminationTime="PT30S")
    address = result.SubscriptionReference.Address
    assert address.startswith(server.base_url + PULLPOINT_PATH)
    pull_point = ours.create_service(f"{{{TEV}}}EventService", address)
    renewed = pull_point.Renew(TerminationTime="PT60S")
    assert renewed.TerminationTime > renewed.CurrentTime
    pull_point.Unsubscribe()


def test_device_service_is_left_alone(server: OnvifServer) -> None:
    """Declaring tns1 & co. on responses is the event service's own post-processing."""
    response = post(server.xaddr, envelope("<tds:GetSystemDateAndTime/>"))
    assert b"xmlns:tns1" not in response.content
    assert TDS.encode() in response.content


@pytest.mark.parametrize(
    "body",
    [
        "<tev:PullMessages><tev:Timeout>PT1S</tev:Timeout></tev:PullMessages>",
        pull_body("soon"),
        pull_body("-PT1S"),
        "<tev:PullMessages><tev:Timeout>PT1S</tev:Timeout>"
        "<tev:MessageLimit>x</tev:MessageLimit></tev:PullMessages>",
    ],
)
def test_malformed_pull_requests_are_sender_faults(events: Events, body: str) -> None:
    subscription = events.subscribe()
    response = post(subscription.address, _envelope(body, username_token(*ADMIN)))
    assert response.status_code == 400, response.text
    assert_valid(response.content, EVENT_WSDL)
    assert "ter:InvalidArg" in response.text
