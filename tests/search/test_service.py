"""The Search service through zeep built from the official search.wsdl, against recordings
written through the store with the demo camera's metadata (tests/search/recorded.py): every
answer is compared with what was written, every response validated against the official XSDs.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import zeep
from lxml import etree
from requests.auth import HTTPDigestAuth

from nvr.demo.metadata import MOTION_TOPIC, SOURCE_TOKEN, metadata_document, motion_state
from nvr.ingest.history import RECORDING_STATE, TRACK_STATE
from nvr.onvif.namespaces import TSE
from nvr.onvif.operations import wsdl_operations
from nvr.search.service import SEARCH_PATH
from nvr.search.service_policy import SEARCH_OPERATIONS
from tests.onvif import conftest as onvif_fixtures
from tests.onvif.conftest import USER
from tests.onvif.schemas import WSDL_DIR
from tests.search.conftest import SEARCH_WSDL, SearchClient, us, when
from tests.search.recorded import CAM1, CAM2, CAM3, GAP_S, RUN_S, SOURCE1, T0, World, document_times

# one database per module (the recordings are made once): the onvif fixtures at module scope
database_url = onvif_fixtures.database_url
start_server = onvif_fixtures.start_server

KEEP = dt.timedelta(seconds=10)
END = T0 + (2 * RUN_S + GAP_S) * 1_000_000
HISTORY = "tns1:RecordingHistory//."


def test_operation_list_is_the_official_one() -> None:
    assert wsdl_operations(WSDL_DIR / SEARCH_WSDL) == list(SEARCH_OPERATIONS)


def test_capabilities_and_summary(search: SearchClient, world: World) -> None:
    caps = search.call("GetServiceCapabilities")
    assert caps.MetadataSearch is True and caps.GeneralStartEvents is True
    assert not caps.NLSearch and not caps.ImageSearch
    summary = search.call("GetRecordingSummary")
    assert summary.NumberRecordings == 3
    assert us(summary.DataFrom) == T0 and us(summary.DataUntil) == END


def test_recording_information(search: SearchClient, world: World) -> None:
    info = search.call("GetRecordingInformation", RecordingToken=CAM1)
    assert info.RecordingToken == CAM1 and info.Content == "front door"
    assert (info.Source.SourceId, info.Source.Location) == (SOURCE1, "Basement")
    assert info.RecordingStatus == "Stopped"
    tracks = {t.TrackToken: t for t in info.Track}
    assert set(tracks) == {"VIDEO001", "AUDIO001", "META001"}
    for token, track in tracks.items():
        runs = world.data[(CAM1, token)]
        assert us(track.DataFrom) == runs[0].start_us and us(track.DataTo) == runs[-1].end_us
    assert tracks["META001"].TrackType == "Metadata"
    assert us(info.EarliestRecording) == T0 and us(info.LatestRecording) == END
    cam2 = search.call("GetRecordingInformation", RecordingToken=CAM2)
    assert [t.TrackToken for t in cam2.Track] == ["VIDEO001"]  # tracks without data omitted
    cam3 = search.call("GetRecordingInformation", RecordingToken=CAM3)
    assert cam3.Track == [] and cam3.RecordingStatus == "Initiated"
    assert cam3.EarliestRecording is None
    assert search.fault("GetRecordingInformation", RecordingToken="nope") == (
        "Sender",
        ["InvalidArgVal", "InvalidToken"],
    )


def test_media_attributes(search: SearchClient, world: World) -> None:
    at = T0 + 10_000_000
    (found,) = search.call("GetMediaAttributes", RecordingTokens=[CAM1], Time=when(at))
    assert found.RecordingToken == CAM1
    attrs = {a.TrackInformation.TrackToken: a for a in found.TrackAttributes}
    video = attrs["VIDEO001"].VideoAttributes
    assert (video.Width, video.Height, video.Encoding) == (1920, 1080, "H264")
    assert math.isclose(video.Framerate, 25, rel_tol=0.01)
    audio = attrs["AUDIO001"].AudioAttributes
    assert (audio.Encoding, audio.Samplerate) == ("G711", 8)
    meta = attrs["META001"].MetadataAttributes
    assert meta.CanContainPTZ and meta.CanContainAnalytics and meta.CanContainNotifications
    raw = search.raw.find(f".//{{{TT}}}MetadataAttributes")
    assert "PositionGenericSpace" in raw.get("PtzSpaces")
    assert us(found.From) <= at <= us(found.Until)
    everything = search.call("GetMediaAttributes", Time=when(at))
    assert [m.RecordingToken for m in everything] == [CAM1, CAM2]  # CAM3 has no data
    in_gap = search.call("GetMediaAttributes", RecordingTokens=[CAM1], Time=when(T0 + 70_000_000))
    assert in_gap == []
    assert search.fault("GetMediaAttributes", RecordingTokens=["nope"], Time=when(at))[1] == [
        "InvalidArgVal",
        "InvalidToken",
    ]


TT = "http://www.onvif.org/ver10/schema"


def _find_recordings(search: SearchClient, **scope: Any) -> list[str]:
    token = search.call("FindRecordings", Scope=scope, KeepAliveTime=KEEP)
    found = search.results("GetRecordingSearchResults", token, MaxResults=2)
    return sorted(r.RecordingToken for r in found)


def test_find_recordings_with_filters(search: SearchClient, world: World) -> None:
    assert _find_recordings(search) == [CAM1, CAM2, CAM3]
    video = 'boolean(//Track[TrackType = "Video"])'
    assert _find_recordings(search, RecordingInformationFilter=video) == [CAM1, CAM2]
    audio = 'boolean(//Track[TrackType = "Audio"])'
    assert _find_recordings(search, RecordingInformationFilter=audio) == [CAM1]
    both = 'boolean(//Source[Location = “Garden”]) and boolean(//Track[TrackType = "Video"])'
    assert _find_recordings(search, RecordingInformationFilter=both) == [CAM2]
    nothing = "not(boolean(//Track))"
    assert _find_recordings(search, RecordingInformationFilter=nothing) == [CAM3]
    assert _find_recordings(search, IncludedRecordings=[CAM2, CAM3]) == [CAM2, CAM3]
    assert _find_recordings(search, IncludedSources=[{"Token": SOURCE1}]) == [CAM1]
    assert _find_recordings(
        search, IncludedRecordings=[CAM3], IncludedSources=[{"Token": SOURCE1}]
    ) == [CAM1, CAM3]
    bad = search.fault(
        "FindRecordings", Scope={"RecordingInformationFilter": "count(//Track)"}, KeepAliveTime=KEEP
    )
    assert bad == ("Sender", ["InvalidArgVal"])
    unknown = search.fault(
        "FindRecordings", Scope={"IncludedRecordings": ["x"]}, KeepAliveTime=KEEP
    )
    assert unknown == ("Sender", ["InvalidArgVal", "InvalidToken"])
    source = search.fault(
        "FindRecordings", Scope={"IncludedSources": [{"Token": "x"}]}, KeepAliveTime=KEEP
    )
    assert source == ("Sender", ["InvalidArgVal", "InvalidSource"])


def _events(
    search: SearchClient,
    start: int,
    end: int | None,
    topic: str | None = HISTORY,
    *,
    content: str | None = None,
    start_state: bool = False,
    recordings: list[str] | None = None,
    **get: Any,
) -> list[Any]:
    token = search.call(
        "FindEvents",
        StartPoint=when(start),
        EndPoint=None if end is None else when(end),
        Scope={"IncludedRecordings": recordings or []},
        SearchFilter=search.event_filter(topic, content),
        IncludeStartState=start_state,
        KeepAliveTime=KEEP,
    )
    return search.results("GetEventSearchResults", token, **get)


def _message(result: Any) -> Any:
    """tt:Message as zeep parsed it (wsnt:Message holds it under a lax wildcard)."""
    return result.Event.Message._value_1


def _simple(result: Any, group: str) -> dict[str, str]:
    items = getattr(_message(result), group)
    return {} if items is None else {i.Name: i.Value for i in items.SimpleItem}


def _history(world: World, recording: str) -> list[tuple[int, str, str, str]]:
    """Expected Track/State transitions: (time, track, IsDataPresent) from the store's runs."""
    out = []
    for (rec, track), runs in world.data.items():
        if rec != recording:
            continue
        for run in runs:
            out += [(run.start_us, track, "true"), (run.end_us, track, "false")]
    return sorted(out)


