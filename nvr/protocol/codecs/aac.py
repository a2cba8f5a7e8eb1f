"""MPEG-4 audio: the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1), as far as a recorder needs."""

from __future__ import annotations

from dataclasses import dataclass

from nvr.protocol.codecs.bits import BitReader
from nvr.protocol.errors import CodecError

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
                8000, 7350)  # fmt: skip
# Object types whose decoder config starts with GASpecificConfig (frameLengthFlag first).
_GA_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
_LOW_DELAY_TYPES = frozenset({23, 39})  # 512/480-sample frames
_SBR_PS_TYPES = frozenset({5, 29})  # explicit hierarchical SBR / PS signalling
_ER_BSAC = 22


@dataclass(frozen=True, slots=True)
class AacConfig:
    """An AudioSpecificConfig.

    ``sample_rate`` is the core (AAC) rate and ``frame_length`` the samples per frame at that
    rate; ``extension_sample_rate`` is the SBR output rate when HE-AAC is signalled explicitly.
    ``output_rate`` is what a decoder outputs (and what an MP4 sample entry declares).
    ``channels`` is 0 when the channel layout lives in a program config element.
    """

    object_type: int
    sample_rate: int
    channels: int
    frame_length: int
    extension_sample_rate: int | None
    raw: bytes

    @property
    def output_rate(self) -> int:
        return self.extension_sample_rate or self.sample_rate

    def frame_duration(self, clock_rate: int) -> int:
        """Duration of one frame in units of ``clock_rate``."""
        return self.frame_length * clock_rate // self.sample_rate


def parse_audio_specific_config(data: bytes) -> AacConfig:
    """Decode the start of an AudioSpecificConfig; CodecError if it is malformed."""
    r = BitReader(data, what="AudioSpecificConfig")
    aot = _object_type(r)
    rate = _sample_rate(r)
    channels = r.u(4)
    ext_rate = None
    if aot in _SBR_PS_TYPES:
        ext_rate = _sample_rate(r)
        aot = _object_type(r)
        if aot == _ER_BSAC:
            r.skip(4)  # extensionChannelConfiguration
    frame_length = 1024
    if aot in _GA_TYPES or aot in _LOW_DELAY_TYPES:
        short = r.u(1)  # frameLengthFlag
        if aot in _LOW_DELAY_TYPES:
            frame_length = 480 if short else 512
        else:
            frame_length = 960 if short else 1024
    if rate <= 0 or ext_rate == 0:
        raise CodecError("AudioSpecificConfig: sampling rate 0")
    return AacConfig(aot, rate, channels, frame_length, ext_rate, bytes(data))


def _object_type(r: BitReader) -> int:
    aot = r.u(5)
    return 32 + r.u(6) if aot == 31 else aot


def _sample_rate(r: BitReader) -> int:
    index = r.u(4)
    if index == 15:
        return r.u(24)
    if index >= len(SAMPLE_RATES):
        raise CodecError(f"AudioSpecificConfig: reserved samplingFrequencyIndex {index}")
    return SAMPLE_RATES[index]
