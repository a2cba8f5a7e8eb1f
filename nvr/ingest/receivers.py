"""ONVIF receivers: persisted RTSP sources, each supervised by one task (receiver.md).

A receiver connects when its mode is ``AlwaysConnect``, or ``AutoConnect`` while at least one
consumer holds it (:meth:`ReceiverManager.acquire`); ``NeverConnect`` never does. Failures are
retried with capped, jittered exponential back-off (:mod:`nvr.ingest.backoff`), and an
authentication failure with a separate, slower policy: a wrong password must neither hammer
the camera nor lock the account. Every state transition publishes
``tns1:Receiver/ChangeState``, every failed attempt or lost session
``tns1:Receiver/ConnectionFailed`` (MediaUri without credentials).

Consumers :meth:`~ReceiverManager.attach` a factory; after each (re)connect it is called with
the session's media list (a :class:`ReceiverSession`) and returns a sink per media it wants
(``{position: MediaSink}``), e.g. :class:`~nvr.ingest.recorder.TrackRecorder` instances. When
the session ends every sink is closed (recorders end their store runs); the next session asks
the factories again, so a reconnect records new runs after a gap and nothing twice.

Configuration values, their validation and the errors the SOAP layer maps to faults are in
:mod:`nvr.ingest.receiver_config` (re-exported here).

Threading: mutating methods are coroutines for the event loop (the SOAP layer runs them with
``asyncio.run_coroutine_threadsafe``); :meth:`get`, :meth:`list` and :meth:`state` read a
snapshot and are safe from any thread. Database work runs in threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Receiver as ReceiverRow
from nvr.events import Event, EventBus
from nvr.ingest.backoff import Backoff, BackoffPolicy
from nvr.ingest.receiver_config import (
    ALWAYS_CONNECT,
    AUTO_CONNECT,
    CONNECTED,
    CONNECTING,
    MAX_URI_LENGTH,
    MIN_URI_LENGTH,
    MODES,
    NEVER_CONNECT,
    NOT_CONNECTED,
    PROTOCOLS,
    STATES,
    BadReceiverConfiguration,
    MaxReceiversReached,
    ReceiverConfig,
    ReceiverError,
    ReceiverInfo,
    ReceiverInUse,
    UnknownReceiver,
    check_options,
    public_uri,
    quirks_from_options,
    validate_config,
)
from nvr.ingest.receiver_secrets import ReceiverSecrets
from nvr.ingest.rtsp_client import (
    RtspAuthFailed,
    RtspClient,
    RtspClientError,
    Timeouts,
)
from nvr.ingest.sinks import MediaSink, SessionSink
from nvr.protocol.sdp import MediaStream
from nvr.secretbox import SecretBox
from nvr.store.catalog import new_token

__all__ = [
    "AUTH_BACKOFF",
    "BACKOFF",
    "MODES",
    "PROTOCOLS",
    "STATES",
    "BadReceiverConfiguration",
    "ConsumerFactory",
    "MaxReceiversReached",
    "ReceiverConfig",
    "ReceiverError",
    "ReceiverInUse",
    "ReceiverInfo",
    "ReceiverManager",
    "ReceiverSession",
    "ReceiverStatus",
    "UnknownReceiver",
    "validate_config",
]

log = logging.getLogger("nvr.ingest.receivers")

TOPIC_CHANGE_STATE: Final = "tns1:Receiver/ChangeState"
TOPIC_CONNECTION_FAILED: Final = "tns1:Receiver/ConnectionFailed"

BACKOFF = BackoffPolicy(initial=1.0, maximum=60.0, minimum=0.5, reset_after=60.0)
AUTH_BACKOFF = BackoffPolicy(initial=30.0, maximum=600.0, minimum=15.0, reset_after=60.0)


@dataclass(frozen=True, slots=True)
class ReceiverSession:
    """One connected session, as consumer factories see it.

    ``streams`` are the set-up media in SDP order; factories key their sinks by position in
    it. ``request_key_frame(position)`` sends an RTCP PLI for that media.
    """

    token: str
    uri: str
    """The camera URI without credentials."""
    streams: tuple[MediaStream, ...]
    generation: int
    """This receiver's connection attempt number since start (1 for the first): a jump
    between two sessions means attempts failed in between."""
    request_key_frame: Callable[[int], int]

    def key_frame_requester(self, position: int) -> Callable[[], int]:
        """A no-argument PLI callback for one media (what TrackRecorder takes)."""
        return lambda: self.request_key_frame(position)


@dataclass(slots=True)
class ReceiverStatus:
    """Counters and last error of one receiver (status pages, tests)."""

    attempts: int = 0
    failures: int = 0
    auth_failures: int = 0
    sessions: int = 0
    """Sessions that reached PLAY."""
    last_error: str | None = None
    last_failure_us: int | None = None
    connected_since_us: int | None = None
    retry_in: float | None = None
    """Back-off delay after the last failure (seconds)."""


SinkMap = Mapping[int, MediaSink] | Iterable[tuple[int, MediaSink]]
ConsumerFactory = Callable[[ReceiverSession], Awaitable[SinkMap] | SinkMap]


# --- the engine -----------------------------------------------------------------------------


class _Receiver:
    """In-memory state of one receiver and its supervision task."""

    def __init__(
        self, token: str, config: ReceiverConfig, auto_created: bool, options: dict[str, Any]
    ) -> None:
        self.token = token
        self.config = config
        self.auto_created = auto_created
        self.options = options
        self.state = NOT_CONNECTED
        self.version = 0  # bumped by every configuration change
        self.factories: dict[Hashable, ConsumerFactory] = {}
        self.demand: set[Hashable] = set()
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.live: tuple[ReceiverSession, SessionSink] | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.generation = 0
        self.status = ReceiverStatus()
        self.deleted = False

    def info(self) -> ReceiverInfo:
        return ReceiverInfo(self.token, self.config, self.auto_created, self.state, self.options)


class ReceiverManager:
    """All receivers of the daemon (see the module docstring).

    ``client_factory`` builds the RTSP client (tests substitute it); ``factory_timeout`` bounds
    how long PLAY waits for consumer factories (those still running attach late). ``box``
    seals the camera passwords in the database (:mod:`nvr.ingest.receiver_secrets`); the
    daemon always passes its own.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bus: EventBus,
        *,
        max_receivers: int = 64,
        max_uri_length: int = 1024,
        timeouts: Timeouts | None = None,
        backoff: BackoffPolicy = BACKOFF,
        auth_backoff: BackoffPolicy = AUTH_BACKOFF,
        factory_timeout: float = 10.0,
        client_factory: Callable[..., RtspClient] = RtspClient,
        box: SecretBox | None = None,
    ) -> None:
        if not MIN_URI_LENGTH <= max_uri_length <= MAX_URI_LENGTH:
            raise ValueError(f"max_uri_length must be in {MIN_URI_LENGTH}..{MAX_URI_LENGTH}")
        self._sessions = sessions
        self._bus = bus
        self.max_receivers = max_receivers
        self.max_uri_length = max_uri_length
        self._timeouts = timeouts or Timeouts()
        self._backoff = backoff
        self._auth_backoff = auth_backoff
        self._factory_timeout = factory_timeout
        self._client_factory = client_factory
        self._secrets = ReceiverSecrets(box)
        self._receivers: dict[str, _Receiver] = {}
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self.listeners: list[Callable[[], None]] = []
        """Called (on the loop) after a receiver is created, reconfigured or deleted; state
        changes are on the bus (ChangeState). They must be quick and must not raise."""

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the persisted receivers and start supervising them."""
        rows = await asyncio.to_thread(self._load)
        for token, config, auto_created, options in rows:
            receiver = _Receiver(token, config, auto_created, options)
            with self._lock:
                self._receivers[token] = receiver
        self._started = True
        for receiver in list(self._receivers.values()):
            self._spawn(receiver)
        log.info("receivers: %d loaded", len(rows))

    async def stop(self, timeout: float = 15.0) -> None:
        """Disconnect everything (recorders end their runs) and stop the tasks."""
        self._started = False
        self._stopping = True
        receivers = list(self._receivers.values())
        for receiver in receivers:
            receiver.changed.set()
        await self._finish([r.task for r in receivers if r.task is not None], timeout)
        pending = [t for r in receivers for t in r.pending]
        if pending:
            await asyncio.wait(pending, timeout=self._factory_timeout)

    @staticmethod
    async def _finish(tasks: list[asyncio.Task[None]], timeout: float) -> None:
        """Let supervision tasks end by themselves (clean TEARDOWN); cancel stragglers."""
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, receiver: _Receiver) -> None:
        if self._started and receiver.task is None:
            receiver.task = asyncio.get_running_loop().create_task(
                self._supervise(receiver), name=f"receiver {receiver.token}"
            )

    # --- reads (any thread) ---------------------------------------------------------------

    def get(self, token: str) -> ReceiverInfo:
        return self._get(token).info()

    def list(self) -> list[ReceiverInfo]:
        with self._lock:
            receivers = list(self._receivers.values())
        return [r.info() for r in receivers]

    def state(self, token: str) -> tuple[str, bool]:
        """GetReceiverState: (State, AutoCreated)."""
        r = self._get(token)
        return r.state, r.auto_created

    def status(self, token: str) -> ReceiverStatus:
        return dataclasses.replace(self._get(token).status)

    def session(self, token: str) -> ReceiverSession | None:
        """The live session, if connected."""
        live = self._get(token).live
        return live[0] if live is not None else None

    def capabilities(self) -> dict[str, Any]:
        """trv:Capabilities attributes."""
        return {
            "RTP_Multicast": False,
            "RTP_TCP": True,
            "RTP_RTSP_TCP": True,
            "SupportedReceivers": self.max_receivers,
            "MaximumRTSPURILength": self.max_uri_length,
        }

    def _get(self, token: str) -> _Receiver:
        with self._lock:
            receiver = self._receivers.get(token)
        if receiver is None:
            raise UnknownReceiver(f"no receiver {token!r}")
        return receiver

    # --- configuration (event loop) -------------------------------------------------------

    async def create(
        self,
        config: ReceiverConfig,
        *,
        auto_created: bool = False,
        token: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ReceiverInfo:
        """CreateReceiver (or an auto-created receiver for a recording job, whose fields may
        be empty until ConfigureReceiver)."""
        config = validate_config(
            config, max_uri_length=self.max_uri_length, allow_empty_uri=auto_created
        )
        opts = check_options(options or {})
        with self._lock:
            if len(self._receivers) >= self.max_receivers:
                raise MaxReceiversReached(f"at most {self.max_receivers} receivers")
            token = token or new_token()
            if token in self._receivers:
                raise BadReceiverConfiguration(f"receiver {token!r} already exists")
            receiver = _Receiver(token, config, auto_created, opts)
            self._receivers[token] = receiver  # reserve the slot before the database write
        try:
            await asyncio.to_thread(self._insert, receiver)
        except BaseException:
            with self._lock:
                self._receivers.pop(token, None)
            raise
        self._spawn(receiver)
        log.info("receiver %s created (%s)", token, config.mode)
        self._notify()
        return receiver.info()

    async def configure(
        self, token: str, config: ReceiverConfig, *, options: Mapping[str, Any] | None = None
    ) -> ReceiverInfo:
        """ConfigureReceiver: takes effect at once (a live session is restarted)."""
        receiver = self._get(token)
        config = validate_config(config, max_uri_length=self.max_uri_length)
        opts = receiver.options if options is None else check_options(options)
        await asyncio.to_thread(self._update, token, config, opts)
        receiver.config, receiver.options = config, opts
        receiver.version += 1
        receiver.changed.set()
        self._notify()
        return receiver.info()

    async def set_mode(self, token: str, mode: str) -> ReceiverInfo:
        """SetReceiverMode."""
        receiver = self._get(token)
        if mode not in MODES:
            raise BadReceiverConfiguration(f"Mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == receiver.config.mode:
            return receiver.info()
        config = dataclasses.replace(receiver.config, mode=mode)
        if not config.media_uri and mode != NEVER_CONNECT and not receiver.auto_created:
            raise BadReceiverConfiguration("the receiver has no MediaUri")
        await asyncio.to_thread(self._update, token, config, receiver.options)
        receiver.config = config
        receiver.version += 1
        receiver.changed.set()
        self._notify()
        return receiver.info()

    async def delete(self, token: str) -> None:
        """DeleteReceiver: refused while a consumer is attached or holds it."""
        receiver = self._get(token)
        if receiver.factories or receiver.demand:
            raise ReceiverInUse(f"receiver {token!r} is in use")
        await asyncio.to_thread(self._delete_row, token)
        receiver.deleted = True
        with self._lock:
            self._receivers.pop(token, None)
        receiver.changed.set()
        if receiver.task is not None:
            await self._finish([receiver.task], self._timeouts.teardown + 5.0)
        log.info("receiver %s deleted", token)
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # a broken listener must not fail the operation
                log.exception("receiver listener failed")

    # --- consumers (event loop) -----------------------------------------------------------

    async def attach(self, token: str, consumer: Hashable, factory: ConsumerFactory) -> None:
        """Register ``consumer``'s sink factory (replacing an earlier one). It is called for
        every session from now on, and at once if the receiver is connected. Attaching does
        not create demand: see :meth:`acquire`."""
        receiver = self._get(token)
        if consumer in receiver.factories:
            await self.detach(token, consumer, release=False)
        receiver.factories[consumer] = factory
        live = receiver.live
        if live is not None:
            await self._run_factory(receiver, consumer, factory, *live)

    async def detach(self, token: str, consumer: Hashable, *, release: bool = True) -> None:
        """Stop feeding ``consumer``: its sinks are closed (runs end) before this returns."""
        receiver = self._get(token)
        receiver.factories.pop(consumer, None)
        if release:
            self.release(token, consumer)
        live = receiver.live
        if live is not None:
            sink = live[1]
            if sink.remove(consumer):
                await sink.wait_closed()

    def acquire(self, token: str, consumer: Hashable) -> None:
        """``consumer`` needs the receiver connected (AutoConnect connects while any does)."""
        receiver = self._get(token)
        if consumer not in receiver.demand:
            receiver.demand.add(consumer)
            receiver.changed.set()

    def release(self, token: str, consumer: Hashable) -> None:
        receiver = self._get(token)
        if consumer in receiver.demand:
            receiver.demand.discard(consumer)
            receiver.changed.set()

    # --- supervision ----------------------------------------------------------------------

    def _wanted(self, receiver: _Receiver) -> bool:
        config = receiver.config
        if not config.media_uri or receiver.deleted or self._stopping:
            return False
        if config.mode == ALWAYS_CONNECT:
            return True
        return config.mode == AUTO_CONNECT and bool(receiver.demand)

    async def _supervise(self, receiver: _Receiver) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(self._backoff)
        auth_backoff = Backoff(self._auth_backoff)
        while not (receiver.deleted or self._stopping):
            receiver.changed.clear()
            if not self._wanted(receiver):
                await receiver.changed.wait()
                continue
            version = receiver.version
            error = await self._session(receiver)
            if error is None:
                continue  # ended on purpose: demand or configuration changed
            uptime = 0.0
            since = receiver.status.connected_since_us
            if since is not None:
                uptime = (time.time_ns() // 1000 - since) / 1e6
            if isinstance(error, RtspAuthFailed):
                delay = auth_backoff.failed(uptime)
            else:
                delay = backoff.failed(uptime)
                auth_backoff.reset()
            receiver.status.retry_in = delay
            deadline = loop.time() + delay
            while receiver.version == version and self._wanted(receiver):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                receiver.changed.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await receiver.changed.wait()
                except TimeoutError:
                    break
            if receiver.version != version:  # reconfigured: try the new settings at once
                backoff.reset()
                auth_backoff.reset()

    async def _session(self, receiver: _Receiver) -> BaseException | None:
        """One connection: returns the error that ended it, None if ended on purpose."""
        config = receiver.config
        status = receiver.status
        status.attempts += 1
        status.connected_since_us = None
        receiver.generation += 1
        error: BaseException | None = None
        sink: SessionSink | None = None
        client: RtspClient | None = None
        self._set_state(receiver, CONNECTING)
        try:
            client = self._client_factory(
                config.media_uri,
                transport=PROTOCOLS[config.protocol],
                timeouts=self._timeouts,
                quirks=quirks_from_options(receiver.options),
            )
            await client.connect()
            tracks = await client.setup()
            session = ReceiverSession(
                receiver.token,
                client.uri,
                tuple(t.stream for t in tracks),
                receiver.generation,
                client.request_key_frame,
            )
            sink = SessionSink(len(tracks))
            receiver.live = (session, sink)
            await self._start_consumers(receiver, session, sink)
            await client.play(sink)
            status.sessions += 1
            status.connected_since_us = time.time_ns() // 1000
            self._set_state(receiver, CONNECTED)
            error = await self._hold(receiver, client, config)
        except Exception as exc:
            error = exc
        finally:
            # The synchronous part first, so that even a cancelled task leaves the recorders'
            # runs ended and the state right; then TEARDOWN and the store's acknowledgements.
            receiver.live = None
            if sink is not None:
                sink.on_close(error)
            self._ended(receiver, error)
            try:
                if client is not None:
                    await client.close()
            except Exception as exc:  # never let cleanup hide the real outcome
                log.debug("%s: close failed: %s", receiver.token, exc)
            finally:
                if sink is not None:
                    await sink.wait_closed()
        return error

    async def _hold(
        self, receiver: _Receiver, client: RtspClient, config: ReceiverConfig
    ) -> BaseException | None:
        """Keep the session until it fails (returns its error) or is no longer wanted."""
        ended = asyncio.ensure_future(client.wait())
        try:
            while True:
                receiver.changed.clear()
                if receiver.config is not config or not self._wanted(receiver):
                    return None
                changed = asyncio.ensure_future(receiver.changed.wait())
                await asyncio.wait((ended, changed), return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if ended.done():
                    exc = ended.exception()
                    return exc if exc is not None else RtspClientError("session closed")
        finally:
            if not ended.done():
                ended.cancel()

    def _ended(self, receiver: _Receiver, error: BaseException | None) -> None:
        status = receiver.status
        uri = public_uri(receiver.config.media_uri)
        if error is not None:
            status.failures += 1
            status.last_error = str(error) or type(error).__name__
            status.last_failure_us = time.time_ns() // 1000
            if isinstance(error, RtspAuthFailed):
                status.auth_failures += 1
            log.warning("receiver %s: %s", receiver.token, status.last_error)
            self._bus.publish(
                Event(
                    TOPIC_CONNECTION_FAILED,
                    (("ReceiverToken", receiver.token),),
                    (("MediaUri", uri),),
                )
            )
        self._set_state(receiver, NOT_CONNECTED)

    def _set_state(self, receiver: _Receiver, state: str) -> None:
        if receiver.state == state:
            return
        receiver.state = state
        self._bus.publish(
            Event(
                TOPIC_CHANGE_STATE,
                (("ReceiverToken", receiver.token),),
                (("NewState", state), ("MediaUri", public_uri(receiver.config.media_uri))),
            )
        )

    # --- consumer factories ---------------------------------------------------------------

    async def _start_consumers(
        self, receiver: _Receiver, session: ReceiverSession, sink: SessionSink
    ) -> None:
        """Ask every factory for its sinks; PLAY waits at most ``factory_timeout`` for them
        (the first packets usually hold the key frame), slower ones attach when ready."""
        tasks = [
            asyncio.ensure_future(self._run_factory(receiver, consumer, factory, session, sink))
            for consumer, factory in list(receiver.factories.items())
        ]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._factory_timeout)
        for task in pending:  # never cancelled: a factory may be opening store writers
            receiver.pending.add(task)
            task.add_done_callback(receiver.pending.discard)

    async def _run_factory(
        self,
        receiver: _Receiver,
        consumer: Hashable,
        factory: ConsumerFactory,
        session: ReceiverSession,
        sink: SessionSink,
    ) -> None:
        try:
            result = factory(session)
            if inspect.isawaitable(result):
                result = await result
            items = list(result.items() if isinstance(result, Mapping) else result)
        except Exception:
            log.exception("receiver %s: consumer %r failed to start", receiver.token, consumer)
            return
        current = receiver.live is not None and receiver.live[1] is sink
        for position, media_sink in items:
            if not 0 <= position < len(session.streams):
                log.error("consumer %r: no media %d in the session", consumer, position)
                media_sink.on_close(None)
            elif current and receiver.factories.get(consumer) is factory:
                sink.add(consumer, position, media_sink)
            else:  # the session ended, or the consumer left, while its sinks were made
                media_sink.on_close(None)
                waiter = getattr(media_sink, "wait_closed", None)
                if waiter is not None:
                    await waiter()

    # --- database (threads) ---------------------------------------------------------------

    def _load(self) -> list[tuple[str, ReceiverConfig, bool, dict[str, Any]]]:
        """The stored receivers; rows from before sealing get their password sealed."""
        with self._sessions.begin() as s:
            rows = s.scalars(select(ReceiverRow).order_by(ReceiverRow.id)).all()
            loaded = []
            for r in rows:
                uri = self._secrets.open(r.token, r.media_uri, r.media_password_enc)
                if self._secrets.rewrap(r.media_uri, r.media_password_enc):
                    r.media_uri, r.media_password_enc = self._secrets.seal(r.token, uri)
                    log.info("receiver %s: camera password sealed", r.token)
                config = ReceiverConfig(r.mode, uri, r.stream_type, r.transport)
                loaded.append((r.token, config, r.auto_created, dict(r.options or {})))
            return loaded

    def _insert(self, receiver: _Receiver) -> None:
        c = receiver.config
        uri, sealed = self._secrets.seal(receiver.token, c.media_uri)
        with self._sessions.begin() as s:
            s.add(
                ReceiverRow(
                    token=receiver.token,
                    mode=c.mode,
                    media_uri=uri,
                    media_password_enc=sealed,
                    stream_type=c.stream,
                    transport=c.protocol,
                    auto_created=receiver.auto_created,
                    options=receiver.options,
                    created_us=time.time_ns() // 1000,
                )
            )

    def _update(self, token: str, config: ReceiverConfig, options: dict[str, Any]) -> None:
        with self._sessions.begin() as s:
            row = s.scalars(select(ReceiverRow).where(ReceiverRow.token == token)).first()
            if row is None:
                raise UnknownReceiver(f"no receiver {token!r}")
            row.mode = config.mode
            row.media_uri, row.media_password_enc = self._secrets.seal(token, config.media_uri)
            row.stream_type = config.stream
            row.transport = config.protocol
            row.options = options

    def _delete_row(self, token: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(ReceiverRow).where(ReceiverRow.token == token))
