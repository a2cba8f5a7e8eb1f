"""Resource queries (ResourceQuery, issue #8): receivers and recordings as tns1:Resource
property events, with remote tokens, the Location/Prefix/Scope/Select filters and
GetEventProperties. End to end on a started daemon (demo camera on), through zeep clients
built from the official event, receiver and recording WSDLs; every response is validated
against the official schemas. The filter, geo and token rules are also checked directly,
with hypothesis for the parsers."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import Engine

from nvr.events import Event, EventBus
from nvr.ingest.job_config import (
    RECEIVER_SOURCE,
    JobConfiguration,
    JobSource,
    JobState,
    SourceState,
    TrackState,
)
from nvr.ingest.receiver_config import ReceiverConfig, ReceiverInfo
from nvr.onvif.events_filter import EventFilter, FilterError, parse_filter
from nvr.onvif.events_pullpoint import PullPointManager
from nvr.onvif.namespaces import TEV, TRV, TT, WSNT
from nvr.onvif.receiver import RECEIVER_PATH
from nvr.onvif.recording import RECORDING_PATH
from nvr.onvif.resources import (
    MAX_LOCAL_TOKEN,
    MAX_REMOTE_TOKEN,
    RECORDING,
    VIDEO_SOURCE,
    Resource,
    device_prefix,
    local_token,
    receiver_of,
    remote_token,
    resources_of,
    source_scopes,
    split_remote_token,
)
from nvr.onvif.resources_filter import ResourceFilterError, parse_resource_filters
from nvr.onvif.resources_geo import GeoPoint, distance_m, geo_element, parse_location, point_of
from nvr.store.types import RecordingInfo
from tests.conftest import database_url
from tests.onvif.conftest import ADMIN
from tests.onvif.schemas import assert_valid
from tests.onvif.test_events import EVENT_WSDL, Events, Subscription, fault_chain, topic, wsnt
from tests.onvif.test_recording_service import (
    RECORDING_BINDING,
    RECORDING_WSDL,
    running,
)
from tests.onvif.zeep_client import OnvifClient
from tests.playback.helpers import LoopThread, wait_for
from tests.playback.replay_footage import loop
from tests.search.conftest import SearchClient

__all__ = ["database_url", "loop"]  # fixtures

RECEIVER_WSDL = "ver10/receiver.wsdl"
NS = {"tt": TT, "wsnt": WSNT, "tev": TEV}
DEMO_VIDEO_SOURCE = remote_token(device_prefix("demo-receiver"), "demo-receiver")


def resources() -> etree._Element:
    return topic("tns1:Resource//.")


# --- helpers ----------------------------------------------------------------------------------


class Message:
    """One resource message as pulled: operation, token and its Data items (in order)."""

    def __init__(self, element: etree._Element) -> None:
        self.topic = "tns1:" + (element.findtext("wsnt:Topic", namespaces=NS) or "").split(":")[1]
        message = element.find("wsnt:Message/tt:Message", NS)
        assert message is not None
        self.operation = message.get("PropertyOperation")
        self.token = message.find("tt:Source/tt:SimpleItem[@Name='Token']", NS).get("Value")
        self.data = [
            (i.get("Name"), i.get("Value")) for i in message.iterfind("tt:Data/tt:SimpleItem", NS)
        ]
        self.location = message.find("tt:Data/tt:ElementItem[@Name='Location']/tt:GeoLocation", NS)

    def item(self, name: str) -> str | None:
        return next((v for n, v in self.data if n == name), None)

    def scopes(self) -> list[str]:
        return [v for n, v in self.data if n == "Scope"]

    def __repr__(self) -> str:
        return f"<{self.operation} {self.topic} {self.token} {self.data}>"


def pull(subscription: Subscription, timeout: str = "PT0S") -> list[Message]:
    subscription.pull_point.PullMessages(Timeout=timeout, MessageLimit=100)
    root = assert_valid(subscription.events.client.last_response, EVENT_WSDL)
    return [Message(m) for m in root.iterfind(".//wsnt:NotificationMessage", NS)]


def pull_until(
    subscription: Subscription, done: Callable[[list[Message]], bool], limit: float = 20
) -> list[Message]:
    """Messages pulled until ``done(all so far)`` holds (fails after ``limit`` seconds)."""
    got: list[Message] = []
    deadline = time.monotonic() + limit
    while not done(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached; pulled {got}")
        got += pull(subscription, "PT1S")
    return got


def tt(name: str, *children: tuple[str, str], text: str | None = None) -> etree._Element:
    element = etree.Element(f"{{{TT}}}{name}", nsmap={"tt": TT})
    element.text = text
    for child, value in children:
        etree.SubElement(element, f"{{{TT}}}{child}").text = value
    return element


def location_filter(lat: float, lon: float, radius: float, unknown: bool | None = None) -> Any:
    items = [("lon", str(lon)), ("lat", str(lat)), ("radius", str(radius))]
    if unknown is not None:
        items.append(("includeUnknown", "true" if unknown else "false"))
    return tt("LocationFilter", *items)


class Nvr:
    """A started daemon with event, receiver and recording clients."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        base = f"http://127.0.0.1:{handle.port}"
        self.events = Events(SimpleNamespace(base_url=base))  # type: ignore[arg-type]
        self.receivers = OnvifClient(
            base + RECEIVER_PATH,
            digest=ADMIN,
            wsdl=RECEIVER_WSDL,
            binding=f"{{{TRV}}}ReceiverBinding",
        )
        self.recordings = OnvifClient(
            base + RECORDING_PATH, digest=ADMIN, wsdl=RECORDING_WSDL, binding=RECORDING_BINDING
        )

    def receiver(self, operation: str, **kwargs: Any) -> Any:
        result = getattr(self.receivers.service, operation)(**kwargs)
        assert_valid(self.receivers.last_response, RECEIVER_WSDL)
        return result

    def recording(self, operation: str, **kwargs: Any) -> Any:
        result = getattr(self.recordings.service, operation)(**kwargs)
        assert_valid(self.recordings.last_response, RECORDING_WSDL)
        return result

    def create_receiver(
        self, uri: str = "rtsp://192.0.2.10/stream", mode: str = "NeverConnect"
    ) -> str:
        configuration = {
            "Mode": mode,
            "MediaUri": uri,
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        }
        return str(self.receiver("CreateReceiver", Configuration=configuration).Token)

    def create_recording(self, name: str, location: str) -> str:
        source = {
            "SourceId": f"urn:{name}",
            "Name": name,
            "Location": location,
            "Description": f"{name} camera",
            "Address": "http://192.0.2.10/onvif",
        }
        configuration = {"Source": source, "Content": name, "MaximumRetentionTime": "PT0S"}
        return str(self.recording("CreateRecording", RecordingConfiguration=configuration))

    def create_job(self, recording: str, receiver: str, mode: str = "Idle") -> str:
        configuration = {
            "RecordingToken": recording,
            "Mode": mode,
            "Priority": 1,
            "Source": [{"SourceToken": {"Token": receiver}}],
        }
        return str(self.recording("CreateRecordingJob", JobConfiguration=configuration).JobToken)

    def settle(self, count: int) -> None:
        """Wait until ``count`` resources are published and the demo camera records (so no
        demo state change interleaves with what a test checks)."""

        def ready() -> bool:
            published = self.handle.daemon.resources.published()
            demo = [(VIDEO_SOURCE, DEMO_VIDEO_SOURCE), (RECORDING, "demo-recording")]
            online = all(k in published and not published[k].offline for k in demo)
            return online and len(published) == count

        wait_for(ready, timeout=30)


