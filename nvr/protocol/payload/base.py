"""The common shape of every RTP payload format: access units, packets, and loss bookkeeping.

Depacketizers take already-parsed RTP packets (payload, marker, timestamp, sequence number and,
for JPEG, the header extension as any object with ``profile`` and ``data``, such as
``nvr.protocol.rtp.RtpExtension``) so that this package never depends on the RTP header code.
They never raise on bad input: a camera sending garbage is just another kind of packet loss, so
the damaged access unit is dropped, counted in :class:`DepacketizerStats`, and the next unit that
is emitted carries ``after_loss=True``. That way a recorder can never store a corrupted frame
without knowing it, and one bad packet can never cost the frames around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from nvr.protocol.errors import PayloadError

BytesLike = bytes | bytearray | memoryview


class UnsupportedPayloadError(PayloadError):
    """A well-formed but unsupported payload variant (e.g. interleaved H.264 mode)."""


@dataclass(slots=True)
class AccessUnit:
    """One frame in storage form (see DESIGN.md §4), with what the store needs to index it.

    ``duration`` is in RTP clock units when the payload format defines it (audio); video leaves
    it ``None`` because it is only known from the next frame's timestamp.
    """

    data: bytes
    rtp_timestamp: int
    key: bool = True
    after_loss: bool = False
    parameters_changed: bool = False
    duration: int | None = None


class HeaderExtension(Protocol):
    """An RTP header extension: 16-bit profile value and whole 32-bit words of data."""

    @property
    def profile(self) -> int: ...

    @property
    def data(self) -> BytesLike: ...


class Extension(NamedTuple):
    """A header extension a packetizer asks for (the ONVIF JPEG extension)."""

    profile: int
    data: bytes


class PayloadPacket(NamedTuple):
    """One RTP payload to send.

    ``extension`` is the header extension the packet needs, if any; ``ts_offset`` is added to
    the access unit's RTP timestamp (only audio split over several packets needs it).
    """

    payload: bytes
    marker: bool
    extension: Extension | None = None
    ts_offset: int = 0


@dataclass(slots=True)
class DepacketizerStats:
    """Counters a receiver exports as metrics; ``last_error`` feeds a debug log line."""

    packets: int = 0
    units: int = 0
    lost_packets: int = 0
    duplicate_packets: int = 0
    malformed_packets: int = 0
    dropped_units: int = 0
    last_error: str | None = None


class Depacketizer(Protocol):
    """RTP packets in, complete access units out."""

    clock_rate: int
    stats: DepacketizerStats

    def push(
        self,
        payload: BytesLike,
        marker: bool,
        timestamp: int,
        seq: int,
        extension: HeaderExtension | None = None,
    ) -> list[AccessUnit]:
        """Feed one packet (in sequence order); return the units it completed."""
        ...

    def flush(self) -> list[AccessUnit]:
        """End of stream: return a pending unit if it is known to be complete."""
        ...


class Packetizer(Protocol):
    """Stored access units in, RTP payloads out."""

    encoding_name: str
    clock_rate: int
    mtu: int

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        """Split one access unit (storage form) into payloads of at most ``mtu`` bytes."""
        ...

    def fmtp(self) -> dict[str, str]:
        """The SDP ``a=fmtp`` parameters a receiver needs for these payloads."""
        ...


class BaseDepacketizer:
    """Sequence tracking and loss bookkeeping shared by all depacketizers.

    Subclasses implement :meth:`_packet` (one in-sequence packet), :meth:`_has_partial` and
    :meth:`_reset` (the unit being assembled), optionally :meth:`_lost` (resynchronise after a
    gap) and :meth:`_finish` (end of stream), and report through :meth:`_emit`, :meth:`_skip`
    and :meth:`_malformed`.
    """

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.stats = DepacketizerStats()
        self._last_seq: int | None = None
        self._loss = False  # the next emitted unit follows a loss
        self._out: list[AccessUnit] = []
        self._ts = 0  # timestamp of the unit being assembled
        self._dropped_ts: int | None = None  # timestamp of the last partial unit dropped
        self._skip_ts: int | None = None  # timestamp of a unit being skipped (start missing)

    def push(
        self,
        payload: BytesLike,
        marker: bool,
        timestamp: int,
        seq: int,
        extension: HeaderExtension | None = None,
    ) -> list[AccessUnit]:
        """Feed one packet; fragments are kept as views of ``payload`` until their unit is
        joined, so a view into a reused receive buffer is copied first."""
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        stats = self.stats
        stats.packets += 1
        last = self._last_seq
        if last is not None:
            delta = (seq - last) & 0xFFFF
            if delta != 1:
                if delta == 0:
                    stats.duplicate_packets += 1
                    return []
                if delta < 0x8000:
                    stats.lost_packets += delta - 1
                self._discontinuity()
        self._last_seq = seq
        self._packet(payload, marker, timestamp, extension)
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def flush(self) -> list[AccessUnit]:
        self._finish()
        out, self._out = self._out, []
        return out

    # -- for subclasses ------------------------------------------------------------------------

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        raise NotImplementedError

    def _has_partial(self) -> bool:
        """Whether a partial unit is being assembled (dropping it counts as a dropped unit)."""
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _lost(self) -> None:
        """A sequence gap happened; formats that must resynchronise override this."""

    def _finish(self) -> None:
        """End of stream: by default an unterminated unit is dropped."""
        self._drop()

    def _emit(
        self,
        data: bytes,
        ts: int,
        key: bool = True,
        parameters_changed: bool = False,
        duration: int | None = None,
    ) -> None:
        self._out.append(AccessUnit(data, ts, key, self._loss, parameters_changed, duration))
        self._loss = False
        self.stats.units += 1

    def _drop(self) -> None:
        """Forget the partial unit, if any, and flag the next unit as following a loss."""
        if self._has_partial():
            self.stats.dropped_units += 1
            self._loss = True
            self._dropped_ts = self._ts
        self._reset()

    def _skip(self, ts: int, marker: bool) -> None:
        """Discard the unit with timestamp ``ts`` up to its marker: its start is missing.

        Counted once, and not at all if it is the partial unit a gap already dropped; a stream
        that starts in the middle of a unit has lost nothing the receiver ever had.
        """
        if ts != self._skip_ts and ts != self._dropped_ts:
            self.stats.dropped_units += 1
            if self.stats.units:
                self._loss = True
        self._skip_ts = None if marker else ts

    def _malformed(self, reason: str) -> None:
        """A packet that cannot be used: count it and drop the unit it belonged to."""
        self.stats.malformed_packets += 1
        self.stats.last_error = reason
        self._discontinuity()

    def _discontinuity(self) -> None:
        """Data is missing here: drop the partial unit and resynchronise."""
        self._drop()
        self._loss = True
        self._lost()


def fmtp_params(fmtp: Mapping[str, str] | None) -> dict[str, str]:
    """fmtp parameter names are case-insensitive (RFC 3640 uses ``sizeLength``); fold them."""
    return {k.strip().lower(): v.strip() for k, v in (fmtp or {}).items()}


def fmtp_int(params: Mapping[str, str], name: str, default: int) -> int:
    """An integer fmtp parameter; a malformed value is a PayloadError, not a crash."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise PayloadError(f"fmtp {name}={value!r} is not an integer") from None
