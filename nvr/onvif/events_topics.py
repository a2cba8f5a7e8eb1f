"""Every topic the recorder publishes, described once: the TopicSet of GetEventProperties.

Producers (receivers, recording jobs, recording history, exports) publish ``tns1:…`` topics on
the event bus; this table is what we promise about them (Core §9.6.2: ``wstop:topic`` leaves
with a ``tt:MessageDescription``). A test checks that every ``tns1:`` topic string in the
package is listed here, and the pull points warn once about a published topic that is not.
Item types are the ones the service specifications declare (RecordingControl §5.25, Recording
Search §7, Receiver §5.6, Core §9.11.1, ResourceQuery §6.2), with their misspellings (``xs:String``,
``xsDateTime``) corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from lxml import etree

from nvr.onvif.namespaces import SOAP12, TT, clark

TNS1: Final = "http://www.onvif.org/ver10/topics"
WSTOP: Final = "http://docs.oasis-open.org/wsn/t-1"
XS: Final = "http://www.w3.org/2001/XMLSchema"
TOPIC_PREFIX: Final = "tns1"
CONCRETE: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
CONCRETE_SET: Final = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
VALUE_PREFIXES: Final = {TOPIC_PREFIX: TNS1, "tt": TT, "xs": XS, "soapenv": SOAP12}
"""Prefixes used inside QName *values* (topic text, item types): declared on every response."""

TopicPath = tuple[str, tuple[str, ...]]
"""(topic namespace, (root, child, …)) — how filters and topics are compared."""

Items = tuple[tuple[str, str], ...]
"""(item name, QName of its type) pairs, in the order they are described."""


@dataclass(frozen=True, slots=True)
class TopicDescription:
    topic: str
    """``tns1:Root/Child`` — exactly the string producers publish."""
    is_property: bool
    source: Items = ()
    data: Items = ()
    elements: Items = ()
    """ElementItems of the Data group."""

    @property
    def path(self) -> TopicPath:
        return topic_path(self.topic)

    def item_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.source + self.data + self.elements)


_REC = ("RecordingToken", "tt:RecordingReference")
_TRACK = ("TrackToken", "tt:TrackReference")
_JOB = ("RecordingJobToken", "tt:RecordingJobReference")
_RECEIVER = ("ReceiverToken", "tt:ReferenceToken")
_MEDIA_URI = ("MediaUri", "tt:MediaUri")
# ResourceQuery §6.2: one message description for every tns1:Resource/<name> topic.
_RESOURCE_SOURCE = (("Token", "tt:ReferenceToken"),)
_RESOURCE_DATA = (("Name", "xs:string"), ("Scope", "xs:string"), ("Offline", "xs:boolean"))
_RESOURCE_ELEMENTS = (("Location", "tt:GeoLocation"),)

TOPICS: Final = (
    TopicDescription(
        "tns1:RecordingConfig/JobState",
        True,
        (_JOB,),
        (("State", "xs:string"),),
        (("Information", "tt:RecordingJobStateInformation"),),
    ),
    TopicDescription(
        "tns1:RecordingConfig/RecordingConfiguration",
        False,
        (_REC,),
        elements=(("Configuration", "tt:RecordingConfiguration"),),
    ),
    TopicDescription(
        "tns1:RecordingConfig/TrackConfiguration",
        False,
        (_REC, _TRACK),
        elements=(("Configuration", "tt:TrackConfiguration"),),
    ),
    TopicDescription(
        "tns1:RecordingConfig/RecordingJobConfiguration",
        False,
        (_JOB,),
        elements=(("Configuration", "tt:RecordingJobConfiguration"),),
    ),
    TopicDescription(
        "tns1:RecordingConfig/DeleteTrackData",
        False,
        (_REC, _TRACK),
        (("StartTime", "xs:dateTime"), ("EndTime", "xs:dateTime")),
    ),
    TopicDescription("tns1:RecordingConfig/CreateRecording", False, (_REC,)),
    TopicDescription("tns1:RecordingConfig/DeleteRecording", False, (_REC,)),
    TopicDescription("tns1:RecordingConfig/CreateTrack", False, (_REC, _TRACK)),
    TopicDescription("tns1:RecordingConfig/DeleteTrack", False, (_REC, _TRACK)),
    TopicDescription(
        "tns1:RecordingHistory/Recording/State",
        True,
        (("RecordingToken", "tt:ReferenceToken"),),
        (("IsRecording", "xs:boolean"),),
    ),
    TopicDescription(
        "tns1:RecordingHistory/Track/State",
        True,
        (("RecordingToken", "tt:ReferenceToken"), ("Track", "tt:ReferenceToken")),
        (("IsDataPresent", "xs:boolean"),),
    ),
    TopicDescription(
        "tns1:Receiver/ChangeState",
        False,
        (_RECEIVER,),
        (("NewState", "tt:ReceiverState"), _MEDIA_URI),
    ),
    TopicDescription("tns1:Receiver/ConnectionFailed", False, (_RECEIVER,), (_MEDIA_URI,)),
    TopicDescription(
        "tns1:Monitoring/AsynchronousOperationStatus",
        True,
        (
            ("Token", "tt:ReferenceToken"),
            ("OperationName", "xs:string"),
            ("ServiceName", "xs:string"),
        ),
        (("Progress", "xs:float"), ("Alias", "xs:string")),
        (("FileProgressStatus", "tt:ArrayOfFileProgress"), ("Error", "soapenv:Fault")),
    ),
    TopicDescription(
        "tns1:Resource/VideoSource", True, _RESOURCE_SOURCE, _RESOURCE_DATA, _RESOURCE_ELEMENTS
    ),
    TopicDescription(
        "tns1:Resource/Recording", True, _RESOURCE_SOURCE, _RESOURCE_DATA, _RESOURCE_ELEMENTS
    ),
)

BY_TOPIC: Final = {t.topic: t for t in TOPICS}


@cache
def topic_path(topic: str) -> TopicPath:
    """``tns1:A/B`` → (topics namespace, ("A", "B")); producers always use the tns1 prefix."""
    prefix, _, rest = topic.partition(":")
    if prefix != TOPIC_PREFIX or not rest:
        raise ValueError(f"topic {topic!r} is not of the form tns1:Root/Child")
    return TNS1, tuple(rest.split("/"))


def describe(topic: str) -> TopicDescription | None:
    return BY_TOPIC.get(topic)


def _item_list(parent: etree._Element, group: str, simple: Items, elements: Items) -> None:
    if not simple and not elements:
        return
    node = etree.SubElement(parent, clark(TT, group))
    for name, kind in simple:
        etree.SubElement(node, clark(TT, "SimpleItemDescription"), Name=name, Type=kind)
    for name, kind in elements:
        etree.SubElement(node, clark(TT, "ElementItemDescription"), Name=name, Type=kind)


def topic_set() -> etree._Element:
    """``wstop:TopicSet``: root topics in tns1, children unqualified (hence ``xmlns=""``)."""
    root = etree.Element(clark(WSTOP, "TopicSet"), nsmap={"wstop": WSTOP, **VALUE_PREFIXES})
    nodes: dict[tuple[str, ...], etree._Element] = {}
    for description in TOPICS:
        _, names = description.path
        parent = root
        for depth in range(len(names)):
            key = names[: depth + 1]
            if key not in nodes:
                tag = clark(TNS1, names[0]) if depth == 0 else names[depth]
                nodes[key] = etree.SubElement(parent, tag)
            parent = nodes[key]
        parent.set(clark(WSTOP, "topic"), "true")
        message = etree.SubElement(parent, clark(TT, "MessageDescription"))
        message.set("IsProperty", "true" if description.is_property else "false")
        _item_list(message, "Source", description.source, ())
        _item_list(message, "Data", description.data, description.elements)
    return root