def test_find_events_history_forward_with_start_state(search: SearchClient, world: World) -> None:
    start = T0 - 5_000_000
    found = _events(
        search, start, END + 5_000_000, start_state=True, recordings=[CAM1], MaxResults=7
    )
    virtual = [r for r in found if r.StartStateEvent]
    assert {(r.TrackToken or "", _simple(r, "Data").get("IsDataPresent")) for r in virtual} == {
        ("VIDEO001", "false"), ("AUDIO001", "false"), ("META001", "false"), ("", None),
    }  # fmt: skip
    assert all(us(r.Time) == start for r in virtual)
    assert found[: len(virtual)] == virtual  # virtual events come first
    real = found[len(virtual) :]
    times = [us(r.Time) for r in real]
    assert times == sorted(times)
    tracks = [
        (us(r.Time), r.TrackToken, _simple(r, "Data")["IsDataPresent"])
        for r in real
        if r.Event.Topic._value_1 == TRACK_STATE
    ]
    assert sorted(tracks) == _history(world, CAM1)
    recording = [
        (us(r.Time), _simple(r, "Data")["IsRecording"])
        for r in real
        if r.Event.Topic._value_1 == RECORDING_STATE
    ]
    assert recording == [
        (T0, "true"), (T0 + RUN_S * 1_000_000, "false"),
        (T0 + (RUN_S + GAP_S) * 1_000_000, "true"), (END, "false"),
    ]  # fmt: skip
    assert _simple(real[0], "Source")["RecordingToken"] == CAM1
    raw = etree.tostring(search.raw)
    assert b'xmlns:tns1="http://www.onvif.org/ver10/topics"' in raw  # topic values resolve