@pytest.fixture
def nvr(loop: LoopThread, engine: Engine, tmp_path: Path) -> Iterator[Nvr]:
    with running(loop, engine, tmp_path / "data") as handle:
        started = Nvr(handle)
        started.settle(2)
        yield started


def video(token: str) -> str:
    return remote_token(device_prefix(token), token)


# --- end to end -------------------------------------------------------------------------------


def test_event_properties_advertise_the_resource_topics(nvr: Nvr) -> None:
    nvr.events.call("GetEventProperties")
    root = etree.fromstring(nvr.events.client.last_response)
    for leaf in ("VideoSource", "Recording"):
        node = root.find(
            f".//{{http://docs.oasis-open.org/wsn/t-1}}TopicSet/"
            f"{{http://www.onvif.org/ver10/topics}}Resource/{leaf}"
        )
        assert node is not None, leaf
        description = node.find("tt:MessageDescription", NS)
        assert description.get("IsProperty") == "true"
        assert [d.get("Name") for d in description.iterfind("tt:Source/*", NS)] == ["Token"]
        assert {d.get("Name"): d.get("Type") for d in description.iterfind("tt:Data/*", NS)} == {
            "Name": "xs:string",
            "Scope": "xs:string",
            "Offline": "xs:boolean",
            "Location": "tt:GeoLocation",
        }


