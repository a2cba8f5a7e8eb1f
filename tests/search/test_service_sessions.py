"""Search sessions through the official-WSDL client: paging, blocking, keep-alive, limits,
clamping, access classes (search.md §4). Waits are short; no assertion depends on speed
beyond "returned before its WaitTime" and "did wait"."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx

from nvr.events import Event
from nvr.search.service import SEARCH_PATH
from tests.onvif import conftest as onvif_fixtures
from tests.onvif.conftest import StartServer
from tests.onvif.raw import assert_fault, envelope
from tests.search.conftest import SearchClient, us, when
from tests.search.recorded import CAM1, CAM2, T0, World

# one database per module (the recordings are made once): the onvif fixtures at module scope
database_url = onvif_fixtures.database_url
start_server = onvif_fixtures.start_server

KEEP = dt.timedelta(seconds=10)
HISTORY = "tns1:RecordingHistory//."


def _find_history(search: SearchClient, **extra: object) -> str:
    return search.call(
        "FindEvents",
        StartPoint=when(T0),
        Scope={"IncludedRecordings": [CAM1]},
        SearchFilter=search.event_filter(HISTORY),
        IncludeStartState=False,
        KeepAliveTime=extra.pop("KeepAliveTime", KEEP),
        **extra,
    )


def test_pages_never_repeat_a_result(search: SearchClient, world: World) -> None:
    everything = search.results("GetEventSearchResults", _find_history(search))
    token = _find_history(search)
    pages = []
    while True:
        page = search.call("GetEventSearchResults", SearchToken=token, MaxResults=3, MinResults=2)
        assert len(page.Result) <= 3
        pages.append(page)
        if page.SearchState == "Completed":
            break
        assert len(page.Result) == 3
    paged = [(us(r.Time), r.TrackToken) for p in pages for r in p.Result]
    assert paged == [(us(r.Time), r.TrackToken) for r in everything]
    assert len(set(paged)) == len(paged) == 16  # 4 tracks … 3 tracks x 4 + 4 Recording/State
    assert search.call("GetEventSearchResults", SearchToken=token).Result == []  # still valid


def test_max_matches_and_clamping(search: SearchClient, world: World) -> None:
    token = search.call("FindRecordings", Scope={}, MaxMatches=2, KeepAliveTime=KEEP)
    assert len(search.results("GetRecordingSearchResults", token)) == 2
    token = search.call(
        "FindRecordings", Scope={}, MaxMatches=0, KeepAliveTime=dt.timedelta(seconds=0)
    )
    started = time.monotonic()
    page = search.call(
        "GetRecordingSearchResults",
        SearchToken=token,
        MinResults=-3,
        MaxResults=0,
        WaitTime=dt.timedelta(days=3),
    )
    assert len(page.RecordingInformation) == 1 and page.SearchState == "Completed"
    assert time.monotonic() - started < 5  # MaxResults (clamped to 1) was reached at once
    token = _find_history(search, MaxMatches=5)
    assert len(search.results("GetEventSearchResults", token, MaxResults=2)) == 5


def test_wait_time_and_min_results_at_the_live_edge(
    start_server: StartServer, world: World
) -> None:
    server = start_server(search_settle_seconds=0)
    server.add_standard_users()
    search = SearchClient(server)
    now = time.time_ns() // 1000
    token = search.call(
        "FindEvents",
        StartPoint=when(now - 1_000_000),
        EndPoint=when(now + 60_000_000),
        Scope={"IncludedRecordings": [CAM2]},
        SearchFilter=search.event_filter("tns1:RecordingConfig//."),
        IncludeStartState=False,
        KeepAliveTime=KEEP,
    )
    started = time.monotonic()
    page = search.call(
        "GetEventSearchResults", SearchToken=token, MinResults=1, WaitTime=dt.timedelta(seconds=1)
    )
    assert page.Result == [] and page.SearchState == "Searching"
    assert time.monotonic() - started >= 0.9  # it waited for WaitTime

    def later() -> None:
        time.sleep(0.5)
        source = (("RecordingToken", CAM2), ("TrackToken", "VIDEO001"))
        world.bus.publish(Event("tns1:RecordingConfig/CreateTrack", source))

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    page = search.call(
        "GetEventSearchResults", SearchToken=token, MinResults=1, WaitTime=dt.timedelta(seconds=8)
    )
    assert len(page.Result) == 1 and page.SearchState == "Searching"
    assert time.monotonic() - started < 7.5  # returned on MinResults, not at WaitTime
    assert page.Result[0].RecordingToken == CAM2
    search.call("EndSearch", SearchToken=token)


def test_keep_alive_expiry_and_reset(search: SearchClient, world: World) -> None:
    # 2 s to live; 0.5 s sleeps leave a loaded CI machine 1.5 s for each request itself.
    keep = dt.timedelta(seconds=2)
    token = search.call("FindRecordings", Scope={}, KeepAliveTime=keep)
    for _ in range(3):  # every request restarts the timer
        time.sleep(0.5)
        search.call("GetSearchState", SearchToken=token)
    time.sleep(3)
    assert search.fault("GetRecordingSearchResults", SearchToken=token) == (
        "Sender",
        ["InvalidArgVal", "InvalidToken"],
    )
    assert search.fault("EndSearch", SearchToken="search-never-issued")[1][-1] == "InvalidToken"


def test_resource_problem_past_the_session_limit(start_server: StartServer, world: World) -> None:
    server = start_server(search_max_sessions=2)
    server.add_standard_users()
    search = SearchClient(server)
    first = search.call("FindRecordings", Scope={}, KeepAliveTime=KEEP)
    second = _find_history(search)
    assert search.fault("FindRecordings", Scope={}, KeepAliveTime=KEEP) == (
        "Receiver",
        ["Action", "ResourceProblem"],
    )
    search.call("EndSearch", SearchToken=second)
    third = search.call("FindRecordings", Scope={}, KeepAliveTime=KEEP)
    search.results("GetRecordingSearchResults", first)  # completed: frees its slot
    search.call("FindRecordings", Scope={}, KeepAliveTime=KEEP)
    assert search.call("GetSearchState", SearchToken=first) == "Completed"
    assert third


def test_access_classes(search: SearchClient, world: World) -> None:
    url = search.server.base_url + SEARCH_PATH
    caps = httpx.post(
        url,
        content=envelope(
            '<tse:GetServiceCapabilities xmlns:tse="http://www.onvif.org/ver10/search/wsdl"/>'
        ),
        headers={"content-type": "application/soap+xml"},
    )
    assert caps.status_code == 200 and b"MetadataSearch" in caps.content
    summary = httpx.post(
        url,
        content=envelope(
            '<tse:GetRecordingSummary xmlns:tse="http://www.onvif.org/ver10/search/wsdl"/>'
        ),
        headers={"content-type": "application/soap+xml"},
    )
    assert summary.status_code in (400, 401)
    with httpx.Client(auth=httpx.DigestAuth("viewer", "viewer-pass-1")) as client:
        nl = client.post(
            url,
            content=envelope(
                '<tse:SearchImageByNL xmlns:tse="http://www.onvif.org/ver10/search/wsdl"/>'
            ),
            headers={"content-type": "application/soap+xml"},
        )
    assert_fault(nl, 500, "Receiver", "ActionNotSupported")
