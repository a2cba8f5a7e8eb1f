"""Ingest benchmark: our recorder against ``ffmpeg -c copy`` on the same live H.264 streams.

One run (DESIGN.md §11), three kinds of processes so the figures are separable:

* a light RTSP source (this script, ``--role source``): a pre-encoded 1280x720 clip at about
  4 Mbit/s, looped, served over TCP interleaved by a tiny asyncio server built on
  ``nvr.protocol.rtsp`` and the H.264 packetizer. Every frame is packetized once and the same
  bytes go to every session, paced by timestamps in a few phase groups (cameras are not in
  lock-step), so the source costs little. New sessions start at the next key frame.
* our recorder (``--role recorder``): ReceiverManager + TrackRecorder into a Store, one
  receiver and recording per stream, as the daemon runs them.
* N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60`` processes.

CPU is read from /proc (utime+stime) over a window after a warm-up; memory is RSS and PSS
(shared libraries counted once per process by PSS, which is fairer to N ffmpeg processes);
frames lost compare what the source sent with what was stored (the store's index; ffprobe
packet counts of ffmpeg's files). When the source stops, both recorders first drain what is
still buffered (ffmpeg through ``-timeout``, ours until no frame came for 2 s), so a backlog
counts as late, not lost. Usage::

    .venv/bin/python bench/ingest.py --streams 20 --seconds 30
    .venv/bin/python bench/ingest.py --streams 50 --seconds 30 --sequential
    .venv/bin/python bench/ingest.py --streams 100 --mode ours --verbose --log /tmp/ingest.log
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import scratch_database, scratch_dir, table
from nvr.protocol.codecs.annexb import nals_to_length_prefixed, split_annexb
from nvr.protocol.payload.h264 import H264Packetizer
from nvr.protocol.rtsp import Headers, InterleavedFrame, Request, Response, RtspParser
from nvr.protocol.rtsp_headers import parse_transport

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 25, 50
CLOCK = 90_000
TICKS = CLOCK // FPS
CLIP_SECONDS = 10
PHASE_GROUPS = 8
MAX_BUFFERED = 4 << 20  # bytes a slow client may have queued before frames are skipped
TICK = os.sysconf("SC_CLK_TCK")


# --- the clip -------------------------------------------------------------------------------


def encode_clip(path: Path, kbit: int) -> None:
    """About 10 s of 1280x720 H.264 at ``kbit`` kbit/s: a moving gradient with a band of
    noise (so the rate control has something to spend bits on), baseline, no B-frames,
    SPS/PPS before every key frame. Stored as [u32 size][u8 key][access unit] records."""
    import av

    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    cc.time_base, cc.framerate = Fraction(1, FPS), Fraction(FPS)
    cc.gop_size, cc.max_b_frames = GOP, 0
    params = (
        f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:repeat-headers=1:"
        f"bitrate={kbit}:vbv-maxrate={kbit * 11 // 10}:vbv-bufsize={kbit}"
    )
    cc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": params}
    rng = random.Random(1)
    gradient = bytes(x * 255 // WIDTH for x in range(WIDTH))
    band = HEIGHT // 6
    packets = []
    for i in range(CLIP_SECONDS * FPS):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        shift = (i * 8) % WIDTH
        luma = bytearray(gradient[shift:] + gradient[:shift]) * HEIGHT
        start = ((i * 4) % (HEIGHT - band)) * WIDTH
        luma[start : start + band * WIDTH] = rng.randbytes(band * WIDTH)
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(b"\x80" * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x64" * frame.planes[2].buffer_size)
        frame.pts = i
        packets += cc.encode(frame)
    packets += cc.encode(None)
    with open(path, "wb") as out:
        for p in packets:
            unit = nals_to_length_prefixed(split_annexb(bytes(p)))
            out.write(struct.pack(">IB", len(unit), bool(p.is_keyframe)) + unit)


def load_clip(path: Path) -> list[tuple[bytes, bool]]:
    data = path.read_bytes()
    units, pos = [], 0
    while pos < len(data):
        size, key = struct.unpack_from(">IB", data, pos)
        units.append((data[pos + 5 : pos + 5 + size], bool(key)))
        pos += 5 + size
    return units


def clip_path(kbit: int) -> Path:
    """The clip, encoded once per machine (a few seconds with libx264 ultrafast)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"nvr-bench-ingest-{WIDTH}x{HEIGHT}-{kbit}k.bin"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        encode_clip(tmp, kbit)
        tmp.replace(path)
    return path