def test_resources_initialized_changed_deleted(nvr: Nvr) -> None:
    subscription = nvr.events.subscribe(topic("tns1:Resource//."))
    first = pull_until(subscription, lambda got: len(got) >= 2)
    assert {(m.topic, m.token, m.operation) for m in first} == {
        (VIDEO_SOURCE, DEMO_VIDEO_SOURCE, "Initialized"),
        (RECORDING, "demo-recording", "Initialized"),
    }
    demo = next(m for m in first if m.topic == VIDEO_SOURCE)
    assert demo.item("Name") == "Demo camera"
    assert "onvif://www.onvif.org/name/Demo%20camera" in demo.scopes()
    assert "onvif://www.onvif.org/location/nvr" in demo.scopes()
    assert demo.location is None  # "nvr" is a place, not a position

    receiver = nvr.create_receiver()
    added = pull_until(subscription, lambda got: len(got) >= 1)
    assert [(m.topic, m.token, m.operation) for m in added] == [
        (VIDEO_SOURCE, video(receiver), "Initialized")
    ]
    assert added[0].data == [("Name", "192.0.2.10"), ("Offline", "true")]
    prefix, local = split_remote_token(added[0].token)
    assert local == receiver and prefix == device_prefix(receiver)
    assert len(added[0].token) <= MAX_REMOTE_TOKEN

    recording = nvr.create_recording("Gate", "geo:48.2082,16.3738,171;u=5")
    created = pull_until(subscription, lambda got: any(m.token == recording for m in got))
    new = next(m for m in created if m.token == recording)
    assert (new.topic, new.operation) == (RECORDING, "Initialized")
    assert new.data == [
        ("Name", "Gate"),
        ("Scope", "onvif://www.onvif.org/name/Gate"),
        ("Offline", "true"),
    ]
    assert new.location is not None
    assert float(new.location.get("lat")) == pytest.approx(48.2082)
    assert float(new.location.get("lon")) == pytest.approx(16.3738)
    assert float(new.location.get("elevation")) == pytest.approx(171)

    job = nvr.create_job(recording, receiver)
    linked = pull_until(subscription, lambda got: any(m.token == video(receiver) for m in got))
    change = next(m for m in linked if m.token == video(receiver))
    assert change.operation == "Changed"
    assert change.item("Name") == "Gate" and change.location is not None

    configuration = nvr.recording("GetRecordingConfiguration", RecordingToken=recording)
    configuration.Source.Name = "North gate"
    configuration.Source.Location = "building/hq/north"
    nvr.recording(
        "SetRecordingConfiguration", RecordingToken=recording, RecordingConfiguration=configuration
    )
    renamed = pull_until(subscription, lambda got: len({m.token for m in got}) >= 2)
    assert {(m.token, m.operation) for m in renamed} == {
        (recording, "Changed"),
        (video(receiver), "Changed"),
    }
    for message in renamed:
        assert message.item("Name") == "North gate" and message.location is None
        assert "onvif://www.onvif.org/location/building/hq/north" in message.scopes()

    subscription.call(subscription.pull_point, "SetSynchronizationPoint")
    synced = pull_until(subscription, lambda got: len(got) >= 4)
    assert {m.operation for m in synced} == {"Initialized"}
    assert {m.token for m in synced} == {
        DEMO_VIDEO_SOURCE,
        "demo-recording",
        video(receiver),
        recording,
    }

    nvr.recording("DeleteRecordingJob", JobToken=job)
    nvr.recording("DeleteRecording", RecordingToken=recording)
    gone = pull_until(
        subscription,
        lambda got: (
            any(m.operation == "Deleted" for m in got)
            and any(m.token == video(receiver) for m in got)
        ),
    )
    deleted = next(m for m in gone if m.operation == "Deleted")
    assert (deleted.topic, deleted.token) == (RECORDING, recording)
    assert deleted.item("Name") == "North gate"  # the last data, for filters
    back = [m for m in gone if m.token == video(receiver)][-1]
    assert (back.operation, back.item("Name")) == ("Changed", "192.0.2.10")

    nvr.receiver("DeleteReceiver", ReceiverToken=receiver)
    last = pull_until(subscription, lambda got: len(got) >= 1)
    assert [(m.token, m.operation) for m in last] == [(video(receiver), "Deleted")]
    assert pull(subscription) == []


