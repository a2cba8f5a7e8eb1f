"""What the Receiver service's handlers need of the daemon: its :class:`ReceiverManager`, run
on the daemon's event loop, its errors as ONVIF faults, and the wire <-> engine conversions.

Handlers run in worker threads; the manager's mutating methods are coroutines on the loop
that serves the HTTP requests (the endpoint records it), so they go through
``asyncio.run_coroutine_threadsafe``. Reads are thread-safe snapshots and run directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from nvr.ingest.receiver_config import (
    MIN_URI_LENGTH,
    BadReceiverConfiguration,
    MaxReceiversReached,
    ReceiverConfig,
    ReceiverInfo,
    ReceiverInUse,
    UnknownReceiver,
    public_uri,
)
from nvr.ingest.receivers import ReceiverManager
from nvr.onvif import receiver_types as rv
from nvr.onvif import replay_types as rt
from nvr.onvif.faults import OnvifFault

T = TypeVar("T")

CALL_TIMEOUT: Final = 30.0
"""Seconds a handler waits for the event loop (DeleteReceiver waits for the TEARDOWN)."""


@contextmanager
def receiver_faults() -> Iterator[None]:
    """The manager's errors as the faults of receiver.md §3."""
    try:
        yield
    except UnknownReceiver as exc:
        raise OnvifFault.sender("InvalidArgVal", "UnknownToken", str(exc)[:200]) from None
    except BadReceiverConfiguration as exc:
        raise OnvifFault.sender("InvalidArgVal", "BadConfiguration", str(exc)[:200]) from None
    except MaxReceiversReached as exc:
        raise OnvifFault.receiver("Action", "MaxReceivers", str(exc)) from None
    except ReceiverInUse as exc:
        raise OnvifFault.receiver("Action", "CannotDeleteReceiver", str(exc)[:200]) from None


@dataclass
class ReceiverBackend:
    """The daemon's receiver manager (it exists once the daemon has started) and its loop."""

    manager_of: Callable[[], ReceiverManager | None]
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def manager(self) -> ReceiverManager:
        manager = self.manager_of()
        if manager is None:
            raise OnvifFault.receiver("Action", "the receivers are not running yet")
        return manager

    def run(self, call: Callable[[ReceiverManager], Coroutine[Any, Any, T]]) -> T:
        """Run ``call(manager)`` on the event loop and wait for it (faults mapped)."""
        manager = self.manager()
        if self.loop is None or self.loop.is_closed():
            raise OnvifFault.receiver("Action", "the event loop is not running")
        future = asyncio.run_coroutine_threadsafe(call(manager), self.loop)
        with receiver_faults():
            try:
                return future.result(CALL_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise OnvifFault.receiver("Action", "the receiver did not answer in time") from None

    def read(self, call: Callable[[ReceiverManager], T]) -> T:
        """A thread-safe read of the manager (faults mapped)."""
        manager = self.manager()
        with receiver_faults():
            return call(manager)

    def attributes(self) -> dict[str, Any]:
        """The capabilities; before the receivers run, none can be created."""
        manager = self.manager_of()
        if manager is not None:
            return manager.capabilities()
        return {
            "RTP_Multicast": False,
            "RTP_TCP": True,
            "RTP_RTSP_TCP": True,
            "SupportedReceivers": 0,
            "MaximumRTSPURILength": MIN_URI_LENGTH,
        }

    def capabilities(self) -> rv.Capabilities:
        return rv.Capabilities(**self.attributes())


# ---- conversions ---------------------------------------------------------------------------


def engine_config(configuration: rv.ReceiverConfiguration) -> ReceiverConfig:
    """A tt:ReceiverConfiguration as the engine's value (validation is the engine's)."""
    setup: rt.StreamSetup = configuration.StreamSetup
    if setup.Transport.Tunnel is not None:
        raise OnvifFault.sender(
            "InvalidArgVal", "BadConfiguration", "a Transport Tunnel is not supported"
        )
    return ReceiverConfig(
        mode=configuration.Mode,
        media_uri=configuration.MediaUri or "",
        stream=setup.Stream,
        protocol=setup.Transport.Protocol,
    )


def wire_receiver(info: ReceiverInfo, *, with_credentials: bool) -> rv.Receiver:
    """A receiver as tt:Receiver; ``with_credentials=False`` drops the URI's userinfo."""
    config = info.config
    uri = config.media_uri if with_credentials else public_uri(config.media_uri)
    return rv.Receiver(
        Token=info.token,
        Configuration=rv.ReceiverConfiguration(
            Mode=config.mode,
            MediaUri=uri,
            StreamSetup=rt.StreamSetup(
                Stream=config.stream, Transport=rt.Transport(Protocol=config.protocol)
            ),
        ),
    )
