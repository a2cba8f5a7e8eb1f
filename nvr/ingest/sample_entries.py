"""From RTP access units to what the store keeps: frame bytes plus a shared SampleEntrySpec.

The store compares sample entries by identity first, so each shaper keeps ONE entry instance
and replaces it only when the codec parameters really change (new SPS/PPS, a new JPEG size).
H.264/H.265 key frames must decode on their own (replay and export start at any key frame, and
cameras are not required to repeat SPS/PPS), so a key frame that arrives without its parameter
sets gets the ones in force inserted; parameter sets repeated between the slices of one picture
(GStreamer's rtph264pay does that) are moved before the first slice, once, since decoders take
them as the start of a new picture. Access units holding only parameter sets, SEI or an AUD
(some cameras send SPS/PPS with their own timestamp) are not frames and are not stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from nvr.protocol.codecs.annexb import nals_to_length_prefixed
from nvr.protocol.codecs.h264 import parse_sps as parse_h264_sps
from nvr.protocol.codecs.h265 import parse_sps as parse_h265_sps
from nvr.protocol.codecs.jpeg import jpeg_dimensions
from nvr.protocol.payload import AccessUnit, Depacketizer, PayloadError
from nvr.protocol.payload.aac import parse_config_hex
from nvr.protocol.payload.h26x import H26xDepacketizer, NalSyntax
from nvr.protocol.payload.nal import ParameterSets
from nvr.protocol.sdp import MediaStream
from nvr.store.types import SampleEntrySpec

__all__ = [
    "CODEC_KINDS",
    "FixedShaper",
    "H26xShaper",
    "JpegShaper",
    "Shaper",
    "codec_kind",
    "incompatibility",
    "make_shaper",
    "store_codec",
]

_CODECS: Mapping[str, str] = {
    "H264": "H264",
    "H265": "H265",
    "HEVC": "H265",
    "JPEG": "JPEG",
    "MPEG4-GENERIC": "AAC",
    "PCMU": "PCMU",
    "PCMA": "PCMA",
    "VND.ONVIF.METADATA": "ONVIF-METADATA",
    "VND.ONVIF.METADATA+GZIP": "ONVIF-METADATA",
}
_STATIC_TYPES: Mapping[int, str] = {0: "PCMU", 8: "PCMA", 26: "JPEG"}

CODEC_KINDS: Mapping[str, str] = {
    "H264": "Video",
    "H265": "Video",
    "JPEG": "Video",
    "AAC": "Audio",
    "PCMU": "Audio",
    "PCMA": "Audio",
    "ONVIF-METADATA": "Metadata",
}
"""Store codec -> the tt:TrackType that can hold it."""


def store_codec(stream: MediaStream) -> str | None:
    """The store's codec name for an SDP media (None: we cannot record it)."""
    name = stream.encoding_name
    if name is None:
        return _STATIC_TYPES.get(stream.payload_type)
    return _CODECS.get(name.strip().upper())


def codec_kind(codec: str) -> str | None:
    return CODEC_KINDS.get(codec)


def incompatibility(
    codec: str | None, track_kind: str | None = None, track_codec: str | None = None
) -> str | None:
    """Why a stream of ``codec`` cannot go into a track of ``track_kind`` that already holds
    ``track_codec`` data (ONVIF "Incompatible Stream"), or None if it can. Data of another
    codec would make the track undecodable across the change, so any codec change counts."""
    if codec is None:
        return "unsupported encoding"
    kind = CODEC_KINDS[codec]
    if track_kind is not None and track_kind not in (kind, "Extended"):
        return f"{codec} is {kind.lower()}, the track is {track_kind}"
    if track_codec is not None and track_codec != codec:
        return f"the track holds {track_codec} data, the stream is {codec}"
    return None


class Shaper:
    """Turns one depacketized access unit into (storage bytes, sample entry), or None when the
    unit is not a frame to store. ``keyed``: frames depend on earlier ones (wait for a key
    frame after loss)."""

    codec: str
    keyed = False
    entry: SampleEntrySpec | None = None

    def shape(self, unit: AccessUnit) -> tuple[bytes, SampleEntrySpec] | None:
        raise NotImplementedError


class FixedShaper(Shaper):
    """Codecs whose parameters come from the SDP alone (AAC, G.711, metadata)."""

    entry: SampleEntrySpec

    def __init__(self, entry: SampleEntrySpec) -> None:
        self.codec = entry.codec
        self.entry = entry

    def shape(self, unit: AccessUnit) -> tuple[bytes, SampleEntrySpec] | None:
        return unit.data, self.entry


class JpegShaper(Shaper):
    """JPEG: every frame is a key frame; the picture size lives in each frame's header."""

    codec = "JPEG"

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self._size: tuple[int, int] | None = None
        self.malformed = 0

    def shape(self, unit: AccessUnit) -> tuple[bytes, SampleEntrySpec] | None:
        data = unit.data
        try:
            size = jpeg_dimensions(data)
        except PayloadError:
            self.malformed += 1
            return None
        entry = self.entry
        if entry is None or size != self._size:
            self._size = size
            entry = self.entry = SampleEntrySpec(
                "JPEG", self._clock_rate, width=size[0], height=size[1]
            )
        return data, entry


