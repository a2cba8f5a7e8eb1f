"""G.711 PCMU/PCMA over RTP (RFC 3551): the payload is the samples, one byte each."""

from __future__ import annotations

from nvr.protocol.payload.base import BaseDepacketizer, HeaderExtension, PayloadPacket


class G711Depacketizer(BaseDepacketizer):
    """Each packet is one frame lasting as many clock ticks as it has bytes."""

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        if payload:
            self._emit(payload, ts, duration=len(payload))

    def _has_partial(self) -> bool:
        return False

    def _reset(self) -> None:
        pass


class G711Packetizer:
    """Stored G.711 frames -> payloads of at most ``mtu`` samples, timestamps advancing."""

    def __init__(self, encoding_name: str = "PCMU", mtu: int = 1400, clock_rate: int = 8000):
        self.encoding_name = encoding_name.upper()
        self.clock_rate = clock_rate
        if mtu < 1:
            raise ValueError(f"MTU {mtu} too small")
        self.mtu = mtu

    def fmtp(self) -> dict[str, str]:
        return {}

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        mtu = self.mtu
        return [
            PayloadPacket(data[pos : pos + mtu], False, None, pos)
            for pos in range(0, len(data), mtu)
        ]
