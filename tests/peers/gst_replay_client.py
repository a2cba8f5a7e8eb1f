"""An ONVIF replay client: GStreamer's ``rtspsrc`` in ``onvif-mode``, reporting what it receives.

Run with Debian's ``/usr/bin/python3`` (PyGObject with GStreamer imports only there, DESIGN.md
§11). Prints one JSON object per line on stdout:

- ``{"event": "rtp", "media": …, "seq": …, "ntp_us": …, "flags": "CEDT"-subset, "cseq": …}``
  for every RTP packet carrying the ONVIF replay extension (0xABAC), read at the input of
  ``rtponvifparse`` (so after rtspsrc's jitter buffer: in the order the pipeline got them);
- ``{"event": "frame", "media": "video", "pts_us": …, "key": …}`` for every decoded video
  frame (``rtponvifparse`` turns the extension's NTP time into the buffer PTS);
- ``{"event": "eos", "media": …}`` when a stream ends (``rtponvifparse`` turns the T bit into
  end of stream), ``{"event": "seek", …}``, ``{"event": "error", "message": …}`` and a final
  ``{"event": "done", "frames": …}``.

Times are Unix microseconds. Options map onto rtspsrc's ONVIF features: ``--start``/``--end``
(Unix µs) and ``--rate`` become a seek before PLAY (rtspsrc sends ``Range: clock=…``, ``Scale`` /
``Speed``), ``--intra [MS]`` a key-unit trick-mode seek (``Frames: intra[/MS]``),
``--no-rate-control`` sets ``onvif-rate-control=false`` (``Rate-Control: no``).
``--seek-after N --seek-start T`` seeks again once N frames were decoded (a seek while playing:
rtspsrc sends PAUSE, then PLAY with the new Range). The client stops when the video stream
ends (audio and metadata may end first), after ``--frames`` decoded frames, or at ``--timeout``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import struct
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

NTP_UNIX_OFFSET_S = 2_208_988_800
PRIME_EPOCH_NS = NTP_UNIX_OFFSET_S * 1_000_000_000  # rtspsrc onvif-mode seeks count from 1900
FLAG_NAMES = ((0x80, "C"), (0x40, "E"), (0x20, "D"), (0x10, "T"))


def emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def replay_extension(data: bytes) -> dict[str, object] | None:
    """The 0xABAC extension of a raw RTP packet, or None."""
    if len(data) < 12 or not data[0] & 0x10:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if len(data) < offset + 4:
        return None
    profile, words = struct.unpack_from("!HH", data, offset)
    if profile != 0xABAC or words < 3 or len(data) < offset + 4 + 12:
        return None
    ntp, flags, cseq = struct.unpack_from("!QBB", data, offset + 4)
    seconds, fraction = ntp >> 32, ntp & 0xFFFFFFFF
    if seconds < 0x80000000:  # RFC 4330 era 1 (after 2036)
        seconds += 1 << 32
    unix_us = (seconds - NTP_UNIX_OFFSET_S) * 1_000_000 + ((fraction * 1_000_000 + (1 << 31)) >> 32)
    return {
        "seq": struct.unpack_from("!H", data, 2)[0],
        "ntp_us": unix_us,
        "flags": "".join(name for bit, name in FLAG_NAMES if flags & bit),
        "cseq": cseq,
        "marker": bool(data[1] & 0x80),
    }


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.frames = 0
        self.seeked = False
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.Pipeline.new("replay")
        src = Gst.ElementFactory.make("rtspsrc", "src")
        src.set_property("location", args.url)
        src.set_property("onvif-mode", True)
        src.set_property("is-live", True)
        src.set_property("onvif-rate-control", not args.no_rate_control)
        src.set_property("latency", args.latency)
        src.connect("pad-added", self.pad_added)
        self.src = src
        self.pipeline.add(src)

    # -- pipeline ----------------------------------------------------------------------------

    def branch(self, media: str, encoding: str) -> list[Gst.Element]:
        names = ["queue", "rtponvifparse"]
        if media == "video" and encoding == "H264":
            names += ["rtph264depay", "h264parse", "avdec_h264"]
        elif media == "video" and encoding == "H265":
            names += ["rtph265depay", "h265parse", "avdec_h265"]
        elif media == "video" and encoding == "JPEG":
            names += ["rtpjpegdepay", "jpegdec"]
        elif media == "audio" and encoding == "PCMU":
            names += ["rtppcmudepay"]
        elements = [Gst.ElementFactory.make(name) for name in names]
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        return [*elements, sink]

    def pad_added(self, src: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media = s.get_string("media") or "?"
        encoding = (s.get_string("encoding-name") or "").upper()
        elements = self.branch(media, encoding)
        for element in elements:
            self.pipeline.add(element)
        for a, b in itertools.pairwise(elements):
            a.link(b)
        for element in elements:
            element.sync_state_with_parent()
        parse = elements[1]
        parse.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_rtp, media)
        elements[-1].get_static_pad("sink").add_probe(
            Gst.PadProbeType.EVENT_DOWNSTREAM, self.on_event, media
        )
        if media == "video" and len(elements) > 3:
            elements[-1].get_static_pad("sink").add_probe(
                Gst.PadProbeType.BUFFER, self.on_frame, media
            )
        pad.link(elements[0].get_static_pad("sink"))

    def seek(self, start_us: int | None, end_us: int | None, rate: float) -> None:
        flags = Gst.SeekFlags.FLUSH
        if self.args.intra is not None:
            flags |= Gst.SeekFlags.TRICKMODE | Gst.SeekFlags.TRICKMODE_KEY_UNITS
        first = Gst.CLOCK_TIME_NONE if start_us is None else start_us * 1000 + PRIME_EPOCH_NS
        last = Gst.CLOCK_TIME_NONE if end_us is None else end_us * 1000 + PRIME_EPOCH_NS
        if rate < 0:  # GStreamer plays a reverse segment from stop down to start
            first, last = last, first
        event = Gst.Event.new_seek(
            rate,
            Gst.Format.TIME,
            flags,
            Gst.SeekType.SET if first != Gst.CLOCK_TIME_NONE else Gst.SeekType.NONE,
            first if first != Gst.CLOCK_TIME_NONE else 0,
            Gst.SeekType.SET if last != Gst.CLOCK_TIME_NONE else Gst.SeekType.NONE,
            last if last != Gst.CLOCK_TIME_NONE else -1,
        )
        if self.args.intra:
            event.set_seek_trickmode_interval(self.args.intra * Gst.MSECOND)
        ok = self.src.send_event(event)
        emit(event="seek", start_us=start_us, end_us=end_us, rate=rate, ok=bool(ok))

    # -- probes ------------------------------------------------------------------------------

    def on_rtp(self, pad: Gst.Pad, info: Gst.PadProbeInfo, media: str) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        ext = replay_extension(buf.extract_dup(0, buf.get_size()))
        if ext is not None:
            emit(event="rtp", media=media, **ext)
        return Gst.PadProbeReturn.OK

    def on_frame(self, pad: Gst.Pad, info: Gst.PadProbeInfo, media: str) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        pts = buf.pts
        pts_us = None if pts == Gst.CLOCK_TIME_NONE else (pts - PRIME_EPOCH_NS + 500) // 1000
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        emit(event="frame", media=media, pts_us=pts_us, key=key)
        self.frames += 1
        args = self.args
        if args.seek_after and self.frames == args.seek_after and not self.seeked:
            self.seeked = True
            GLib.idle_add(lambda: self.seek(args.seek_start, None, args.seek_rate) and False)
        if args.frames and self.frames >= args.frames:
            GLib.idle_add(self.loop.quit)
        return Gst.PadProbeReturn.OK

    def on_event(self, pad: Gst.Pad, info: Gst.PadProbeInfo, media: str) -> Gst.PadProbeReturn:
        if info.get_event().type == Gst.EventType.EOS:
            emit(event="eos", media=media)
            if media == "video":  # the other streams may end first: video decides
                GLib.idle_add(self.loop.quit)
        return Gst.PadProbeReturn.OK

    # -- bus ---------------------------------------------------------------------------------

    def on_message(self, bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            emit(event="error", message=str(error), debug=str(debug))
            self.loop.quit()

    def run(self) -> int:
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)
        GLib.timeout_add(int(self.args.timeout * 1000), self.loop.quit)
        args = self.args
        if args.start is not None or args.rate != 1.0 or args.intra is not None:
            # Before the stream is open rtspsrc keeps the seek and applies it to the first PLAY.
            self.seek(args.start, args.end, args.rate)
        self.pipeline.set_state(Gst.State.PLAYING)
        self.loop.run()
        emit(event="done", frames=self.frames)
        # rtspsrc's teardown now and then never returns (1.22): give it a moment, then leave.
        stopper = threading.Thread(target=self.pipeline.set_state, args=(Gst.State.NULL,))
        stopper.daemon = True
        stopper.start()
        stopper.join(3)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--start", type=int, help="Unix µs to start at")
    parser.add_argument("--end", type=int, help="Unix µs to stop at (closed range)")
    parser.add_argument("--rate", type=float, default=1.0, help="negative: reverse")
    parser.add_argument("--intra", type=int, nargs="?", const=0, help="key frames [ms apart]")
    parser.add_argument("--no-rate-control", action="store_true")
    parser.add_argument("--seek-after", type=int, default=0, help="decoded frames, then seek")
    parser.add_argument("--seek-start", type=int, help="Unix µs of the second seek")
    parser.add_argument("--seek-rate", type=float, default=1.0)
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames")
    parser.add_argument("--latency", type=int, default=200, help="jitter buffer, ms")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    Gst.init(None)
    return Client(parser.parse_args()).run()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # not sys.exit: a hung GStreamer thread must not keep the process alive