def test_find_events_start_state_inside_data(search: SearchClient, world: World) -> None:
    inside = T0 + 30_000_000
    found = _events(search, inside, inside + 1_000_000, start_state=True, recordings=[CAM1])
    assert all(r.StartStateEvent for r in found)
    states = {(r.TrackToken or "", tuple(_simple(r, "Data").values())) for r in found}
    assert states == {
        ("VIDEO001", ("true",)), ("AUDIO001", ("true",)), ("META001", ("true",)), ("", ("true",)),
    }  # fmt: skip
    assert _message(found[0]).PropertyOperation == "Initialized"


def test_find_events_backward(search: SearchClient, world: World) -> None:
    start, end = END + 1_000_000, T0 - 1_000_000
    found = _events(search, start, end, start_state=True, recordings=[CAM1], MaxResults=5)
    times = [us(r.Time) for r in found]
    assert times == sorted(times, reverse=True)
    assert times[0] == start and times[-1] == end  # virtual events at both ends
    assert found[0].StartStateEvent and found[-1].StartStateEvent
    real = [r for r in found if not r.StartStateEvent]
    tracks = sorted(
        (us(r.Time), r.TrackToken, _simple(r, "Data")["IsDataPresent"])
        for r in real
        if r.Event.Topic._value_1 == TRACK_STATE
    )
    assert tracks == _history(world, CAM1)
    # property values keep their forward meaning: the run start is still "true"
    first = next(r for r in reversed(real) if r.Event.Topic._value_1 == TRACK_STATE)
    assert us(first.Time) == T0 and _simple(first, "Data")["IsDataPresent"] == "true"


