"""Recording search: the event/PTZ index, search sessions and the ONVIF Search service.

* ``index.py`` — the indexer thread (bus events, metadata documents, retention);
* ``queries.py`` — keyset-paginated reads; ``recordings.py`` — RecordingInformation & co.;
* ``xpath.py`` — the search filter dialect; ``searches.py`` — the four searches as lazy
  producers; ``sessions.py`` — tokens, keep-alive and the Get*Results rule;
* ``engine.py`` — what the service calls; ``service*.py`` — the spyne service.

:func:`create_indexer` and :func:`mount` are the daemon's two entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvr.search.engine import SearchEngine
from nvr.search.index import SearchIndexer
from nvr.search.recordings import bus_recording_states
from nvr.search.sessions import Limits

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nvr.app import Daemon
    from nvr.onvif.context import OnvifContext

REAP_INTERVAL = 5


def create_indexer(daemon: Daemon) -> SearchIndexer:
    """The daemon's indexer (start it once the store is open, stop it before closing it)."""
    return SearchIndexer(
        daemon.sessions,
        daemon.bus,
        lambda: daemon.store,
        interval=daemon.config["search.index_interval_seconds"],
    )


def mount(app: FastAPI, context: OnvifContext, daemon: Daemon) -> SearchEngine:
    """Serve the Search service; expired sessions are reaped by the daemon's scheduler."""
    from nvr.search.service import mount_search

    config = daemon.config
    indexer: SearchIndexer | None = getattr(daemon, "search_indexer", None)
    engine = SearchEngine(
        daemon.sessions,
        store=lambda: daemon.store,
        states=bus_recording_states(daemon.bus),
        limits=Limits(
            max_sessions=config["search.max_sessions"],
            max_keepalive=config["search.max_keepalive_seconds"],
            max_wait=config["search.max_wait_seconds"],
            max_results=config["search.max_results"],
        ),
        changes=None if indexer is None else indexer.changes,
        settle_us=int(config["search.settle_seconds"] * 1_000_000),
    )
    mount_search(app, context, engine)
    scheduler: Any = daemon.scheduler
    scheduler.add_job(
        engine.searches.reap, "interval", seconds=REAP_INTERVAL, max_instances=1, coalesce=True
    )
    daemon.on_stop_requested.append(engine.close)
    return engine


__all__ = ["SearchEngine", "SearchIndexer", "create_indexer", "mount"]
