"""The ONVIF Recording Search service (search.wsdl) at ``/onvif/search_service``.

Handlers are thin: they turn the request into plain values (service_render.py), call the
:class:`~nvr.search.engine.SearchEngine` of the daemon (found through a context variable the
endpoint sets around each request, like the Event service's pull point manager) and turn its
answers into the models of service_types.py. Engine errors become the faults search.md §2
lists. The endpoint also declares ``tns1`` & co. on every response: topic *values* in
FindEvents results use the prefix, which spyne would otherwise leave undeclared.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from lxml import etree
from spyne import AnyXml, Boolean, DateTime, Duration, Integer32, Unicode, rpc

from nvr.onvif import types_tt as tt
from nvr.onvif.device_capabilities import model_element
from nvr.onvif.endpoints import BackendEndpoint, serve_endpoint
from nvr.onvif.events_endpoint import finish_envelope
from nvr.onvif.events_filter import EventFilter, FilterError, parse_filter
from nvr.onvif.events_topics import VALUE_PREFIXES
from nvr.onvif.faults import OnvifFault
from nvr.onvif.namespaces import TSE, clark
from nvr.onvif.operations import compose
from nvr.onvif.registry import ServiceEntry
from nvr.onvif.request import HttpRequest
from nvr.onvif.resources import receiver_of
from nvr.onvif.soap import SoapResponse, SoapService
from nvr.onvif.types_tt import repeated, required
from nvr.search import engine as search_engine
from nvr.search import service_render as render
from nvr.search import service_types as st
from nvr.search.engine import Scope, SearchEngine
from nvr.search.service_policy import SEARCH_ACCESS, SEARCH_OPERATIONS
from nvr.search.sessions import Batch, TooManySearches, UnknownSearch
from nvr.search.types import SearchError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.onvif.context import OnvifContext

log = logging.getLogger("nvr.search")

SEARCH_PATH: Final = "/onvif/search_service"
SEARCH_VERSION: Final = (26, 6)
SPARE_THREADS: Final = 16

_engine: contextvars.ContextVar[SearchEngine] = contextvars.ContextVar("search_engine")


def current_engine() -> SearchEngine:
    return _engine.get()


def capabilities() -> st.Capabilities:
    return st.Capabilities(
        MetadataSearch=True, GeneralStartEvents=True, NLSearch=False, ImageSearch=False
    )


# ---- faults ------------------------------------------------------------------------------------


@contextmanager
def _faults() -> Iterator[None]:
    """Engine errors as the faults of search.md §2."""
    try:
        yield
    except SearchError as error:
        if error.reason == "InvalidArgVal":
            raise OnvifFault.sender("InvalidArgVal", error.message) from None
        raise OnvifFault.sender("InvalidArgVal", error.reason, error.message) from None
    except UnknownSearch:
        raise OnvifFault.sender(
            "InvalidArgVal", "InvalidToken", "unknown, ended or expired search token"
        ) from None
    except TooManySearches as error:
        raise OnvifFault.receiver("Action", "ResourceProblem", str(error)) from None


def _scope(scope: st.SearchScope | None) -> Scope:
    if scope is None:
        return Scope()
    return Scope(
        sources=tuple(receiver_of(t) or t for t in render.scope_tokens(scope.IncludedSources)),
        recordings=render.scope_tokens(scope.IncludedRecordings),
        information_filter=scope.RecordingInformationFilter,
    )


def _start(value: dt.datetime | None) -> int:
    start = render.time_us(value)
    if start is None:
        raise OnvifFault.sender("InvalidArgVal", "StartPoint is required")
    return start


def _event_filter(ctx: Any) -> EventFilter:
    body = ctx.in_body_doc
    element = None if body is None else body.find(clark(TSE, "SearchFilter"))
    try:
        return parse_filter(element)
    except FilterError as error:
        raise OnvifFault.sender("InvalidArgVal", "InvalidFilterFault", error.reason) from None


def _results(
    kind: str,
    token: str,
    min_results: int | None,
    max_results: int | None,
    wait: dt.timedelta | None,
) -> Batch:
    with _faults():
        return current_engine().results(token, kind, min_results, max_results, render.seconds(wait))


_GetResults: Final = (required(Unicode), Integer32, Integer32, Duration)
_Find: Final = dict(_returns=required(Unicode), _out_variable_name="SearchToken")


class SearchMethods:
    """Namespace of the implemented search operations (composed into one spyne service)."""

    @rpc(_returns=required(st.Capabilities), _out_variable_name="Capabilities")
    def GetServiceCapabilities(ctx: Any) -> st.Capabilities:
        return capabilities()

    @rpc(_returns=required(st.RecordingSummary), _out_variable_name="Summary")
    def GetRecordingSummary(ctx: Any) -> st.RecordingSummary:
        lo, hi, count = current_engine().summary()
        return st.RecordingSummary(
            DataFrom=st.UtcTime.of(lo), DataUntil=st.UtcTime.of(hi), NumberRecordings=count
        )

    @rpc(
        required(Unicode),
        _returns=required(st.RecordingInformation),
        _out_variable_name="RecordingInformation",
    )
    def GetRecordingInformation(ctx: Any, RecordingToken: str) -> st.RecordingInformation:
        with _faults():
            view = current_engine().information(RecordingToken or "")
        return render.recording_information(view)

    @rpc(
        repeated(Unicode),
        required(DateTime),
        _returns=repeated(st.MediaAttributes),
        _out_variable_name="MediaAttributes",
    )
    def GetMediaAttributes(
        ctx: Any, RecordingTokens: Sequence[str] | None, Time: dt.datetime
    ) -> list[st.MediaAttributes]:
        when = _start(Time)
        with _faults():
            found = current_engine().media_attributes(render.scope_tokens(RecordingTokens), when)
        return [render.media_attributes(m) for m in found]

    @rpc(required(st.SearchScope), Integer32, required(Duration), **_Find)
    def FindRecordings(
        ctx: Any, Scope: st.SearchScope, MaxMatches: int | None, KeepAliveTime: dt.timedelta
    ) -> str:
        with _faults():
            return current_engine().find_recordings(
                _scope(Scope), MaxMatches, render.keepalive(KeepAliveTime)
            )

    @rpc(
        *_GetResults,
        _returns=required(st.FindRecordingResultList),
        _out_variable_name="ResultList",
    )
    def GetRecordingSearchResults(
        ctx: Any,
        SearchToken: str,
        MinResults: int | None,
        MaxResults: int | None,
        WaitTime: dt.timedelta | None,
    ) -> st.FindRecordingResultList:
        batch = _results(search_engine.RECORDINGS, SearchToken, MinResults, MaxResults, WaitTime)
        return st.FindRecordingResultList(
            SearchState=batch.state,
            RecordingInformation=[render.recording_information(v) for v in batch.results],
        )

    @rpc(
        required(DateTime),
        DateTime,
        required(st.SearchScope),
        AnyXml,
        required(Boolean),
        Integer32,
        required(Duration),
        **_Find,
    )
    def FindEvents(
        ctx: Any,
        StartPoint: dt.datetime,
        EndPoint: dt.datetime | None,
        Scope: st.SearchScope,
        SearchFilter: Any,
        IncludeStartState: bool,
        MaxMatches: int | None,
        KeepAliveTime: dt.timedelta,
    ) -> str:
        start = _start(StartPoint)
        event_filter = _event_filter(ctx)
        with _faults():
            return current_engine().find_events(
                start,
                render.time_us(EndPoint),
                _scope(Scope),
                event_filter,
                bool(IncludeStartState),
                MaxMatches,
                render.keepalive(KeepAliveTime),
            )

    @rpc(*_GetResults, _returns=required(st.FindEventResultList), _out_variable_name="ResultList")
    def GetEventSearchResults(
        ctx: Any,
        SearchToken: str,
        MinResults: int | None,
        MaxResults: int | None,
        WaitTime: dt.timedelta | None,
    ) -> st.FindEventResultList:
        batch = _results(search_engine.EVENTS, SearchToken, MinResults, MaxResults, WaitTime)
        return st.FindEventResultList(
            SearchState=batch.state, Result=[render.event_result(r) for r in batch.results]
        )

    @rpc(
        required(DateTime),
        DateTime,
        required(st.SearchScope),
        required(st.PTZPositionFilter),
        Integer32,
        required(Duration),
        **_Find,
    )
    def FindPTZPosition(
        ctx: Any,
        StartPoint: dt.datetime,
        EndPoint: dt.datetime | None,
        Scope: st.SearchScope,
        SearchFilter: st.PTZPositionFilter,
        MaxMatches: int | None,
        KeepAliveTime: dt.timedelta,
    ) -> str:
        start = _start(StartPoint)
        if SearchFilter is None:
            raise OnvifFault.sender("InvalidArgVal", "SearchFilter is required")
        with _faults():
            return current_engine().find_ptz(
                start,
                render.time_us(EndPoint),
                _scope(Scope),
                render.ptz_box(SearchFilter),
                MaxMatches,
                render.keepalive(KeepAliveTime),
            )

    @rpc(
        *_GetResults,
        _returns=required(st.FindPTZPositionResultList),
        _out_variable_name="ResultList",
    )
    def GetPTZPositionSearchResults(
        ctx: Any,
        SearchToken: str,
        MinResults: int | None,
        MaxResults: int | None,
        WaitTime: dt.timedelta | None,
    ) -> st.FindPTZPositionResultList:
        batch = _results(search_engine.PTZ, SearchToken, MinResults, MaxResults, WaitTime)
        return st.FindPTZPositionResultList(
            SearchState=batch.state, Result=[render.ptz_result(r) for r in batch.results]
        )

    @rpc(required(Unicode), _returns=required(st.SearchState), _out_variable_name="State")
    def GetSearchState(ctx: Any, SearchToken: str) -> str:
        with _faults():
            return current_engine().state(SearchToken or "")

    @rpc(required(Unicode), _returns=required(DateTime), _out_variable_name="Endpoint")
    def EndSearch(ctx: Any, SearchToken: str) -> st.UtcTime:
        with _faults():
            return st.UtcTime.of(current_engine().end(SearchToken or ""))

    @rpc(
        required(DateTime),
        DateTime,
        required(st.SearchScope),
        required(st.MetadataFilter),
        Integer32,
        required(Duration),
        **_Find,
    )
    def FindMetadata(
        ctx: Any,
        StartPoint: dt.datetime,
        EndPoint: dt.datetime | None,
        Scope: st.SearchScope,
        MetadataFilter: st.MetadataFilter,
        MaxMatches: int | None,
        KeepAliveTime: dt.timedelta,
    ) -> str:
        start = _start(StartPoint)
        expression = None if MetadataFilter is None else MetadataFilter.MetadataStreamFilter
        if not expression:
            raise OnvifFault.sender("InvalidArgVal", "MetadataStreamFilter is required")
        with _faults():
            return current_engine().find_metadata(
                start,
                render.time_us(EndPoint),
                _scope(Scope),
                expression,
                MaxMatches,
                render.keepalive(KeepAliveTime),
            )

    @rpc(
        *_GetResults,
        _returns=required(st.FindMetadataResultList),
        _out_variable_name="ResultList",
    )
    def GetMetadataSearchResults(
        ctx: Any,
        SearchToken: str,
        MinResults: int | None,
        MaxResults: int | None,
        WaitTime: dt.timedelta | None,
    ) -> st.FindMetadataResultList:
        batch = _results(search_engine.METADATA, SearchToken, MinResults, MaxResults, WaitTime)
        return st.FindMetadataResultList(
            SearchState=batch.state, Result=[render.metadata_result(h) for h in batch.results]
        )


# ---- the service and its endpoint ----------------------------------------------------------


@cache
def search_service() -> SoapService:
    """The search service definition (built once per process: spyne apps are costly)."""
    return SoapService(
        name="SearchService",
        namespace=TSE,
        services=(compose("SearchService", [SearchMethods], SEARCH_OPERATIONS),),
        access=SEARCH_ACCESS,
    )


class SearchEndpoint(BackendEndpoint[SearchEngine]):
    """:class:`BackendEndpoint` with the engine in scope and value prefixes declared."""

    def __init__(self, service: SoapService, context: OnvifContext, engine: SearchEngine) -> None:
        limits = engine.searches.limits
        threads = limits.max_sessions + SPARE_THREADS
        super().__init__(service, context, engine, _engine, threads=threads)
        self.engine = engine

    def handle(self, request: HttpRequest) -> SoapResponse:
        response = super().handle(request)
        if b"Topic" in response.body:
            try:
                response.body = finish_envelope(response.body, dict(VALUE_PREFIXES), None)
            except etree.XMLSyntaxError:
                pass
        return response


def search_entry() -> ServiceEntry:
    return ServiceEntry(
        namespace=TSE,
        path=SEARCH_PATH,
        version=SEARCH_VERSION,
        capabilities=lambda: model_element(capabilities(), st.Capabilities, "Capabilities"),
        legacy_slot="Search",
        legacy=lambda xaddr: tt.SearchCapabilities(XAddr=xaddr, MetadataSearch=True),
    )


def mount_search(app: FastAPI, context: OnvifContext, engine: SearchEngine) -> SearchEndpoint:
    endpoint = SearchEndpoint(search_service(), context, engine)
    return serve_endpoint(app, context, SEARCH_PATH, endpoint, search_entry())


__all__ = ["SEARCH_PATH", "SearchEndpoint", "capabilities", "mount_search", "search_service"]