def test_find_events_metadata_by_topic_and_source(search: SearchClient, world: World) -> None:
    expected = [
        (t, "true" if motion_state(t) else "false")
        for t in document_times()
        if motion_state(t) is not None
    ]
    found = _events(search, T0, END, "tns1:VideoSource//.")
    got = [(us(r.Time), _simple(r, "Data")["State"]) for r in found]
    assert got == expected
    assert {r.Event.Topic._value_1 for r in found} == {MOTION_TOPIC}
    assert {(r.RecordingToken, r.TrackToken) for r in found} == {(CAM1, "META001")}
    assert {_simple(r, "Source")["VideoSourceConfigurationToken"] for r in found} == {SOURCE_TOKEN}
    true_only = _events(
        search, T0, END, MOTION_TOPIC,
        content='boolean(//SimpleItem[@Name="State" and @Value="true"])',
    )  # fmt: skip
    assert [us(r.Time) for r in true_only] == [t for t, v in expected if v == "true"]
    by_source = _events(
        search, T0, END, None,
        content=f'boolean(//SimpleItem[@Name="VideoSourceConfigurationToken" and '
        f'@Value="{SOURCE_TOKEN}"])',
    )  # fmt: skip
    assert len(by_source) == len(expected)
    other = _events(search, T0, END, None, content='boolean(//SimpleItem[@Value="elsewhere"])')
    assert other == []
    assert _events(search, T0, END, "tns1:Device//.") == []


def test_find_events_bad_filter(search: SearchClient, world: World) -> None:
    fault = search.fault(
        "FindEvents", StartPoint=when(T0), Scope={},
        SearchFilter=search.event_filter("tns1:Recording History"),
        IncludeStartState=False, KeepAliveTime=KEEP,
    )  # fmt: skip
    assert fault == ("Sender", ["InvalidArgVal", "InvalidFilterFault"])


def _demo_position(time_us: int) -> tuple[float, float, float]:
    document = etree.fromstring(metadata_document(time_us))
    pan_tilt = document.find(f".//{{{TT}}}PTZ//{{{TT}}}PanTilt")
    zoom = document.find(f".//{{{TT}}}PTZ//{{{TT}}}Zoom")
    return float(pan_tilt.get("x")), float(pan_tilt.get("y")), float(zoom.get("x"))


def test_find_ptz_position_within_tolerance(search: SearchClient, world: World) -> None:
    pan, tilt, zoom = _demo_position(T0 + 20_000_000)
    tolerance = 0.3
    low = {"PanTilt": {"x": pan - tolerance, "y": tilt - tolerance}}
    high = {"PanTilt": {"x": pan + tolerance, "y": tilt + tolerance}}
    expected = [
        t
        for t in document_times()
        if abs(_demo_position(t)[0] - pan) <= tolerance + 1e-9
        and abs(_demo_position(t)[1] - tilt) <= tolerance + 1e-9
    ]
    filt = {"MinPosition": low, "MaxPosition": high, "EnterOrExit": False}
    token = search.call(
        "FindPTZPosition", StartPoint=when(T0), EndPoint=when(END), Scope={}, SearchFilter=filt,
        KeepAliveTime=KEEP,
    )  # fmt: skip
    found = search.results("GetPTZPositionSearchResults", token, MaxResults=10)
    assert [us(r.Time) for r in found] == expected and len(expected) > 3
    first = found[0].Position
    assert abs(first.PanTilt.x - pan) <= tolerance and first.Zoom is not None
    assert first.PanTilt.space.endswith("PositionGenericSpace")
    assert {r.TrackToken for r in found} == {"META001"}
    filt["EnterOrExit"] = True
    token = search.call(
        "FindPTZPosition", StartPoint=when(T0), EndPoint=when(END), Scope={}, SearchFilter=filt,
        KeepAliveTime=KEEP,
    )  # fmt: skip
    transitions = search.results("GetPTZPositionSearchResults", token)
    inside = [t in expected for t in document_times()]
    entering = [t for i, t in enumerate(document_times()) if inside[i] != (i > 0 and inside[i - 1])]
    assert [us(r.Time) for r in transitions] == entering
    zoom_only = {
        "MinPosition": {"Zoom": {"x": zoom - 0.01}},
        "MaxPosition": {"Zoom": {"x": zoom + 0.01}},
        "EnterOrExit": False,
    }
    token = search.call(
        "FindPTZPosition", StartPoint=when(T0), Scope={}, SearchFilter=zoom_only,
        KeepAliveTime=KEEP,
    )  # fmt: skip
    by_zoom = search.results("GetPTZPositionSearchResults", token)
    assert us(by_zoom[0].Time) <= T0 + 20_000_000 <= us(by_zoom[-1].Time)


