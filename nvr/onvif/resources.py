"""Resource queries (ResourceQuery §5–6): the recorder's cameras and recordings as property
events on the Event service, with remote tokens for the cameras it re-exposes.

Two topics (both advertised by GetEventProperties, see :mod:`nvr.onvif.events_topics`):

* ``tns1:Resource/VideoSource`` — one per receiver (a receiver is the NVR's connection to one
  camera source). Source ``Token`` is a *remote token* ``Prefix:LocalToken``: the local part is
  the receiver token (the token recording jobs name as their source), the prefix is
  :func:`device_prefix` of it — ``cam-`` and 12 hex digits of its SHA-256, stable for the life
  of the receiver and the same for every token we might later expose for that camera.
  ``Offline`` is true unless the receiver is Connected.
* ``tns1:Resource/Recording`` — one per recording. Recordings are the recorder's own resources
  and their tokens are what Recording, Search and Replay take, so the token stays unprefixed.
  ``Offline`` is true unless a recording job is recording into it (a track Active).

Data items: ``Name`` and the position and scopes come from the recording source information
(tt:RecordingSourceInformation) — of the recording itself, or for a video source of the first
recording (by job creation order) its receiver feeds; a video source that feeds none is named
after its camera's host and has no scopes. ``Location`` is a tt:GeoLocation when the free-text
Location states a position (:mod:`nvr.onvif.resources_geo`). ``Scope`` items are
discovery-style scopes made from the same information: ``onvif://www.onvif.org/name/<Name>``
and, for a Location that is a place rather than a position,
``onvif://www.onvif.org/location/<segments>`` (its ``/``-separated parts as path segments, so
RFC 3986 prefix matching works on them). The recorder's own discovery
scopes describe the recorder, not its cameras, and are not repeated here.

:class:`ResourceTracker` keeps the published set equal to the daemon's state: it recomputes it
(:func:`resources_of`, pure) whenever a receiver is created, reconfigured or deleted (the
receiver manager's listeners), and when the bus carries a receiver state change or any
``tns1:RecordingConfig`` event (recordings, jobs, job states), then publishes the differences:
``Initialized`` for new resources, ``Changed`` for modified ones (an Offline flip included, the
message carrying Offline), ``Deleted`` — with the last data, so location and scope filters
pass the deletion of what they let through — for removed ones. New subscriptions and
SetSynchronizationPoint get the current set as ``Initialized`` from the event service's
property machinery.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit

from lxml import etree

from nvr.events import Event, EventBus, Items
from nvr.ingest.job_config import RECEIVER_SOURCE, JobConfiguration, JobState, NoRecordingJob
from nvr.ingest.receiver_config import CONNECTED, ReceiverInfo, public_uri
from nvr.ingest.receivers import TOPIC_CHANGE_STATE, ReceiverManager
from nvr.onvif.device_scopes import ONVIF_SCOPE
from nvr.onvif.events_topics import TOPIC_PREFIX
from nvr.onvif.resources_geo import GeoPoint, geo_element, parse_location
from nvr.store.types import RecordingInfo

if TYPE_CHECKING:
    from nvr.ingest.jobs import RecordingJobManager
    from nvr.store import Store

log = logging.getLogger("nvr.onvif.resources")

VIDEO_SOURCE: Final = "tns1:Resource/VideoSource"
RECORDING: Final = "tns1:Resource/Recording"
TOPICS: Final = (VIDEO_SOURCE, RECORDING)
MAX_REMOTE_TOKEN: Final = 64
"""tt:ReferenceToken length limit."""
MAX_LOCAL_TOKEN: Final = 36
MAX_PREFIX: Final = MAX_REMOTE_TOKEN - 1 - MAX_LOCAL_TOKEN
"""27: every local token of a device must fit behind its prefix."""
PREFIX_STEM: Final = "cam-"
_LOCAL_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:nvr:resource-query:local-token")
_TRIGGERS: Final = (TOPIC_CHANGE_STATE, f"{TOPIC_PREFIX}:RecordingConfig/")
_ACTIVE: Final = "Active"

Key = tuple[str, str]
"""(topic, Source Token)."""


# --- remote tokens ----------------------------------------------------------------------------


def device_prefix(receiver_token: str) -> str:
    """The prefix of every remote token of the camera behind ``receiver_token``."""
    return PREFIX_STEM + hashlib.sha256(receiver_token.encode()).hexdigest()[:12]


def local_token(token: str) -> str:
    """``token`` if it fits the local part (≤ 36 characters, no colon), else a stable
    36-character stand-in (a name-based UUID of it)."""
    if len(token) <= MAX_LOCAL_TOKEN and ":" not in token:
        return token
    return str(uuid.uuid5(_LOCAL_NAMESPACE, token))


def remote_token(prefix: str, token: str) -> str:
    """``Prefix:LocalToken`` within the 64-character limit."""
    if not prefix or ":" in prefix:
        raise ValueError(f"invalid remote token prefix {prefix!r}")
    if len(prefix) > MAX_PREFIX:
        raise ValueError(f"prefix {prefix!r} leaves no room for a 36-character local token")
    return f"{prefix}:{local_token(token)}"


def split_remote_token(token: str) -> tuple[str | None, str]:
    """(prefix, local token); (None, token) for a token without a prefix."""
    prefix, colon, local = token.partition(":")
    return (prefix, local) if colon else (None, token)


def receiver_of(token: str) -> str | None:
    """The receiver a VideoSource remote token stands for (None: not one we issued), so
    services taking source tokens (Search IncludedSources) accept what resource queries gave
    out (ResourceQuery §5.1: clients use the server's own tokens). Receiver tokens longer
    than 36 characters (we create none) have a stand-in local part and do not resolve."""
    prefix, local = split_remote_token(token)
    return local if prefix is not None and prefix == device_prefix(local) else None


# --- the resources ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    topic: str
    token: str
    name: str | None
    location: GeoPoint | None
    scopes: tuple[str, ...]
    offline: bool

    @property
    def key(self) -> Key:
        return self.topic, self.token

    def source(self) -> Items:
        return (("Token", self.token),)

    def data(self) -> Items:
        name = (("Name", self.name),) if self.name else ()
        scopes = tuple(("Scope", scope) for scope in self.scopes)
        return (*name, *scopes, ("Offline", "true" if self.offline else "false"))

    def elements(self) -> tuple[tuple[str, etree._Element], ...]:
        return (("Location", geo_element(self.location)),) if self.location else ()


def source_scopes(name: str | None, location: str | None) -> tuple[str, ...]:
    """Discovery-style scopes of a source: its name, and its location if that is a place."""
    scopes: list[str] = []
    if name:
        scopes.append(f"{ONVIF_SCOPE}name/{quote(name, safe='')}")
    if location and parse_location(location) is None:
        parts = [quote(part.strip(), safe="") for part in location.split("/") if part.strip()]
        if parts:
            scopes.append(f"{ONVIF_SCOPE}location/{'/'.join(parts)}")
    return tuple(scopes)


def _described(
    topic: str, token: str, name: str | None, location: str | None, offline: bool
) -> Resource:
    name = (name or "").strip() or None
    return Resource(
        topic, token, name, parse_location(location), source_scopes(name, location), offline
    )


def _recording_active(state: JobState) -> bool:
    return any(t.state == _ACTIVE for s in state.sources for t in s.tracks)


def resources_of(
    receivers: Iterable[ReceiverInfo],
    jobs: Sequence[tuple[JobConfiguration, JobState | None]],
    recordings: Iterable[RecordingInfo],
) -> dict[Key, Resource]:
    """Every resource the daemon's state implies (jobs in creation order)."""
    by_token = {r.token: r for r in recordings}
    found: dict[Key, Resource] = {}
    recording_now = {
        config.recording_token for config, state in jobs if state and _recording_active(state)
    }
    for info in by_token.values():
        resource = _described(
            RECORDING,
            info.token,
            info.source_name,
            info.source_location,
            info.token not in recording_now,
        )
        found[resource.key] = resource
    for receiver in receivers:
        token = remote_token(device_prefix(receiver.token), receiver.token)
        offline = receiver.state != CONNECTED
        fed = next(
            (
                by_token[config.recording_token]
                for config, _ in jobs
                if config.recording_token in by_token
                and any(
                    s.token == receiver.token and s.type == RECEIVER_SOURCE for s in config.sources
                )
            ),
            None,
        )
        if fed is not None:
            resource = _described(
                VIDEO_SOURCE, token, fed.source_name, fed.source_location, offline
            )
        else:
            host = urlsplit(public_uri(receiver.config.media_uri)).hostname
            resource = Resource(VIDEO_SOURCE, token, host or None, None, (), offline)
        found[resource.key] = resource
    return found


# --- publishing -------------------------------------------------------------------------------


class ResourceTracker:
    """Publishes the resources of a running daemon and keeps them current (module docstring).

    :meth:`start` and :meth:`stop` run on the daemon's event loop; recomputations run in a
    worker thread (the recordings come from the database), one at a time, coalesced.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._published: dict[Key, Resource | None] = {}
        """What we published last (None: left over from an earlier run, unknown content)."""
        self._parts: tuple[ReceiverManager, RecordingJobManager, Store] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def start(
        self, receivers: ReceiverManager, jobs: RecordingJobManager, store: Store
    ) -> None:
        """Follow the receivers, jobs and recordings; returns once the current resources
        are published."""
        with self._lock:
            self._published = {
                (e.topic, e.source_dict().get("Token", "")): None
                for e in self._bus.current_properties()
                if e.topic in TOPICS
            }
        self._parts = (receivers, jobs, store)
        self._loop = asyncio.get_running_loop()
        receivers.listeners.append(self.changed)
        self._subscription = self._bus.subscribe(self._on_event)
        self._kick()
        await self._settled()

    async def stop(self) -> None:
        """Stop following (the published resources stay as they are)."""
        if self._subscription is not None:
            self._bus.unsubscribe(self._subscription)
            self._subscription = None
        if self._parts is not None and self.changed in self._parts[0].listeners:
            self._parts[0].listeners.remove(self.changed)
        self._loop = None
        await self._settled()
        self._parts = None

    def changed(self) -> None:
        """Something resources derive from changed: recompute soon (any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._kick)

    def published(self) -> dict[Key, Resource]:
        with self._lock:
            return {k: v for k, v in self._published.items() if v is not None}

    # --- internals ----------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.topic.startswith(_TRIGGERS):
            self.changed()

    def _kick(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
        elif self._loop is not None:
            self._task = self._loop.create_task(self._run(), name="resource tracker")

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("resources: recomputing failed")
            if not self._again or self._loop is None:
                return

    async def _settled(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def refresh(self) -> None:
        """Recompute the resources and publish what differs from the last publication."""
        parts = self._parts
        if parts is None:
            return
        receivers, job_manager, store = parts
        jobs: list[tuple[JobConfiguration, JobState | None]] = []
        for token, config in job_manager.jobs():
            try:
                jobs.append((config, job_manager.state(token)))
            except NoRecordingJob:  # deleted meanwhile
                continue
        wanted = resources_of(receivers.list(), jobs, store.recordings())
        with self._lock:
            for key, old in list(self._published.items()):
                if key not in wanted:
                    self._delete(key, old)
                    del self._published[key]
            for key, resource in wanted.items():
                if self._published.get(key) != resource:
                    self._bus.publish_property(
                        resource.topic,
                        resource.source(),
                        resource.data(),
                        elements=resource.elements(),
                    )
                    self._published[key] = resource

    def _delete(self, key: Key, old: Resource | None) -> None:
        topic, token = key
        data, elements = (old.data(), old.elements()) if old is not None else ((), ())
        self._bus.delete_property(topic, (("Token", token),), data, elements=elements)
