"""The SDP of a recording (replay.md B.2) and the RTP payload format of each stored track.

One media section per track with data, in the recording's track order, named ``track<N>``
after the track's position in the recording (so a name stays valid while other tracks gain
data between DESCRIBE and SETUP), with ``a=x-onvif-track`` and the codec parameters of the
stored sample entry: the packetizer that will send the frames is primed with the entry's
parameter sets and asked for its ``fmtp``, so the SDP and the RTP stream cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nvr.playback.resource import Description, TrackInfo
from nvr.protocol.payload import Packetizer, PayloadError, make_packetizer
from nvr.protocol.rtsp_headers import ClockRange, format_range
from nvr.protocol.sdp import Attribute, Connection, Origin, SessionDescription, make_media
from nvr.store.types import SampleEntrySpec

__all__ = [
    "RtpFormat",
    "SdpTrack",
    "build_description",
    "control_name",
    "position_of_control",
    "rtp_format",
]

log = logging.getLogger(__name__)

# store codec -> (SDP media, RTP encoding name, static payload type or None)
_CODECS: dict[str, tuple[str, str, int | None]] = {
    "H264": ("video", "H264", None),
    "H265": ("video", "H265", None),
    "JPEG": ("video", "JPEG", 26),
    "AAC": ("audio", "MPEG4-GENERIC", None),
    "PCMU": ("audio", "PCMU", 0),
    "PCMA": ("audio", "PCMA", 8),
    "ONVIF-METADATA": ("application", "vnd.onvif.metadata", None),
}
_FIRST_DYNAMIC_PT = 96


@dataclass(frozen=True, slots=True)
class RtpFormat:
    """How a track goes over RTP: media kind, payload type, encoding, clock, channels."""

    media: str
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def packetizer(self, entry: SampleEntrySpec, mtu: int) -> Packetizer:
        """A packetizer primed with the entry's out-of-band parameters (PayloadError if the
        entry cannot be sent, e.g. AAC without its AudioSpecificConfig)."""
        fmtp = {"config": entry.parameters.hex()} if entry.codec == "AAC" else None
        packetizer = make_packetizer(self.encoding, self.clock_rate, fmtp, mtu)
        if entry.codec in ("H264", "H265") and entry.parameters:
            packetizer.packetize(entry.parameters)  # learns SPS/PPS (VPS) for its fmtp
        return packetizer


def control_name(position: int) -> str:
    """The ``a=control`` of the recording's ``position``-th track (1-based)."""
    return f"track{position}"


def position_of_control(url_or_control: str) -> int | None:
    """The track position named by a control or a track URL (None if it names none)."""
    name = url_or_control.rstrip("/").rpartition("/")[2]
    if name.startswith("track") and name[5:].isdigit():
        return int(name[5:])
    return None


def rtp_format(entry: SampleEntrySpec, position: int) -> RtpFormat | None:
    """The payload format for a stored sample entry (None: a codec replay cannot send).

    Dynamic payload types are 96 + position - 1, so they are stable per track."""
    known = _CODECS.get(entry.codec)
    if known is None:
        return None
    media, encoding, static_pt = known
    pt = static_pt if static_pt is not None else _FIRST_DYNAMIC_PT + position - 1
    if not 0 <= pt <= 127:
        return None
    channels = entry.channels if media == "audio" and entry.channels not in (None, 1) else None
    return RtpFormat(media, pt, encoding, entry.clock_rate, channels)


@dataclass(frozen=True, slots=True)
class SdpTrack:
    """A recording track with data, as DESCRIBE lists it."""

    position: int
    token: str
    entry: SampleEntrySpec
    start_us: int
    end_us: int
    live: bool


def build_description(
    tracks: Sequence[SdpTrack], *, session_id: int, mtu: int = 1400
) -> Description:
    """The SDP for the tracks (those whose codec cannot be sent are left out, logged).

    ``a=range:clock=<first>-<last>`` spans the data of all listed tracks; it is left open
    (``<first>-``) while a track is still recording, so a client that plays the advertised
    range follows the live edge.
    """
    media = []
    infos = []
    for track in tracks:
        fmt = rtp_format(track.entry, track.position)
        if fmt is None:
            log.info("track %s: codec %s cannot be replayed", track.token, track.entry.codec)
            continue
        try:
            fmtp = fmt.packetizer(track.entry, mtu).fmtp() or None
        except (PayloadError, ValueError) as exc:
            log.warning("track %s: cannot describe %s: %s", track.token, track.entry.codec, exc)
            continue
        control = control_name(track.position)
        media.append(
            make_media(
                fmt.media,
                fmt.payload_type,
                fmt.encoding,
                fmt.clock_rate,
                channels=fmt.channels,
                fmtp=fmtp,
                control=control,
                onvif_track=track.token,
            )
        )
        infos.append((track, TrackInfo(control, fmt.media)))
    attributes = [Attribute("control", "*")]
    if infos:
        first = min(t.start_us for t, _ in infos)
        last = None if any(t.live for t, _ in infos) else max(t.end_us for t, _ in infos)
        clock = ClockRange(first * 1000, None if last is None else last * 1000)
        attributes.append(Attribute("range", format_range(clock)))
    sd = SessionDescription(
        origin=Origin(session_id=str(session_id), session_version="1"),
        name="nvr replay",
        connection=Connection(),
        attributes=attributes,
        media=media,
    )
    return Description(sd.to_bytes(), tuple(info for _, info in infos))
