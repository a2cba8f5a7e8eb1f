"""Event service building blocks without a server: filters, the topic table, rendering, times."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from nvr.events import Event
from nvr.onvif.events_filter import (
    ITEM_FILTER,
    XPATH_1,
    FilterError,
    Items,
    parse_filter,
    parse_message_content,
    parse_topic_expression,
)
from nvr.onvif.events_render import message_element, utc_text
from nvr.onvif.events_time import parse_absolute_or_relative, parse_datetime, parse_duration
from nvr.onvif.events_topics import (
    BY_TOPIC,
    CONCRETE,
    CONCRETE_SET,
    TNS1,
    TOPICS,
    topic_path,
    topic_set,
)
from nvr.onvif.namespaces import TT, WSNT

NVR = Path(__file__).resolve().parents[2] / "nvr"
TOPICS_NS = {"tns1": TNS1}


def topics(expression: str, dialect: str = CONCRETE_SET, nsmap: dict | None = None) -> set[str]:
    """Which of our topics ``expression`` selects."""
    patterns = parse_topic_expression(expression, dialect, TOPICS_NS if nsmap is None else nsmap)
    return {t.topic for t in TOPICS if any(p.matches(t.path) for p in patterns)}


RECORDING_CONFIG = {t.topic for t in TOPICS if t.topic.startswith("tns1:RecordingConfig/")}
HISTORY = {"tns1:RecordingHistory/Recording/State", "tns1:RecordingHistory/Track/State"}


def test_concrete_set_paths_subtrees_and_alternatives() -> None:
    assert topics("tns1:RecordingConfig/JobState") == {"tns1:RecordingConfig/JobState"}
    assert topics("tns1:RecordingConfig//.") == RECORDING_CONFIG
    assert topics(" tns1:RecordingConfig//. | tns1:RecordingHistory//.") == (
        RECORDING_CONFIG | HISTORY
    )
    assert topics("tns1:RecordingHistory/Track//.") == {"tns1:RecordingHistory/Track/State"}
    assert topics("tns1:RecordingConfig") == set()  # a node, not its subtree
    assert topics("tns1:VideoSource//.") == set()  # valid, just nothing of ours
    assert topics("tns1:Receiver/ChangeState", CONCRETE) == {"tns1:Receiver/ChangeState"}
    # the misspelt dialect URI of Core's own example is accepted as ConcreteSet
    misspelt = "http://docs.oasis-open.org/wsnt/t-1/TopicExpression/ConcreteSet"
    assert topics("tns1:Receiver//.", misspelt) == {
        "tns1:Receiver/ChangeState",
        "tns1:Receiver/ConnectionFailed",
    }


def test_topic_prefixes_resolve_by_namespace() -> None:
    assert topics("top:Receiver/ChangeState", nsmap={"top": TNS1}) == {"tns1:Receiver/ChangeState"}
    assert topics("tns1:Receiver//.", nsmap={"tns1": "urn:other"}) == set()
    # clients often forget xmlns:tns1; unprefixed roots also mean the ONVIF topics
    assert topics("tns1:Receiver/ConnectionFailed", nsmap={}) == {"tns1:Receiver/ConnectionFailed"}
    assert topics("Receiver/ConnectionFailed", nsmap={}) == {"tns1:Receiver/ConnectionFailed"}
    assert topics("tns1:Receiver/tns1:ChangeState") == {"tns1:Receiver/ChangeState"}


@pytest.mark.parametrize(
    "expression",
    ["", "tns1:", "tns1:Receiver/", "tns1:Receiver//ChangeState", "tns1:*", "x:Receiver", "a b"],
)
def test_invalid_topic_expressions(expression: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_topic_expression(expression, CONCRETE_SET, TOPICS_NS)
    assert info.value.fault == "InvalidTopicExpressionFault"


def test_unknown_topic_dialect() -> None:
    with pytest.raises(FilterError) as info:
        parse_topic_expression("tns1:Receiver", "http://docs.oasis-open.org/wsn/t-1/Full", {})
    assert info.value.fault == "TopicExpressionDialectUnknownFault"


JOB = Event(
    "tns1:RecordingConfig/JobState",
    (("RecordingJobToken", "JOB1"),),
    (("State", "Active"),),
    elements=(("Information", etree.Element(f"{{{TT}}}RecordingJobStateInformation")),),
)
TRACK = Event(
    "tns1:RecordingHistory/Track/State",
    (("RecordingToken", "REC1"), ("Track", "VIDEO001")),
    (("IsDataPresent", "true"),),
)


def content(expression: str, event: Event, dialect: str = ITEM_FILTER) -> bool:
    predicate = parse_message_content(expression, dialect, {"tt": TT})
    return predicate(Items.of(event))


@pytest.mark.parametrize(
    ("expression", "job", "track"),
    [
        ('boolean(//tt:SimpleItem[@Name="RecordingJobToken" and @Value="JOB1"])', True, False),
        ('boolean(//tt:SimpleItem[@Name="RecordingToken"])', False, True),
        ("boolean(//tt:SimpleItem[@Name='Track' and @Value='VIDEO001'])", False, True),
        ('not(boolean(//tt:SimpleItem[@Name="RecordingToken"]))', True, False),
        ('boolean(//tt:ElementItem[@Name="Information"])', True, False),
        ('boolean(//tt:ElementItem[@Value="x"])', False, False),
        ('boolean(//SimpleItem[@Name = "State" and not(@Value = "Idle")])', True, False),
        ('boolean(//tt:SimpleItem[@Value != "true"])', True, True),
        # 'and' binds tighter than 'or'
        (
            'boolean(//tt:SimpleItem[@Name="Track"]) or boolean(//tt:SimpleItem[@Name="State"])'
            ' and boolean(//tt:SimpleItem[@Value="Idle"])',
            False,
            True,
        ),
        (
            '(boolean(//tt:SimpleItem[@Name="Track"]) or boolean(//tt:SimpleItem[@Name="State"]))'
            ' and boolean(//tt:SimpleItem[@Value="Active"])',
            True,
            False,
        ),
        ("//tt:SimpleItem[@Name=“Track”]", False, True),  # typographic quotes, bare path
        ("boolean(//tt:SimpleItem)", True, True),
    ],
)
def test_item_filter(expression: str, job: bool, track: bool) -> None:
    assert content(expression, JOB) is job
    assert content(expression, TRACK) is track


def test_xpath_dialect_accepts_the_same_subset() -> None:
    assert content('boolean(//tt:SimpleItem[@Name="Track"])', TRACK, XPATH_1)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "boolean(//tt:Foo)",
        'boolean(//tt:SimpleItem[@Name="x"]',
        'boolean(//tt:SimpleItem[@Other="x"])',
        'boolean(//tt:SimpleItem[@Name<"x"])',
        'boolean(//xx:SimpleItem[@Name="x"])',
        'boolean(//tt:SimpleItem[@Name="x"]) junk',
        'boolean(//tt:SimpleItem[@Name="x"]) and',
    ],
)
def test_invalid_item_filters(expression: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_message_content(expression, ITEM_FILTER, {"tt": TT})
    assert info.value.fault == "InvalidMessageContentExpressionFault"
    with pytest.raises(FilterError):
        parse_message_content('boolean(//tt:SimpleItem[@Name="x"])', "urn:unknown", {})


def test_whole_filters_and_each_part_must_match() -> None:
    xml = (
        f'<tev:Filter xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="{WSNT}"'
        f' xmlns:tns1="{TNS1}" xmlns:tt="{TT}">'
        f'<wsnt:TopicExpression Dialect="{CONCRETE_SET}">tns1:RecordingConfig//.'
        "|tns1:RecordingHistory//.</wsnt:TopicExpression>"
        f'<wsnt:MessageContent Dialect="{ITEM_FILTER}">'
        'boolean(//tt:SimpleItem[@Name="RecordingToken" and @Value="REC1"])'
        "</wsnt:MessageContent></tev:Filter>"
    )
    event_filter = parse_filter(etree.fromstring(xml))
    assert event_filter.matches(TRACK)
    assert not event_filter.matches(JOB)  # topic matches, content does not
    other = Event("tns1:Receiver/ChangeState", (("RecordingToken", "REC1"),))
    assert not event_filter.matches(other)  # content matches, topic does not
    assert parse_filter(None).matches(other)
    unknown = etree.fromstring(
        f'<f xmlns:wsnt="{WSNT}"><wsnt:ProducerProperties>a</wsnt:ProducerProperties></f>'
    )
    with pytest.raises(FilterError) as info:
        parse_filter(unknown)
    assert info.value.fault == "InvalidFilterFault"
    assert info.value.unknown == etree.QName(WSNT, "ProducerProperties")


def _tns1_constants() -> dict[str, str]:
    """Every string literal of the package that is exactly a ``tns1:`` topic, and where."""
    found: dict[str, str] = {}
    for path in NVR.rglob("*.py"):
        relative = path.relative_to(NVR).as_posix()
        if relative.startswith(("demo/", "onvif/events_")):
            continue  # the demo camera's metadata stream is not ours; the table is the table
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("tns1:") and " " not in text and "\n" not in text:
                    found.setdefault(text, relative)
    return found


def test_every_produced_topic_is_in_the_topic_set() -> None:
    produced = _tns1_constants()
    assert {"tns1:RecordingConfig/JobState", "tns1:Receiver/ChangeState"} <= set(produced)
    missing = {t: where for t, where in produced.items() if t not in BY_TOPIC}
    assert not missing, f"add these topics to nvr/onvif/events_topics.py: {missing}"


def test_topic_set_tree() -> None:
    root = topic_set()
    leaves = [e for e in root.iter() if e.get("{http://docs.oasis-open.org/wsn/t-1}topic")]
    assert len(leaves) == len(TOPICS)
    job = root.find(f"{{{TNS1}}}RecordingConfig/JobState")
    assert job is not None and job.find(f"{{{TT}}}MessageDescription").get("IsProperty") == "true"
    state = root.find(f"{{{TNS1}}}RecordingHistory/Track/State")
    names = [d.get("Name") for d in state.iter(f"{{{TT}}}SimpleItemDescription")]
    assert names == ["RecordingToken", "Track", "IsDataPresent"]
    for description in TOPICS:
        assert len(description.item_names()) == len(
            description.source + description.data + description.elements
        ), f"{description.topic}: item names must be unique across groups"
    assert topic_path("tns1:RecordingConfig/JobState") == (TNS1, ("RecordingConfig", "JobState"))
    with pytest.raises(ValueError):
        topic_path("tt:Nope")


def test_message_rendering() -> None:
    information = etree.Element(f"{{{TT}}}RecordingJobStateInformation")
    event = Event(
        "tns1:RecordingConfig/JobState",
        (("RecordingJobToken", "JOB1"),),
        (("State", "Active"),),
        time_us=1_740_823_200_120_000,
        is_property=True,
        property_operation="Changed",
        elements=(
            ("Information", information),
            ("Lazy", lambda: etree.Element(f"{{{TT}}}X")),
            ("Broken", object()),
        ),
    )
    message = message_element(event)
    assert message.get("UtcTime") == "2025-03-01T10:00:00.120Z"
    assert message.get("PropertyOperation") == "Changed"
    data = message.find(f"{{{TT}}}Data")
    assert [c.get("Name") for c in data] == ["State", "Information", "Lazy"]
    assert data[1][0].tag == information.tag and information.getparent() is None  # copied
    assert message_element(Event("tns1:Receiver/ChangeState")).get("PropertyOperation") is None
    assert utc_text(1_740_823_200_000_000) == "2025-03-01T10:00:00Z"


def test_durations_and_times() -> None:
    assert parse_duration("PT60S") == 60
    assert parse_duration("PT1M30.5S") == 90.5
    assert parse_duration("P1DT1H") == 90000
    assert parse_duration("-PT5S") == -5
    for bad in ("", "P", "PT", "60", "PT1H2", "P1S"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    stamp = dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC).timestamp()
    assert parse_datetime("2025-03-01T10:00:00Z") == stamp
    assert parse_datetime("2025-03-01T10:00:00") == stamp
    assert parse_datetime("2025-03-01T11:00:00+01:00") == stamp
    assert parse_absolute_or_relative("PT10S", 100.0) == 110.0
    assert parse_absolute_or_relative("2025-03-01T10:00:00.5Z", 0) == stamp + 0.5