def test_offline_flips_are_changed_messages(nvr: Nvr) -> None:
    subscription = nvr.events.subscribe(topic("tns1:Resource/VideoSource"))
    assert [m.token for m in pull(subscription)] == [DEMO_VIDEO_SOURCE]
    names_only = nvr.events.subscribe(
        topic("tns1:Resource/VideoSource"), tt("SelectFilter", ("Path", "/Name"))
    )
    assert [m.data for m in pull(names_only)] == [[("Name", "Demo camera")]]
    receiver = nvr.create_receiver(nvr.handle.demo_uri)
    added = pull_until(subscription, lambda got: len(got) >= 1)
    assert [(m.token, m.operation, m.item("Offline")) for m in added] == [
        (video(receiver), "Initialized", "true")
    ]
    assert [(m.operation, m.data) for m in pull(names_only)] == [
        ("Initialized", [("Name", "127.0.0.1")])
    ]
    nvr.receiver("SetReceiverMode", ReceiverToken=receiver, Mode="AlwaysConnect")
    online = pull_until(subscription, lambda got: len(got) >= 1, limit=30)
    assert [(m.token, m.operation, m.item("Offline")) for m in online] == [
        (video(receiver), "Changed", "false")
    ]
    assert pull(names_only) == []  # without Offline selected, the flip is no change

    nvr.receiver("SetReceiverMode", ReceiverToken=receiver, Mode="NeverConnect")
    offline = pull_until(subscription, lambda got: any(m.item("Offline") == "true" for m in got))
    assert [(m.token, m.operation, m.item("Offline")) for m in offline][-1] == (
        video(receiver),
        "Changed",
        "true",
    )


def test_recording_goes_offline_when_its_job_stops(nvr: Nvr) -> None:
    subscription = nvr.events.subscribe(topic("tns1:Resource/Recording"))
    states = pull(subscription)
    assert [(m.token, m.item("Offline")) for m in states] == [("demo-recording", "false")]
    nvr.recording("SetRecordingJobMode", JobToken="demo-job", Mode="Idle")
    stopped = pull_until(subscription, lambda got: any(m.item("Offline") == "true" for m in got))
    assert (stopped[-1].token, stopped[-1].operation) == ("demo-recording", "Changed")


def test_location_prefix_scope_and_select_filters(nvr: Nvr) -> None:
    near = nvr.create_recording("Near", "geo:48.2082,16.3738")  # Vienna, St. Stephen's
    far = nvr.create_recording("Far", "52.5163, 13.3777")  # Berlin
    placed = nvr.create_recording("Lobby", "building/hq/lobby")
    receiver = nvr.create_receiver()
    nvr.settle(6)
    unknown = {placed, "demo-recording", DEMO_VIDEO_SOURCE, video(receiver)}

    def initial(*parts: etree._Element) -> list[Message]:
        """The Initialized burst of a new subscription (queued when it is created)."""
        return pull(nvr.events.subscribe(resources(), *parts))

    def tokens(*parts: etree._Element) -> set[str]:
        return {m.token for m in initial(*parts)}

    assert len(initial()) == 6
    # 1 km around the cathedral: only "Near"; with includeUnknown the position-less ones too.
    assert tokens(location_filter(48.2085, 16.3725, 1000)) == {near}
    assert tokens(location_filter(48.2085, 16.3725, 1000, True)) == {near} | unknown
    assert tokens(location_filter(48.2085, 16.3725, 300_000, False)) == {near}
    assert tokens(location_filter(50.0, 15.0, 600_000)) == {near, far}

    assert tokens(tt("PrefixFilter", ("Prefix", device_prefix(receiver)))) == {video(receiver)}
    assert tokens(tt("PrefixFilter", ("Prefix", device_prefix(receiver) + "0"))) == set()
    hq = tt("ScopeFilter", ("Scope", "onvif://www.onvif.org/location/building/hq"))
    assert tokens(hq) == {placed}
    partial = tt("ScopeFilter", ("Scope", "onvif://www.onvif.org/name/Lob"))
    assert tokens(partial) == set()  # segment-wise, not a string prefix
    both = tt(
        "ScopeFilter",
        ("Scope", "onvif://www.onvif.org/location/building"),
        ("Scope", "onvif://www.onvif.org/name/Lobby"),
    )
    assert tokens(both) == {placed}

    selected = initial(tt("SelectFilter", ("Path", "/Name"), ("Path", "/Scope/Location")))
    assert len(selected) == 6
    lobby = next(m for m in selected if m.token == placed)
    assert lobby.data == [
        ("Name", "Lobby"),
        ("Scope", "onvif://www.onvif.org/location/building/hq/lobby"),
    ]
    assert next(m for m in selected if m.token == near).location is None
    offline = initial(
        tt("SelectFilter", ("Path", "Offline")),
        tt("PrefixFilter", ("Prefix", device_prefix(receiver))),
    )
    assert [m.data for m in offline] == [[("Offline", "true")]]


