"""Fixtures of the Search service tests: recorded data and a VMS-like zeep client.

``world`` (module scope) records once per module into the module's database (modules that use
it import ``database_url`` and ``start_server`` from tests/onvif/conftest.py); ``search`` is a
zeep client built from the official search.wsdl talking to a fresh in-process server whose
daemon reads that store. Every response it receives is validated against the official XSDs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zeep.exceptions
from lxml import etree

from nvr.db.engine import make_engine
from nvr.onvif.events_filter import ITEM_FILTER
from nvr.onvif.events_topics import CONCRETE_SET, TNS1
from nvr.onvif.namespaces import TER, TSE, TT, WSNT
from nvr.search.service import SEARCH_PATH
from nvr.search.timefmt import datetime_us, utc_datetime
from tests.onvif.conftest import USER, OnvifServer, StartServer
from tests.onvif.schemas import assert_valid
from tests.onvif.zeep_client import OnvifClient
from tests.search.recorded import World, record_world

SEARCH_WSDL = "ver10/search.wsdl"
SEARCH_BINDING = f"{{{TSE}}}SearchBinding"


def when(time_us: int) -> dt.datetime:
    return utc_datetime(time_us)


def us(value: dt.datetime) -> int:
    return datetime_us(value)


class SearchClient:
    """The official-WSDL client; ``call`` and ``fault`` validate what came back."""

    def __init__(self, server: OnvifServer, credentials: tuple[str, str] | None = USER) -> None:
        self.server = server
        self.client = OnvifClient(
            server.base_url + SEARCH_PATH, digest=credentials, wsdl=SEARCH_WSDL,
            binding=SEARCH_BINDING,
        )  # fmt: skip

    def call(self, operation: str, **kwargs: Any) -> Any:
        result = getattr(self.client.service, operation)(**kwargs)
        assert_valid(self.client.last_response, SEARCH_WSDL)
        return result

    def fault(self, operation: str, **kwargs: Any) -> tuple[str, list[str]]:
        with pytest.raises(zeep.exceptions.Fault) as info:
            getattr(self.client.service, operation)(**kwargs)
        assert_valid(self.client.last_response, SEARCH_WSDL)
        fault = info.value
        assert all(q.namespace == TER for q in fault.subcodes), fault.subcodes
        return fault.code.partition(":")[2], [q.localname for q in fault.subcodes]

    @property
    def raw(self) -> etree._Element:
        return etree.fromstring(self.client.last_response)

    # ---- request parts ----------------------------------------------------------------------

    def event_filter(self, topic: str | None = None, content: str | None = None) -> Any:
        parts = []
        if topic is not None:
            element = etree.Element(
                f"{{{WSNT}}}TopicExpression", Dialect=CONCRETE_SET,
                nsmap={"wsnt": WSNT, "tns1": TNS1},
            )  # fmt: skip
            element.text = topic
            parts.append(element)
        if content is not None:
            element = etree.Element(
                f"{{{WSNT}}}MessageContent", Dialect=ITEM_FILTER, nsmap={"wsnt": WSNT}
            )
            element.text = content
            parts.append(element)
        return self.client.type(f"{{{TT}}}EventFilter")(_value_1=parts)

    def results(self, operation: str, token: str, **kwargs: Any) -> list[Any]:
        """Every result of a search, page after page, until Completed."""
        found: list[Any] = []
        for _ in range(1000):
            page = self.call(operation, SearchToken=token, **kwargs)
            items = page.RecordingInformation if "Recording" in operation else page.Result
            if operation == "GetEventSearchResults":
                # zeep drops the text of wsnt:Topic (mixed content): take it from the XML
                topics = self.raw.iterfind(f".//{{{TT}}}Result/{{{TT}}}Event/{{{WSNT}}}Topic")
                for item, topic in zip(items or [], topics, strict=True):
                    item.Event.Topic._value_1 = (topic.text or "").strip()
            found += items or []
            if page.SearchState == "Completed":
                return found
        raise AssertionError("the search never completed")


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    engine = make_engine(database_url)
    recorded = record_world(engine, Path(tmp_path_factory.mktemp("search-store")))
    yield recorded
    recorded.close()
    engine.dispose()


@pytest.fixture
def search(start_server: StartServer, world: World) -> SearchClient:
    server = start_server()
    server.add_standard_users()
    assert server.daemon is not None
    server.daemon.store = world.store
    return SearchClient(server)


__all__ = ["SEARCH_WSDL", "TT", "SearchClient", "us", "when"]