# --- the source (--role source) ------------------------------------------------------------


@dataclass(eq=False)
class Viewer:
    """One playing session of the source."""

    transport: asyncio.Transport
    started: bool = False
    skipping: bool = False
    sent: int = 0
    skipped: int = 0

    def send(self, blob: bytes, key: bool) -> None:
        if not self.started:
            if not key:
                return
            self.started = True
        if self.transport.is_closing():
            return
        if (self.skipping and not key) or self.transport.get_write_buffer_size() > MAX_BUFFERED:
            self.skipping = True  # the client is too slow: skip to the next key frame
            self.skipped += 1
            return
        self.skipping = False
        self.transport.write(blob)
        self.sent += 1


class Source:
    """Packetizes the clip once and paces the same frame bytes to every viewer."""

    def __init__(self, units: list[tuple[bytes, bool]]) -> None:
        self.packetizer = H264Packetizer(1400)
        self.frames = [(self.packetizer.packetize(data), key) for data, key in units]
        self.fmtp = ";".join(f"{k}={v}" for k, v in self.packetizer.fmtp().items())
        self.groups: list[list[Viewer]] = [[] for _ in range(PHASE_GROUPS)]
        self.stats: dict[str, Viewer] = {}
        self.running = True
        self.ssrc = secrets.randbits(32)
        self._next_group = 0

    def add(self, path: str, viewer: Viewer) -> None:
        self.stats[path] = viewer
        self.groups[self._next_group % PHASE_GROUPS].append(viewer)
        self._next_group += 1

    def remove(self, viewer: Viewer) -> None:
        for group in self.groups:
            if viewer in group:
                group.remove(viewer)

    async def pace(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        seq, ts, n = random.getrandbits(16), random.getrandbits(32), 0
        spread = 1 / FPS / PHASE_GROUPS
        while self.running:
            payloads, key = self.frames[n % len(self.frames)]
            parts = []
            for p in payloads:
                header = struct.pack(
                    ">BBHII", 0x80, (0x80 if p.marker else 0) | 96, seq, ts, self.ssrc
                )
                parts.append(b"$\x00" + struct.pack(">H", 12 + len(p.payload)) + header)
                parts.append(p.payload)
                seq = (seq + 1) & 0xFFFF
            blob = b"".join(parts)
            for g, group in enumerate(self.groups):
                delay = start + n / FPS + g * spread - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                for viewer in group:
                    viewer.send(blob, key)
            ts = (ts + TICKS) & 0xFFFFFFFF
            n += 1

    def sdp(self, host: str) -> bytes:
        lines = [
            "v=0",
            f"o=- 1 1 IN IP4 {host}",
            "s=nvr ingest bench",
            "t=0 0",
            "a=control:*",
            "m=video 0 RTP/AVP 96",
            "a=rtpmap:96 H264/90000",
            f"a=fmtp:96 {self.fmtp}",
            f"a=framerate:{FPS}",
            "a=control:trackID=0",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()


class SourceConnection(asyncio.Protocol):
    """One RTSP connection to the source: just enough RTSP for our client and FFmpeg."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.parser = RtspParser()
        self.transport: asyncio.Transport | None = None
        self.viewer: Viewer | None = None
        self.session = secrets.token_hex(8)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.viewer is not None:
            self.source.remove(self.viewer)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while (event := self.parser.next_event()) is not None:
            if isinstance(event, Request):
                self.answer(event)
            elif not isinstance(event, InterleavedFrame):
                assert self.transport is not None
                self.transport.close()

    def answer(self, request: Request) -> None:
        assert self.transport is not None
        headers = Headers([("CSeq", request.headers.get("CSeq", "0"))])
        body = b""
        status = 200
        path = request.uri.split("://", 1)[-1].split("/", 1)[-1].split("/trackID")[0].rstrip("/")
        if request.method == "OPTIONS":
            headers.add("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif request.method == "DESCRIBE":
            host = self.transport.get_extra_info("sockname")[0]
            headers.add("Content-Base", request.uri.rstrip("/") + "/")
            headers.add("Content-Type", "application/sdp")
            body = self.source.sdp(host)
        elif request.method == "SETUP":
            offer = parse_transport(request.headers.get("Transport", ""))[0]
            if not offer.is_tcp:
                status = 461
            else:  # one track: channels 0-1, whatever was offered (the frames are shared)
                headers.add("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")
                headers.add("Session", f"{self.session};timeout=60")
        elif request.method == "PLAY":
            headers.add("Session", self.session)
            headers.add("Range", "npt=0.000-")
            if self.viewer is None:
                self.viewer = Viewer(self.transport)
                self.source.add(path, self.viewer)
        elif request.method == "TEARDOWN":
            if self.viewer is not None:
                self.source.remove(self.viewer)
        elif request.method not in ("GET_PARAMETER", "SET_PARAMETER"):
            status = 501
        self.transport.write(Response(status, headers=headers, body=body).serialize())


async def serve_source(clip: Path) -> None:
    """Serve until stdin says ``stop`` (then print what was sent) and EOF (then exit)."""
    source = Source(load_clip(clip))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SourceConnection(source), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pacer = loop.create_task(source.pace())
    print(f"READY {port}", flush=True)
    reader = await _stdin_reader()
    while line := (await reader.readline()).decode().strip():
        if line == "stop":
            source.running = False
            pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pacer
            stats = {p: {"sent": v.sent, "skipped": v.skipped} for p, v in source.stats.items()}
            print("RESULT " + json.dumps(stats), flush=True)
    pacer.cancel()
    server.close()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# --- our recorder (--role recorder) ------------------------------------------------------------


async def run_recorder(args: argparse.Namespace) -> None:
    """Record ``--streams`` streams of the source; stdin ``start``/``stop`` drive it."""
    from nvr.events import EventBus
    from nvr.ingest.receivers import ReceiverConfig, ReceiverManager, ReceiverSession
    from nvr.ingest.recorder import TrackRecorder, open_recorder
    from nvr.store import Store
    from nvr.store.settings import StorageDirSettings, StoreSettings

    work = Path(args.work)
    with scratch_database(args.database, work) as (engine, _):
        settings = StoreSettings(
            dirs=(StorageDirSettings(path=work / "media", min_free_bytes=0),),
            segment_seconds=60.0,
        )
        store = Store(engine, settings)
        await asyncio.to_thread(store.open)
        tokens = [f"bench-{i:03d}" for i in range(args.streams)]
        for token in tokens:
            await asyncio.to_thread(store.create_recording, token, tracks=[("VIDEO001", "Video")])
        manager = ReceiverManager(store.sessions, EventBus(), max_receivers=args.streams)
        await manager.start()
        recorders: dict[str, list[TrackRecorder]] = {t: [] for t in tokens}
        reader = await _stdin_reader()
        print("READY", flush=True)
        assert (await reader.readline()).strip() == b"start"

        def job(token: str) -> Any:
            async def factory(session: ReceiverSession) -> dict[int, TrackRecorder]:
                recorder = await open_recorder(
                    store,
                    token,
                    "VIDEO001",
                    session.streams[0],
                    request_key_frame=session.key_frame_requester(0),
                )
                recorders[token].append(recorder)
                return {0: recorder}

            return factory

        receivers = []
        for i, token in enumerate(tokens):
            uri = f"rtsp://127.0.0.1:{args.source_port}/ours-{i}"
            info = await manager.create(ReceiverConfig("AutoConnect", uri))
            await manager.attach(info.token, token, job(token))
            manager.acquire(info.token, token)
            receivers.append(info.token)
        while not all(
            manager.state(r)[0] == "Connected" and recorders[t] and recorders[t][-1].stats.frames
            for r, t in zip(receivers, tokens, strict=True)
        ):
            await asyncio.sleep(0.1)
        print("CONNECTED", flush=True)
        assert (await reader.readline()).strip() == b"stop"
        drain = await _drained(lambda: sum(r.stats.frames for rs in recorders.values() for r in rs))
        await manager.stop()
        await asyncio.to_thread(store.writer_service.flush)
        result = {}
        writers = {st.track_id: st for st in store.writer_service.status()}
        for i, token in enumerate(tokens):
            reader = store.reader(token, "VIDEO001")
            segments = reader.segments()
            st = writers.get(reader.track.id)
            stats = [r.stats for r in recorders[token]]
            result[f"ours-{i}"] = {
                "stored": sum(s.frames for s in segments),
                "dropped": sum(s.dropped for s in stats),
                "after_loss": sum(s.after_loss for s in stats),
                "sessions": len(stats),
                "runs": len(reader.runs()),
                "store_dropped": 0 if st is None else _store_drops(st),
            }
        await asyncio.to_thread(store.close)
        print("RESULT " + json.dumps({"streams": result, "drain_s": drain}), flush=True)


def _store_drops(status: Any) -> int:
    """Frames the store's track writer refused (before a key frame, overlap, queue, error)."""
    return int(
        status.dropped_before_key
        + status.dropped_overlap
        + status.dropped_queue
        + status.dropped_error
    )


async def _drained(frames: Any, quiet: float = 2.0) -> float:
    """Wait until no frame arrived for ``quiet`` seconds (what ``ffmpeg -timeout`` does);
    returns how long data kept coming after the source stopped (the backlog)."""
    loop = asyncio.get_running_loop()
    start = last_change = loop.time()
    last = frames()
    while loop.time() - last_change < quiet:
        await asyncio.sleep(0.1)
        if (now := frames()) != last:
            last, last_change = now, loop.time()
    return last_change - start


# --- measuring ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    return cpu_seconds_of(f"/proc/{pid}/stat")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread of a process (tid -> seconds)."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            out[int(task)] = cpu_seconds_of(f"/proc/{pid}/task/{task}/stat")
    return out


def cpu_seconds_of(stat_path: str) -> float:
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


@dataclass
class Proc:
    """A child process with a line protocol on stdin/stdout."""

    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, line: str) -> None:
        stdin = self.popen.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()

    def expect(self, word: str, timeout: float = 120) -> str:
        stdout = self.popen.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = stdout.readline().decode().strip()
            if not line and self.popen.poll() is not None:
                break
            if line.startswith(word):
                return line[len(word) :].strip()
        raise RuntimeError(f"child {self.popen.args!r} did not say {word}")


def start_role(role: str, *extra: str, stderr: IO[bytes] | None = None) -> Proc:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, *extra]
    return Proc(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr))