def test_find_metadata(search: SearchClient, world: World) -> None:
    expression = 'boolean(//Object/Appearance/Shape/BoundingBox[@right > "0.5"])'
    oracle = "boolean(//*[local-name()='BoundingBox'][number(@right) > 0.5])"
    expected = [t for t in document_times() if etree.fromstring(metadata_document(t)).xpath(oracle)]
    token = search.call(
        "FindMetadata", StartPoint=when(T0), EndPoint=when(END),
        Scope={"IncludedRecordings": [CAM1]}, MetadataFilter={"MetadataStreamFilter": expression},
        KeepAliveTime=KEEP,
    )  # fmt: skip
    found = search.results("GetMetadataSearchResults", token, MaxResults=25)
    assert [us(r.Time) for r in found] == expected and 0 < len(expected) < len(document_times())
    assert {(r.RecordingToken, r.TrackToken) for r in found} == {(CAM1, "META001")}
    token = search.call(
        "FindMetadata", StartPoint=when(END), EndPoint=when(T0), Scope={},
        MetadataFilter={"MetadataStreamFilter": expression}, KeepAliveTime=KEEP,
    )  # fmt: skip
    backward = search.results("GetMetadataSearchResults", token)
    assert [us(r.Time) for r in backward] == expected[::-1]
    bad = search.fault(
        "FindMetadata", StartPoint=when(T0), Scope={},
        MetadataFilter={"MetadataStreamFilter": "//Object["}, KeepAliveTime=KEEP,
    )  # fmt: skip
    assert bad == ("Sender", ["InvalidArgVal"])


def test_search_state_and_end_search(search: SearchClient, world: World) -> None:
    find = dict(
        StartPoint=when(T0), EndPoint=when(END), Scope={},
        SearchFilter=search.event_filter(HISTORY), IncludeStartState=False, KeepAliveTime=KEEP,
    )  # fmt: skip
    token = search.call("FindEvents", **find)
    assert search.call("GetSearchState", SearchToken=token) == "Searching"
    assert us(search.call("EndSearch", SearchToken=token)) == T0  # had not begun
    assert search.fault("GetSearchState", SearchToken=token) == (
        "Sender",
        ["InvalidArgVal", "InvalidToken"],
    )
    token = search.call("FindEvents", **find)
    page = search.call("GetEventSearchResults", SearchToken=token, MaxResults=3)
    assert len(page.Result) == 3 and page.SearchState == "Searching"
    assert us(search.call("EndSearch", SearchToken=token)) == us(page.Result[-1].Time)
    token = search.call("FindEvents", **find)
    search.results("GetEventSearchResults", token)
    assert search.call("GetSearchState", SearchToken=token) == "Completed"
    assert us(search.call("EndSearch", SearchToken=token)) == END
    assert search.fault("EndSearch", SearchToken=token)[1] == ["InvalidArgVal", "InvalidToken"]
    recordings = search.call("FindRecordings", Scope={}, KeepAliveTime=KEEP)
    assert search.fault("GetEventSearchResults", SearchToken=recordings)[1][-1] == "InvalidToken"
    search.call("EndSearch", SearchToken=recordings)


def test_end_search_response_element_is_lower_case_endpoint(search: SearchClient) -> None:
    token = search.call("FindRecordings", Scope={}, KeepAliveTime=KEEP)
    search.call("EndSearch", SearchToken=token)
    body = search.raw.find(f".//{{{TSE}}}EndSearchResponse")
    assert [etree.QName(c).localname for c in body] == ["Endpoint"]


def test_our_published_wsdl_is_usable(search: SearchClient, world: World) -> None:
    url = search.server.base_url + SEARCH_PATH
    ours = zeep.Client(url + "?wsdl")
    ours.transport.session.auth = HTTPDigestAuth(*USER)
    assert ours.service.GetRecordingSummary().NumberRecordings == 3
    token = ours.service.FindRecordings(
        Scope={"RecordingInformationFilter": 'boolean(//Track[TrackType = "Audio"])'},
        KeepAliveTime=KEEP,
    )
    found = ours.service.GetRecordingSearchResults(SearchToken=token, MaxResults=10)
    assert found.SearchState == "Completed"
    assert [r.RecordingToken for r in found.RecordingInformation] == [CAM1]