def test_forensic_workflow_searches_by_video_source(nvr: Nvr) -> None:
    """ResourceQuery §4.7: the VideoSource tokens a query returns scope a search."""
    subscription = nvr.events.subscribe(topic("tns1:Resource/VideoSource"))
    (source,) = [m.token for m in pull(subscription)]
    search = SearchClient(SimpleNamespace(base_url=nvr.events.server.base_url), ADMIN)  # type: ignore[arg-type]
    keep = dt.timedelta(seconds=10)
    token = search.call(
        "FindRecordings", Scope={"IncludedSources": [{"Token": source}]}, KeepAliveTime=keep
    )
    found = search.results("GetRecordingSearchResults", token, MaxResults=5)
    assert [r.RecordingToken for r in found] == ["demo-recording"]
    other = remote_token(device_prefix("nobody"), "nobody")
    assert (
        search.fault(
            "FindRecordings", Scope={"IncludedSources": [{"Token": other}]}, KeepAliveTime=keep
        )[1][-1]
        == "InvalidSource"
    )


def test_invalid_resource_filters_are_faults(nvr: Nvr) -> None:
    bad = [
        tt("LocationFilter", ("lon", "16"), ("lat", "48")),  # no radius
        tt("LocationFilter", ("lon", "16"), ("lat", "91"), ("radius", "5")),
        tt("LocationFilter", ("lon", "x"), ("lat", "48"), ("radius", "5")),
        tt("PrefixFilter"),
        tt("ScopeFilter"),
        tt("SelectFilter", ("Path", "/Colour")),
    ]
    mismatch = tt("ScopeFilter")
    etree.SubElement(mismatch, f"{{{TT}}}Scope", Match="urn:other").text = "onvif://x"
    for element in [*bad, mismatch]:
        fault = nvr.events.fault(
            "CreatePullPointSubscription", Filter=nvr.events.filter(resources(), element)
        )
        assert fault_chain(fault) == ["Receiver", wsnt("InvalidMessageContentExpressionFault")]
    fault = nvr.events.fault(
        "CreatePullPointSubscription", Filter=nvr.events.filter(tt("AreaFilter"))
    )
    assert fault_chain(fault) == ["Receiver", wsnt("InvalidFilterFault")]


# --- the rules, directly ----------------------------------------------------------------------


def test_remote_tokens() -> None:
    assert device_prefix("demo-receiver") == device_prefix("demo-receiver")
    assert device_prefix("a") != device_prefix("b")
    token = remote_token(
        device_prefix("0f9c2c4e-1b7a-4f43-9d2c-51c1c4a1b2c3"),
        "0f9c2c4e-1b7a-4f43-9d2c-51c1c4a1b2c3",
    )
    assert len(token) <= MAX_REMOTE_TOKEN
    assert split_remote_token(token)[1] == "0f9c2c4e-1b7a-4f43-9d2c-51c1c4a1b2c3"
    assert split_remote_token("REC1") == (None, "REC1")
    assert receiver_of(video("R1")) == "R1"
    assert receiver_of("cam-000000000000:R1") is None and receiver_of("R1") is None
    assert len(local_token("x" * 80)) == MAX_LOCAL_TOKEN
    assert ":" not in local_token("a:b")
    with pytest.raises(ValueError):
        remote_token("p" * 40, "x")
    with pytest.raises(ValueError):
        remote_token("a:b", "x")