@dataclass
class Side:
    """What one recorder kind cost over the measuring window."""

    name: str
    pids: list[int]
    window: float = 0.0
    cpu0: float = 0.0
    cpu1: float = 0.0
    rss_kb: int = 0
    pss_kb: int = 0
    base_rss_kb: int = 0
    base_pss_kb: int = 0
    sent: int = 0
    stored: int = 0
    notes: list[str] = field(default_factory=list)

    def alive(self) -> list[int]:
        return [p for p in self.pids if os.path.exists(f"/proc/{p}/stat")]

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def memory(self) -> tuple[int, int]:
        rss = pss = 0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                r, p = memory_kb(pid)
                rss, pss = rss + r, pss + p
        return rss, pss


def ffmpeg_count(files: list[Path]) -> int:
    total = 0
    for path in files:
        probe = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets"]
        result = subprocess.run(
            [*probe, "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        with contextlib.suppress(ValueError):
            total += int(result.stdout.strip() or 0)
    return total


@contextlib.contextmanager
def processes(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def measure(args: argparse.Namespace, work: Path) -> list[Side]:
    clip = clip_path(args.kbit)
    n = args.streams
    log = open(args.log or work / "children.log", "wb")  # noqa: SIM115
    source = start_role("source", "--clip", str(clip), stderr=log)
    children = [source.popen]
    sides: list[Side] = []
    with processes(children):
        port = int(source.expect("READY"))
        ours: Proc | None = None
        if args.mode in ("both", "ours"):
            extra = ["--streams", str(n), "--source-port", str(port), "--work", str(work)]
            if args.database:
                extra += ["--database", args.database]
            if args.verbose:
                extra.append("--verbose")
            if args.profile:
                extra += ["--profile", str(args.profile)]
            ours = start_role("recorder", *extra, stderr=log)
            children.append(ours.popen)
            ours.expect("READY")
            side = Side("nvr (one process)", [ours.pid])
            side.base_rss_kb, side.base_pss_kb = side.memory()
            ours.send("start")
            ours.expect("CONNECTED")
            sides.append(side)
        ffmpegs: list[subprocess.Popen[bytes]] = []
        if args.mode in ("both", "ffmpeg"):
            out = work / "ffmpeg"
            out.mkdir()
            for i in range(n):
                # -timeout: exit (finishing the files) 5 s after the source stops (more than
                # a GOP: sessions start at a key frame); SIGINT does not interrupt FFmpeg 5.1
                # blocked on a silent RTSP connection.
                cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-timeout", "5000000"]
                cmd += ["-rtsp_transport", "tcp"]
                cmd += ["-i", f"rtsp://127.0.0.1:{port}/ff-{i}", "-c", "copy", "-f", "segment"]
                cmd += [
                    "-segment_time",
                    "60",
                    "-reset_timestamps",
                    "1",
                    str(out / f"ff{i}-%03d.mp4"),
                ]
                ffmpegs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log))
            children.extend(ffmpegs)
            sides.append(Side(f"ffmpeg -c copy ({n} processes)", [p.pid for p in ffmpegs]))
        time.sleep(args.warmup)
        started = time.monotonic()
        for side in sides:
            side.cpu0 = side.cpu()
        threads0 = thread_cpu(ours.pid) if ours is not None else {}
        source_cpu0 = cpu_seconds(source.pid)
        time.sleep(args.seconds)
        window = time.monotonic() - started
        for side in sides:
            side.cpu1 = side.cpu()
            side.rss_kb, side.pss_kb = side.memory()
            if len(side.alive()) < len(side.pids):
                gone = len(side.pids) - len(side.alive())
                side.notes.append(f"{gone} process(es) exited during the window (see the log)")
        if ours is not None:
            threads = thread_cpu(ours.pid)
            loop = threads.get(ours.pid, 0.0) - threads0.get(ours.pid, 0.0)
            rest = sum(threads.values()) - sum(threads0.values()) - loop
            window_now = time.monotonic() - started
            sides[0].notes.append(
                f"event loop thread {loop / window_now * 100:.1f}% of a core, "
                f"store and other threads {rest / window_now * 100:.1f}%"
            )
        source_cpu = cpu_seconds(source.pid) - source_cpu0
        source.send("stop")
        sent = json.loads(source.expect("RESULT"))
        time.sleep(1.0)  # let the last frames arrive
        if ours is not None:
            ours.send("stop")
            answer = json.loads(ours.expect("RESULT"))
            ours.popen.stdin.close()  # type: ignore[union-attr]
            ours.popen.wait(30)
            stored = answer["streams"]
            side = sides[0]
            if answer["drain_s"] > 0.5:
                side.notes.append(f"backlog: frames kept coming {answer['drain_s']:.1f} s")
            side.sent = sum(v["sent"] for k, v in sent.items() if k.startswith("ours-"))
            side.stored = sum(v["stored"] for v in stored.values())
            for what in ("after_loss", "dropped", "store_dropped"):
                count = sum(v[what] for v in stored.values())
                if count:
                    side.notes.append(f"{what.replace('_', ' ')}: {count} frames")
            reconnects = sum(v["sessions"] - 1 for v in stored.values())
            breaks = sum(v["runs"] - 1 for v in stored.values())
            if reconnects or breaks:
                side.notes.append(f"{reconnects} reconnects, {breaks} extra runs")
        if ffmpegs:
            side = sides[-1]
            for p in ffmpegs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    side.notes.append(f"ffmpeg {p.pid} hung: killed, its files may be unreadable")
            side.sent = sum(v["sent"] for k, v in sent.items() if k.startswith("ff-"))
            side.stored = ffmpeg_count(sorted((work / "ffmpeg").glob("*.mp4")))
        skipped = sum(v["skipped"] for v in sent.values())
        source.popen.stdin.close()  # type: ignore[union-attr]
    for side in sides:
        side.window = window
    print(
        f"source: {source_cpu / window * 100:.1f}% of a core over the {window:.1f} s window; "
        f"{skipped} frames skipped for slow clients"
    )
    return sides


def report(args: argparse.Namespace, sides: list[Side]) -> None:
    n = args.streams
    rows = []
    for side in sides:
        window = side.window
        cpu = side.cpu1 - side.cpu0
        per_stream_minute = cpu / n / (window / 60)
        core_share = cpu / window / n
        rss = (side.rss_kb - side.base_rss_kb) / n / 1024
        pss = (side.pss_kb - side.base_pss_kb) / n / 1024
        lost = side.sent - side.stored
        rows.append(
            [
                side.name,
                f"{per_stream_minute:.3f}",
                f"{cpu / window * 100:.1f}%",
                f"{rss:.1f}",
                f"{pss:.1f}",
                f"{side.rss_kb / 1024:.0f}",
                f"{side.sent}",
                f"{lost} ({lost / max(side.sent, 1) * 100:.2f}%)",
                f"{1 / core_share:.0f}" if core_share else "-",
            ]
        )
    print(
        f"\n{n} streams of {WIDTH}x{HEIGHT} H.264 at {args.kbit} kbit/s, {FPS} fps, TCP interleaved"
    )
    headers = [
        "recorder",
        "CPU s/stream-min",
        "CPU total",
        "RSS MiB/stream",
        "PSS MiB/stream",
        "RSS MiB total",
        "frames sent",
        "frames lost",
        "streams/core",
    ]
    print(table(headers, rows))
    for side in sides:
        if side.notes:
            print(f"  {side.name}: " + "; ".join(side.notes))
    print(
        "  nvr memory per stream is the growth of the recording process over its own baseline"
        " (store open, no receiver); ffmpeg's is a whole process per stream."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--kbit", type=int, default=4000)
    parser.add_argument("--mode", choices=("both", "ours", "ffmpeg"), default="both")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="with --mode both: one after the other (no CPU contention between them)",
    )
    parser.add_argument("--database", help="PostgreSQL URL (default: SQLite in the work dir)")
    parser.add_argument("--work-dir", type=Path, help="where scratch files go")
    parser.add_argument("--log", type=Path, help="keep the children's stderr in this file")
    parser.add_argument("--verbose", action="store_true", help="the recorder logs at INFO")
    parser.add_argument("--profile", type=Path, help="cProfile our recorder into this file")
    parser.add_argument("--role", choices=("bench", "source", "recorder"), default="bench")
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--source-port", type=int)
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.role == "source":
        asyncio.run(serve_source(args.clip))
        return
    if args.role == "recorder":
        import logging

        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
        if args.profile:
            import cProfile

            cProfile.runctx("asyncio.run(run_recorder(args))", globals(), locals(), args.profile)
        else:
            asyncio.run(run_recorder(args))
        return
    modes = ["ours", "ffmpeg"] if args.sequential and args.mode == "both" else [args.mode]
    sides = []
    for mode in modes:
        with scratch_dir(args.work_dir) as work:
            sides += measure(argparse.Namespace(**{**vars(args), "mode": mode}), work)
    report(args, sides)


if __name__ == "__main__":
    main()
