"""Fan one RTSP session's packets out to per-track consumers (recorders, analytics...).

The RTSP client hands every packet of a session to ONE sink with a track index. A receiver may
feed several consumers, each wanting some tracks, and consumers come and go while the session
runs (a recording job is activated on a live AlwaysConnect receiver). :class:`SessionSink`
keeps one callable per track, rebuilt only when consumers change, so the per-packet cost is an
index and a call: the sole consumer's bound method directly, a small loop for several, and a
no-op for tracks nobody wants. A consumer that raises is detached and closed with the error;
the others keep receiving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol

from nvr.protocol.rtcp import SenderReport
from nvr.protocol.rtp import RtpPacket

__all__ = ["MediaSink", "SessionSink"]

log = logging.getLogger("nvr.ingest.sinks")

RtpRoute = Callable[[RtpPacket, int, int], None]
SrRoute = Callable[[SenderReport, int, int], None]


class MediaSink(Protocol):
    """A consumer of ONE track of a session (e.g. :class:`nvr.ingest.recorder.TrackRecorder`).

    Called on the event loop, so nothing here may block. ``on_close`` is called once when the
    session ends or the consumer is detached; a sink may also have ``async wait_closed()``.
    """

    def on_rtp(self, packet: RtpPacket, wall_us: int, mono_ns: int) -> None: ...

    def on_sender_report(self, report: SenderReport, wall_us: int, mono_ns: int) -> None: ...

    def on_close(self, error: BaseException | None) -> None: ...


def _drop_rtp(packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
    """Route of a track nobody consumes."""


def _drop_sr(report: SenderReport, wall_us: int, mono_ns: int) -> None:
    """Route of a track nobody consumes."""


class SessionSink:
    """The :class:`~nvr.ingest.rtsp_client.RtpSink` of one session (``tracks`` set-up tracks)."""

    def __init__(self, tracks: int) -> None:
        self._sinks: list[list[tuple[Hashable, MediaSink]]] = [[] for _ in range(tracks)]
        self._rtp: list[RtpRoute] = [_drop_rtp] * tracks
        self._sr: list[SrRoute] = [_drop_sr] * tracks
        self._closed = False
        self._error: BaseException | None = None
        self._closing: list[MediaSink] = []

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, owner: Hashable, track: int, sink: MediaSink) -> None:
        """Deliver ``track`` to ``sink`` too; a sink added after the session ended is closed."""
        if self._closed:
            self._close_sinks([sink], self._error)
            return
        self._sinks[track].append((owner, sink))
        self._route(track)

    def owners(self) -> set[Hashable]:
        return {owner for entries in self._sinks for owner, _ in entries}

    def remove(self, owner: Hashable, error: BaseException | None = None) -> list[MediaSink]:
        """Detach every sink of ``owner`` and close them; returns them (see :meth:`wait`)."""
        removed: list[MediaSink] = []
        for track, entries in enumerate(self._sinks):
            keep = [(o, s) for o, s in entries if o != owner]
            if len(keep) != len(entries):
                removed += [s for o, s in entries if o == owner]
                self._sinks[track] = keep
                self._route(track)
        self._close_sinks(removed, error)
        return removed

    def _route(self, track: int) -> None:
        entries = self._sinks[track]
        if not entries:
            self._rtp[track], self._sr[track] = _drop_rtp, _drop_sr
        elif len(entries) == 1:
            sink = entries[0][1]
            self._rtp[track], self._sr[track] = sink.on_rtp, sink.on_sender_report
        else:
            sinks = [s for _, s in entries]
            self._rtp[track] = self._fan_out(track, [s.on_rtp for s in sinks], sinks)
            self._sr[track] = self._fan_out(track, [s.on_sender_report for s in sinks], sinks)

    def _fan_out(self, track: int, calls: list[Callable[..., None]], sinks: list[MediaSink]) -> Any:
        def deliver(item: Any, wall_us: int, mono_ns: int) -> None:
            for call, sink in zip(calls, sinks, strict=True):
                try:
                    call(item, wall_us, mono_ns)
                except Exception as exc:
                    self._failed(track, sink, exc)

        return deliver

    # --- the client's RtpSink interface -------------------------------------------------

    def on_rtp(self, track: int, packet: RtpPacket, wall_us: int, mono_ns: int) -> None:
        try:
            self._rtp[track](packet, wall_us, mono_ns)
        except Exception as exc:  # only a sole consumer gets here (fan-out catches its own)
            self._failed(track, None, exc)

    def on_sender_report(
        self, track: int, report: SenderReport, wall_us: int, mono_ns: int
    ) -> None:
        try:
            self._sr[track](report, wall_us, mono_ns)
        except Exception as exc:
            self._failed(track, None, exc)

    def on_close(self, error: BaseException | None) -> None:
        """The session ended: close every sink (once)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        sinks = [s for entries in self._sinks for _, s in entries]
        self._sinks = [[] for _ in self._sinks]
        self._rtp = [_drop_rtp] * len(self._rtp)
        self._sr = [_drop_sr] * len(self._sr)
        self._close_sinks(sinks, error)

    def _failed(self, track: int, sink: MediaSink | None, exc: Exception) -> None:
        entries = self._sinks[track]
        if sink is None and entries:
            sink = entries[0][1]
        log.error("track %d: consumer %r failed and is detached: %s", track, sink, exc)
        for n, entries in enumerate(self._sinks):
            keep = [(o, s) for o, s in entries if s is not sink]
            if len(keep) != len(entries):
                self._sinks[n] = keep
                self._route(n)
        if sink is not None:
            self._close_sinks([sink], exc)

    def _close_sinks(self, sinks: Iterable[MediaSink], error: BaseException | None) -> None:
        for sink in sinks:
            self._closing.append(sink)
            try:
                sink.on_close(error)
            except Exception:
                log.exception("closing consumer %r failed", sink)

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Until every closed sink that can say so has finished closing (store runs ended)."""
        waits = [w() for s in self._closing if (w := getattr(s, "wait_closed", None)) is not None]
        self._closing = []
        if not waits:
            return
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waits], timeout=timeout
        )
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("consumer did not close cleanly: %s", task.exception())