@given(st.text(min_size=1, max_size=200))
def test_every_receiver_token_makes_a_valid_remote_token(token: str) -> None:
    remote = remote_token(device_prefix(token), token)
    prefix, local = split_remote_token(remote)
    assert len(remote) <= MAX_REMOTE_TOKEN and len(local) <= MAX_LOCAL_TOKEN
    assert prefix == device_prefix(token) and ":" not in local
    assert remote == remote_token(device_prefix(token), token)  # stable


def test_location_texts() -> None:
    assert parse_location("geo:48.2,16.37") == GeoPoint(48.2, 16.37)
    assert parse_location("GEO:-33.86,151.21,58;crs=wgs84;u=10") == GeoPoint(-33.86, 151.21, 58)
    assert parse_location(" 52.5163 , 13.3777 ") == GeoPoint(52.5163, 13.3777)
    for text in ("", "hall", "geo:48,16;crs=utm32", "geo:91,0", "1,2,3,4", "geo:1,x", None):
        assert parse_location(text) is None
    assert source_scopes("Cam 1", "building/hq") == (
        "onvif://www.onvif.org/name/Cam%201",
        "onvif://www.onvif.org/location/building/hq",
    )
    assert source_scopes(None, "geo:1,2") == ()


@given(st.text(max_size=80))
def test_any_location_text_is_a_position_or_none(text: str) -> None:
    point = parse_location(text)
    assert point is None or (-90 <= point.lat <= 90 and -180 <= point.lon <= 180)


coordinates = st.tuples(st.floats(-90, 90, allow_nan=False), st.floats(-180, 180, allow_nan=False))


@given(coordinates, st.one_of(st.none(), st.floats(-500, 9000, allow_nan=False)))
def test_geo_uris_round_trip(point: tuple[float, float], altitude: float | None) -> None:
    lat, lon = point
    text = f"geo:{lat!r},{lon!r}" + ("" if altitude is None else f",{altitude!r}")
    if "e" in text.lower().removeprefix("geo:"):
        return  # exponent notation is not RFC 5870 syntax
    parsed = parse_location(text)
    assert parsed == GeoPoint(lat, lon, altitude)
    assert point_of(geo_element(parsed)) == parsed


@given(coordinates, coordinates)
def test_distances_are_great_circle(a: tuple[float, float], b: tuple[float, float]) -> None:
    p, q = GeoPoint(*a), GeoPoint(*b)
    assert distance_m(p, q) == pytest.approx(distance_m(q, p), abs=1e-6)
    assert 0 <= distance_m(p, q) <= math.pi * 6_371_008.8 + 1
    assert distance_m(p, p) == pytest.approx(0, abs=1e-6)


def test_known_distance_and_height() -> None:
    vienna, berlin = GeoPoint(48.2082, 16.3738), GeoPoint(52.5200, 13.4050)
    assert distance_m(vienna, berlin) == pytest.approx(523_000, rel=0.01)
    assert distance_m(GeoPoint(0, 0, 0), GeoPoint(0, 0, 30)) == pytest.approx(30)


@given(
    st.text(max_size=60),
    st.sampled_from(["LocationFilter", "PrefixFilter", "ScopeFilter", "SelectFilter"]),
)
def test_filter_parsing_fails_only_with_its_own_error(text: str, kind: str) -> None:
    child = {"LocationFilter": "lat", "PrefixFilter": "Prefix"}.get(
        kind, "Scope" if kind == "ScopeFilter" else "Path"
    )
    try:
        element = tt(kind, (child, text))
    except ValueError:
        return  # not representable in XML
    try:
        parse_resource_filters([element])
    except ResourceFilterError:
        pass


def _resource_event(token: str, *data: tuple[str, str], location: GeoPoint | None = None) -> Event:
    elements = (("Location", geo_element(location)),) if location else ()
    return Event(RECORDING, (("Token", token),), data, is_property=True, elements=elements)