class H26xShaper(Shaper):
    """H.264 / H.265: parameter sets in the sample entry and in-band in every key frame."""

    keyed = True

    def __init__(self, codec: str, depacketizer: H26xDepacketizer) -> None:
        self.codec = codec
        self._depacketizer = depacketizer
        syntax: NalSyntax = depacketizer.syntax
        self._syntax = syntax
        self._max_vcl = syntax.max_vcl_type
        self._kinds = syntax.param_kinds
        self._aud = 35 if codec == "H265" else 9
        self._required = frozenset(syntax.param_kinds.values())
        self._sets: ParameterSets | None = None
        self.inserted = 0  # key frames that got the parameter sets in force inserted
        self.skipped = 0  # units without a picture (parameter sets, SEI, AUD only)
        self._rebuild()

    def _rebuild(self) -> None:
        sets = self._depacketizer.parameter_sets
        if sets is self._sets and self.entry is not None:
            return
        self._sets = sets
        if not sets.sps:
            self.entry = None
            return
        width = height = None
        parse = parse_h265_sps if self.codec == "H265" else parse_h264_sps
        try:
            info = parse(sets.sps[0])
            width, height = info.width, info.height
        except PayloadError:
            pass
        self.entry = SampleEntrySpec(
            self.codec,
            self._depacketizer.clock_rate,
            parameters=nals_to_length_prefixed(sets.nals()),
            width=width,
            height=height,
        )

    def shape(self, unit: AccessUnit) -> tuple[bytes, SampleEntrySpec] | None:
        if unit.parameters_changed or self.entry is None:
            self._rebuild()
        data = unit.data
        nal_type = self._syntax.nal_type
        if not unit.key and len(data) > 4 and nal_type(data[4]) <= self._max_vcl:
            entry = self.entry  # the common case: a P frame starting with its slice
            return None if entry is None else (data, entry)
        nals = self._split(data)
        if not any(t <= self._max_vcl for t, _ in nals):
            self.skipped += 1
            return None
        entry = self.entry
        if entry is None:
            return None
        kinds = {self._kinds[t] for t, _ in nals if t in self._kinds}
        missing = unit.key and not self._required <= kinds
        if missing or self._late_parameter_sets(nals):
            data = self._normalise(nals, kinds if unit.key else None)
            self.inserted += missing
        return data, entry

    def _split(self, data: bytes) -> list[tuple[int, bytes]]:
        """(type, NAL unit with its length prefix) of every NAL unit of a unit."""
        nal_type = self._syntax.nal_type
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(data)
        while pos + 4 < end:
            stop = pos + 4 + int.from_bytes(data[pos : pos + 4], "big")
            out.append((nal_type(data[pos + 4]), data[pos:stop]))
            pos = stop
        return out

    def _late_parameter_sets(self, nals: list[tuple[int, bytes]]) -> bool:
        """Parameter sets after the first slice (rtph264pay config-interval=-1 repeats them
        before every IDR slice): decoders take them as the start of a new picture."""
        seen_vcl = False
        for t, _ in nals:
            if t <= self._max_vcl:
                seen_vcl = True
            elif seen_vcl and t in self._kinds:
                return True
        return False

    def _normalise(self, nals: list[tuple[int, bytes]], key_kinds: set[str] | None) -> bytes:
        """AUD, then each parameter set once (for a key frame, whose parameter-set kinds are
        ``key_kinds``, the ones in force of the kinds it lacks are added), then everything
        else in its order."""
        head = [nal for t, nal in nals[:1] if t == self._aud]
        params: list[bytes] = []
        for t, nal in nals:
            if t in self._kinds and nal not in params:
                params.append(nal)
        if key_kinds is not None:
            assert self._sets is not None
            nal_type = self._syntax.nal_type
            params += [
                len(nal).to_bytes(4, "big") + nal
                for nal in self._sets.nals()
                if self._kinds[nal_type(nal[0])] not in key_kinds
            ]
        rest = [nal for t, nal in nals[len(head) :] if t not in self._kinds]
        return b"".join(head + params + rest)


def make_shaper(codec: str, stream: MediaStream, depacketizer: Depacketizer) -> Shaper:
    """The shaper for a store codec (see :func:`store_codec`)."""
    rate = depacketizer.clock_rate
    if codec in ("H264", "H265"):
        assert isinstance(depacketizer, H26xDepacketizer)
        return H26xShaper(codec, depacketizer)
    if codec == "JPEG":
        return JpegShaper(rate)
    if codec == "AAC":
        config = stream.fmtp.get("config")
        if config:
            cfg = parse_config_hex(config)
            entry = SampleEntrySpec(
                "AAC",
                rate,
                parameters=cfg.raw,
                sample_rate=cfg.output_rate,
                channels=cfg.channels or stream.channels or 1,
            )
        else:
            entry = SampleEntrySpec("AAC", rate, sample_rate=rate, channels=stream.channels or 1)
        return FixedShaper(entry)
    if codec in ("PCMU", "PCMA"):
        return FixedShaper(
            SampleEntrySpec(codec, rate, sample_rate=rate, channels=stream.channels or 1)
        )
    if codec == "ONVIF-METADATA":
        return FixedShaper(SampleEntrySpec(codec, rate))
    raise ValueError(f"no shaper for codec {codec!r}")
