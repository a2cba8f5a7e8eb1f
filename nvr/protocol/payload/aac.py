"""AAC over RTP as RFC 3640 ``mpeg4-generic`` (AAC-hbr and the other AU-header layouts).

The AU-header field sizes come from fmtp (``sizelength``, ``indexlength``, ...), so one code
path serves AAC-hbr, AAC-lbr and generic mode. Output units are raw AAC frames (no ADTS), one
per AU, with timestamps spaced by the frame duration. Interleaving (a non-zero AU-Index) is
refused: cameras never use it, and storing units out of order would corrupt the track.
"""

from __future__ import annotations

from collections.abc import Mapping

from nvr.protocol.codecs.aac import AacConfig, parse_audio_specific_config
from nvr.protocol.codecs.bits import BitReader
from nvr.protocol.payload.base import (
    BaseDepacketizer,
    HeaderExtension,
    PayloadError,
    PayloadPacket,
    UnsupportedPayloadError,
    fmtp_int,
    fmtp_params,
)

__all__ = [
    "AacConfig",
    "AacDepacketizer",
    "AacPacketizer",
    "parse_audio_specific_config",
    "parse_config_hex",
]

_MODE_DEFAULTS = {"aac-hbr": (13, 3, 3), "aac-lbr": (6, 2, 2)}
_MAX_AU_SIZE_13 = (1 << 13) - 1


def parse_config_hex(value: str) -> AacConfig:
    """The fmtp ``config=`` value (hex AudioSpecificConfig)."""
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raise PayloadError(f"fmtp config={value!r} is not hex") from None
    return parse_audio_specific_config(raw)