def test_resource_filters_leave_other_topics_alone() -> None:
    wrapper = etree.Element(f"{{{WSNT}}}Filter")
    wrapper.append(tt("PrefixFilter", ("Prefix", "cam-1")))
    wrapper.append(tt("SelectFilter", ("Path", "Offline")))
    event_filter = parse_filter(wrapper)
    other = Event("tns1:Receiver/ChangeState", (("ReceiverToken", "R"),), (("NewState", "x"),))
    assert event_filter.matches(other) and event_filter.view(other) is other
    mine = _resource_event("cam-1:R", ("Name", "n"), ("Offline", "true"), location=GeoPoint(1, 2))
    assert event_filter.matches(mine)
    assert not event_filter.matches(_resource_event("cam-2:R"))
    assert not event_filter.matches(_resource_event("R"))
    assert event_filter.view(mine).data == (("Offline", "true"),)
    assert event_filter.view(mine).elements == ()
    unqualified = etree.Element(f"{{{WSNT}}}Filter")
    prefix = etree.SubElement(unqualified, "PrefixFilter")
    etree.SubElement(prefix, "Prefix").text = "cam-1"
    assert parse_filter(unqualified).matches(mine)
    with pytest.raises(FilterError) as info:
        parse_filter(_wrap(tt("LocationFilter", ("lon", "1"), ("lat", "1"), ("radius", "-1"))))
    assert info.value.fault == "InvalidMessageContentExpressionFault"


def _wrap(element: etree._Element) -> etree._Element:
    wrapper = etree.Element(f"{{{WSNT}}}Filter")
    wrapper.append(element)
    return wrapper


def test_location_filter_semantics() -> None:
    centre = (48.2085, 16.3725)
    within = _resource_event("A", location=GeoPoint(48.2082, 16.3738))
    unknown = _resource_event("B")
    near = parse_filter(_wrap(location_filter(*centre, 200)))
    assert near.matches(within) and not near.matches(unknown)
    assert not parse_filter(_wrap(location_filter(*centre, 50))).matches(within)
    assert parse_filter(_wrap(location_filter(*centre, 50, True))).matches(unknown)
    high = location_filter(*centre, 150)
    high.insert(2, tt("height", text="5000"))
    raised = _resource_event("C", location=GeoPoint(48.2082, 16.3738, 0))
    assert not parse_filter(_wrap(high)).matches(raised)  # 5 km above it


def test_select_filter_hides_changes_it_does_not_show() -> None:
    bus = EventBus()
    manager = PullPointManager(bus)
    manager.start()
    names = manager.create(parse_filter(_wrap(tt("SelectFilter", ("Path", "/Name")))), None)
    everything = manager.create(EventFilter(), None)
    source = (("Token", "cam-1:R"),)
    bus.publish_property(RECORDING, source, (("Name", "a"), ("Offline", "true")))
    bus.publish_property(RECORDING, source, (("Name", "a"), ("Offline", "false")))
    bus.publish_property(RECORDING, source, (("Name", "b"), ("Offline", "false")))
    bus.publish(
        Event(RECORDING, source, (("Name", "b"),), is_property=True, property_operation="Deleted")
    )
    seen = [(e.property_operation, e.data) for e in manager.pull(names, 0, 10)]
    assert seen == [
        ("Initialized", (("Name", "a"),)),
        ("Changed", (("Name", "b"),)),
        ("Deleted", (("Name", "b"),)),
    ]
    assert len(manager.pull(everything, 0, 10)) == 4
    manager.close()


def test_resources_of_the_daemon_state() -> None:
    camera = ReceiverInfo(
        "R1",
        ReceiverConfig(mode="NeverConnect", media_uri="rtsp://u:p@10.0.0.7/s"),
        False,
        "Connected",
    )
    spare = ReceiverInfo("R2", ReceiverConfig(media_uri=""), True, "NotConnected")
    recording = RecordingInfo(1, "REC1", "urn:x", "Door", "geo:1.5,2.5", "", "", "", 0, 0)
    track = TrackState("VIDEO", "VIDEO001", "Active")
    state = JobState("REC1", "Active", (SourceState("R1", RECEIVER_SOURCE, "Active", (track,)),))
    config = JobConfiguration("REC1", "Active", 1, (JobSource("R1"),))
    found = resources_of([camera, spare], [(config, state)], [recording])
    assert found[(VIDEO_SOURCE, video("R1"))] == Resource(
        VIDEO_SOURCE,
        video("R1"),
        "Door",
        GeoPoint(1.5, 2.5),
        ("onvif://www.onvif.org/name/Door",),
        False,
    )
    assert found[(VIDEO_SOURCE, video("R2"))].name is None  # no camera yet, no name
    assert found[(RECORDING, "REC1")].offline is False
    idle = resources_of([camera], [(config, None)], [recording])
    assert idle[(RECORDING, "REC1")].offline is True
    assert resources_of([camera], [], [])[(VIDEO_SOURCE, video("R1"))].name == "10.0.0.7"