class AacDepacketizer(BaseDepacketizer):
    """RFC 3640 packets -> raw AAC frames, including AUs fragmented over several packets."""

    def __init__(self, fmtp: Mapping[str, str] | None = None, clock_rate: int = 48000) -> None:
        super().__init__(clock_rate)
        p = fmtp_params(fmtp)
        size, index, delta = _MODE_DEFAULTS.get(p.get("mode", "").lower(), (0, 0, 0))
        self._size_len = fmtp_int(p, "sizelength", size)
        self._index_len = fmtp_int(p, "indexlength", index)
        self._delta_len = fmtp_int(p, "indexdeltalength", delta)
        self._cts_len = fmtp_int(p, "ctsdeltalength", 0)
        self._dts_len = fmtp_int(p, "dtsdeltalength", 0)
        self._rap = fmtp_int(p, "randomaccessindication", 0)
        self._state_len = fmtp_int(p, "streamstateindication", 0)
        self._aux_len = fmtp_int(p, "auxiliarydatasizelength", 0)
        self._constant_size = fmtp_int(p, "constantsize", 0)
        lengths = (self._size_len, self._index_len, self._delta_len, self._cts_len, self._dts_len,
                   self._state_len, self._aux_len)  # fmt: skip
        if not all(0 <= n <= 32 for n in lengths) or self._rap not in (0, 1):
            raise PayloadError("RFC 3640 field length out of range")
        self._has_headers = any(lengths[:6]) or bool(self._rap)
        self.config = parse_config_hex(p["config"]) if p.get("config") else None
        duration = self.config.frame_duration(clock_rate) if self.config else 1024
        self.frame_duration = fmtp_int(p, "constantduration", duration)
        self._frag: list[memoryview] | None = None  # fragments of one large AU
        self._frag_size = 0
        self._frag_have = 0

    def _packet(
        self, payload: bytes, marker: bool, ts: int, extension: HeaderExtension | None
    ) -> None:
        if self._frag is not None and ts != self._ts:
            self._malformed("fragmented AAC frame cut short")
        try:
            sizes, pos = self._headers(payload)
        except PayloadError as exc:
            self._malformed(str(exc))
            return
        mv = memoryview(payload)
        if self._frag is not None:
            self._continue(sizes, mv[pos:], marker)
            return
        if not sizes:
            return
        available = len(payload) - pos
        if len(sizes) == 1 and sizes[0] > available:
            if marker:
                self._malformed("AAC frame larger than its packet")
                return
            self._frag = [mv[pos:]]
            self._ts, self._frag_size, self._frag_have = ts, sizes[0], available
            return
        if sum(sizes) > available:
            self._malformed("AAC frame sizes exceed the packet")
            return
        step = self.frame_duration
        for n, size in enumerate(sizes):
            if size:
                self._emit(bytes(mv[pos : pos + size]), (ts + n * step) & 0xFFFFFFFF,
                           duration=step)  # fmt: skip
            pos += size

    def _continue(self, sizes: list[int], data: memoryview, marker: bool) -> None:
        if len(sizes) != 1 or sizes[0] != self._frag_size:
            self._malformed("AAC fragment does not continue the frame")
            return
        assert self._frag is not None
        self._frag.append(data)
        self._frag_have += len(data)
        if self._frag_have == self._frag_size:
            self._emit(b"".join(self._frag), self._ts, duration=self.frame_duration)
            self._frag = None
        elif self._frag_have > self._frag_size or marker:
            self._malformed("AAC fragments do not add up to the frame size")

    def _headers(self, payload: bytes) -> tuple[list[int], int]:
        """AU sizes and the offset of the access unit data section."""
        pos = 0
        sizes: list[int] = []
        if self._has_headers:
            if len(payload) < 2:
                raise PayloadError("truncated AU-headers-length")
            bits = (payload[0] << 8) | payload[1]
            pos = 2 + (bits + 7) // 8
            if pos > len(payload):
                raise PayloadError("truncated AU headers")
            r = BitReader(payload[2:pos])
            index_len = self._index_len
            while r.pos < bits:
                start = r.pos
                sizes.append(r.u(self._size_len))
                if r.u(index_len):
                    raise UnsupportedPayloadError("interleaved AAC (AU-Index != 0)")
                index_len = self._delta_len
                if self._cts_len and r.u(1):
                    r.skip(self._cts_len)
                if self._dts_len and r.u(1):
                    r.skip(self._dts_len)
                r.skip(self._rap + self._state_len)
                if r.pos > bits or r.pos == start:
                    raise PayloadError("AU headers do not fill their length")
        if self._aux_len:
            r = BitReader(payload, pos * 8)
            aux = r.u(self._aux_len)
            pos += (self._aux_len + aux + 7) // 8
            if pos > len(payload):
                raise PayloadError("truncated auxiliary section")
        if not self._size_len:
            rest = len(payload) - pos
            if self._constant_size:
                sizes = [self._constant_size] * (rest // self._constant_size)
            else:
                sizes = [rest] if rest else []
        return sizes, pos

    def _has_partial(self) -> bool:
        return self._frag is not None

    def _reset(self) -> None:
        self._frag = None


class AacPacketizer:
    """Raw AAC frames -> RFC 3640 AAC-hbr payloads, one frame per packet or fragmented."""

    encoding_name = "MPEG4-GENERIC"

    def __init__(self, config: bytes, mtu: int = 1400, clock_rate: int | None = None) -> None:
        self.config = parse_audio_specific_config(config)
        self.clock_rate = clock_rate or self.config.output_rate
        if mtu < 5:
            raise ValueError(f"MTU {mtu} too small")
        self.mtu = mtu

    def fmtp(self) -> dict[str, str]:
        return {
            "streamtype": "5",
            "profile-level-id": "1",
            "mode": "AAC-hbr",
            "sizelength": "13",
            "indexlength": "3",
            "indexdeltalength": "3",
            "config": self.config.raw.hex(),
        }

    def packetize(self, data: bytes) -> list[PayloadPacket]:
        if not data or len(data) > _MAX_AU_SIZE_13:
            raise PayloadError(f"AAC frame of {len(data)} bytes does not fit AAC-hbr")
        header = b"\x00\x10" + (len(data) << 3).to_bytes(2, "big")
        step = self.mtu - 4
        return [
            PayloadPacket(header + data[pos : pos + step], pos + step >= len(data))
            for pos in range(0, len(data), step)
        ]
