"""Replay benchmark: ONVIF replay over RTSP (TCP interleaved, loopback) from a stored recording.

Builds two recordings through the real synchronous track writer (60 s segments, 25 fps, a key
frame every ``--gop`` frames):

* ``day``: ``--minutes`` (default 1440: 24 h) of small synthetic frames (``--seek-frame-bytes``,
  default 200 B: writing 43 GB of 20 kB frames would take far longer than the benchmark; a
  seek costs the same whatever the frame size, one index look-up and one ``pread``);
* ``hd``: ``--hd-minutes`` (default 60: 1.8 GB) of ``--frame-bytes`` (default 20 kB: 4 Mbit/s).

Then starts :class:`~nvr.playback.RtspServer` with a :class:`RecordingResolver` in a separate
process (``python bench/replay.py --serve``) on 127.0.0.1 and measures, with an asyncio client
on ``nvr.protocol.rtsp`` in this process:

a. PLAY-to-first-packet: ``--seeks`` PLAYs with ``Range: clock=<t>-`` at random times of
   ``day`` on one session, the time from sending the PLAY to the first RTP packet whose
   replay extension carries that PLAY's CSeq; p50 / p99 / max;
b. concurrent ``Rate-Control: yes`` sessions of ``hd`` at random start times, ramping
   ``--sessions`` (default 50,100,200): each held ``--hold`` seconds; a session keeps real
   time when the media time it received is within 0.5 s of the wall time since its first
   packet; server CPU (``/proc/<pid>/stat``) over the hold gives sessions per core;
c. ``Rate-Control: no`` throughput of one session over the whole of ``hd`` (up to
   ``--fast-seconds``), first with its segment files evicted from the page cache
   (``posix_fadvise DONTNEED``: read from disk), then again from the page cache, each against a
   ``cat``-like sequential read (1 MiB ``read`` calls) of the same bytes of the same files in
   the same state; then the same from the page cache with a client that only counts the bytes
   arriving (no walk of the ``$`` frames: what the server sends when its client costs next to
   nothing; its figure is wire bytes, 0.3 % above media). Two ceilings, over loopback TCP to a
   receiver that only counts: a plain asyncio loop (in a thread) writing the files' bytes in
   1 MiB writes (no RTP), the ceiling of any asyncio sender on this machine; and the replay
   data path without the server, in one thread (the store's forward cursor, the server's
   framing of RTP packets into 256 kB batches, blocking ``sendall``), the ceiling of this
   Python packetizing on this machine. CPU seconds per GB of the server and of this client
   show the cost independently of the load of the machine.

(a) and (b) run with the page cache warm (the data has just been written). Storage and
database as in ``store_read.py`` (``--dir``, ``--database-url``); everything is removed at the
end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # this folder, then the repository

from _common import bench_parser, scratch_database, scratch_dir, table  # noqa: E402

from nvr.playback.replay_rtp import TrackSender  # noqa: E402
from nvr.playback.transport import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER  # noqa: E402
from nvr.protocol.ntp import ntp_to_unix_us, unix_us_to_ntp  # noqa: E402
from nvr.protocol.onvif_replay import FLAG_T, ReplayExtension  # noqa: E402
from nvr.protocol.payload import make_packetizer  # noqa: E402
from nvr.protocol.rtp import parse_rtp  # noqa: E402
from nvr.protocol.rtsp import Headers, Request, Response, RtspParser  # noqa: E402
from nvr.protocol.rtsp_headers import format_utc_time  # noqa: E402
from nvr.store import Store  # noqa: E402
from nvr.store.settings import StorageDirSettings, StoreSettings  # noqa: E402
from nvr.store.types import SegmentInfo, TrackRef  # noqa: E402
from nvr.store.writer import StoreWriter  # noqa: E402
from tests.store.helpers import H264_ENTRY, T0  # noqa: E402

FPS = 25
FRAME_US = 1_000_000 // FPS
DURATION = 90_000 // FPS
SEGMENT_S = 60
CHECKPOINT_EVERY = 10 * SEGMENT_S * FPS
REAL_TIME_SLACK = 0.5
"""Seconds a 1x session may lag behind the wall clock and still count as real time."""
CLK_TCK = os.sysconf("SC_CLK_TCK")
RECEIVE_BYTES = 4 * 1024 * 1024
"""What the clients read at once."""
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\d+)")


def settings_for(media: Path) -> StoreSettings:
    return StoreSettings(
        dirs=(StorageDirSettings(path=media, min_free_bytes=0),),
        segment_seconds=SEGMENT_S,
    )


def build(store: Store, token: str, frames: int, size: int, gop: int) -> float:
    """Write one video track of ``frames`` frames of ``size`` bytes; returns the build time."""
    store.create_recording(token, tracks=(("VIDEO001", "Video"),))
    track = store.get_track(token, "VIDEO001")
    writer = StoreWriter(store.sessions, store.dirs, store.settings, live=store.live)
    tw = writer.open_track(TrackRef(track.id, token, "VIDEO001"), idle_close_us=None)
    body = random.Random(1).randbytes(size)
    key_head = (size - 4).to_bytes(4, "big") + b"\x65"
    delta_head = (size - 4).to_bytes(4, "big") + b"\x41"
    t0 = time.monotonic()
    for i in range(frames):
        key = i % gop == 0
        data = (key_head if key else delta_head) + i.to_bytes(8, "big") + body[13:]
        if not tw.append(data, T0 + i * FRAME_US, DURATION, key, H264_ENTRY):
            raise RuntimeError(f"frame {i} was not stored: {tw.status()}")
        if i % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
            writer.checkpoint()
    if not writer.close():
        raise RuntimeError("the index did not commit")
    return time.monotonic() - t0


# -- the server process -------------------------------------------------------------------------


def serve(database_url: str, media: Path) -> int:
    """Run the replay server until stdin closes; prints the port on the first line."""
    from nvr.db.engine import make_engine
    from nvr.playback import RtspServer
    from nvr.playback.replay import RecordingResolver

    async def run() -> None:
        engine = make_engine(database_url)
        store = Store(engine, settings_for(media))
        store.open()
        resolver = RecordingResolver(store)
        server = RtspServer("127.0.0.1", 0, resolver)
        await server.start()
        print(server.port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await server.stop()
        resolver.close()
        store.close()
        engine.dispose()

    asyncio.run(run())
    return 0


class ServerProcess:
    """The replay server in a child process; ``cpu()`` is its user+system CPU seconds.

    The child is ``script --serve *args`` (``bench/uplink.py`` starts its device this way): it
    prints its port on stdout and runs until its stdin closes."""

    def __init__(self, *args: str | Path, script: str = __file__) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, script, "--serve", *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{Path(script).name} --serve did not start: {line!r}")
        self.port = int(line)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


# -- a minimal asyncio RTSP client ----------------------------------------------------------------


class _Receiver(asyncio.BufferedProtocol):
    """The socket of one :class:`Client`: the kernel writes into one reused buffer, which the
    client walks in place (no copy of the media in Python)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.buffer = bytearray(RECEIVE_BYTES)
        self.start = self.end = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buffer) - self.end < RECEIVE_BYTES // 4:  # move the unread tail to the front
            tail = self.end - self.start
            self.buffer[:tail] = self.buffer[self.start : self.end]
            self.start, self.end = 0, tail
        return memoryview(self.buffer)[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self.start = self.client.consume(self.buffer, self.start, self.end)
        if self.start == self.end:
            self.start = self.end = 0


@dataclass
class Client:
    """One RTSP connection over TCP interleaved; counts the media it receives."""

    port: int
    path: str
    transport: asyncio.Transport | None = None
    parser: RtspParser = field(default_factory=RtspParser)
    cseq: int = 0
    session: str | None = None
    responses: dict[int, asyncio.Future[Response]] = field(default_factory=dict)
    media_bytes: int = 0
    wait_cseq: int | None = None
    first_packet: asyncio.Future[float] | None = None
    first_wall: float | None = None
    first_media_us: int | None = None
    last_media_us: int | None = None
    terminal: asyncio.Future[None] | None = None
    count_only: bool = False
    """Only count the bytes arriving (``wire_bytes``, ``last_byte``); nothing is parsed."""
    wire_bytes: int = 0
    last_byte: float | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_connection(
            lambda: _Receiver(self), "127.0.0.1", self.port
        )

    def consume(self, buf: bytearray, pos: int, end: int) -> int:
        """Walk the ``$`` frames in ``buf[pos:end]`` by their 4-byte headers, counting media
        bytes and reading only the replay extension of the first packet of each access unit,
        and hand RTSP messages to the parser; returns where the incomplete tail starts. A full
        parse of every frame would make this client, not the server, the bottleneck with
        Rate-Control no."""
        if self.count_only:
            self.wire_bytes += end - pos
            self.last_byte = time.perf_counter()
            return end
        while pos < end:
            if buf[pos] == 0x24:
                stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3]) if pos + 4 <= end else end + 1
                if stop > end:
                    break
                if buf[pos + 1] == 0:
                    self.media_bytes += stop - pos - 4
                    if buf[pos + 4] & 0x10:  # X: the first packet of an access unit
                        self._media(buf, pos + 4, stop)
                pos = stop
                continue
            head = buf.find(b"\r\n\r\n", pos, end)
            if head < 0:
                break
            found = _CONTENT_LENGTH.search(buf, pos, head)
            stop = head + 4 + (int(found[1]) if found else 0)
            if stop > end:
                break
            self.parser.feed(buf[pos:stop])
            for event in self.parser:
                if isinstance(event, Response):
                    future = self.responses.pop(event.cseq or -1, None)
                    if future is not None and not future.done():
                        future.set_result(event)
            pos = stop
        return pos

    def _media(self, buf: bytearray, pos: int, stop: int) -> None:
        """An RTP packet with a header extension at ``buf[pos:stop]``: the replay words sit at
        fixed offsets when there are no CSRCs (as from our server); else the full parse."""
        if buf[pos] & 0x0F == 0 and buf[pos + 12 : pos + 14] == b"\xab\xac" and stop - pos >= 28:
            ntp = int.from_bytes(buf[pos + 16 : pos + 24], "big")
            flags, cseq = buf[pos + 24], buf[pos + 25]
        else:
            ext = ReplayExtension.from_packet(parse_rtp(bytes(buf[pos:stop])))
            if ext is None:
                return
            ntp, flags, cseq = ext.ntp_timestamp, ext.flags, ext.cseq
        now = time.perf_counter()
        if self.wait_cseq is not None and cseq == self.wait_cseq & 0xFF:
            self.wait_cseq = None
            if self.first_packet is not None and not self.first_packet.done():
                self.first_packet.set_result(now)
        t_us = ntp_to_unix_us(ntp)
        if self.first_media_us is None:
            self.first_wall, self.first_media_us = now, t_us
        self.last_media_us = t_us
        if flags & FLAG_T and self.terminal is not None and not self.terminal.done():
            self.terminal.set_result(None)

    def send(self, method: str, url: str, headers: list[tuple[str, str]]) -> int:
        assert self.transport is not None
        self.cseq += 1
        fields = Headers([("CSeq", str(self.cseq)), ("Require", "onvif-replay"), *headers])
        if self.session is not None:
            fields.add("Session", self.session)
        self.responses[self.cseq] = asyncio.get_running_loop().create_future()
        self.transport.write(Request(method, url, fields).serialize())
        return self.cseq

    async def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]] = (), timeout: float = 30
    ) -> Response:
        cseq = self.send(method, url, list(headers))
        response = await asyncio.wait_for(self.responses[cseq], timeout)
        if response.status != 200:
            raise RuntimeError(f"{method} {url}: {response.status} {response.reason}")
        if (value := response.headers.get("Session")) is not None:
            self.session = value.split(";")[0].strip()
        return response

    async def setup(self) -> None:
        await self.connect()
        await self.request("DESCRIBE", self.url)
        transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
        await self.request("SETUP", f"{self.url}/track1", [("Transport", transport)])

    def play(self, start_us: int, rate_control: bool = True) -> int:
        """Send PLAY from ``start_us``; returns its CSeq (the response is not awaited)."""
        headers = [("Range", f"clock={format_utc_time(start_us * 1000)}-")]
        if not rate_control:
            headers.append(("Rate-Control", "no"))
        self.first_media_us = self.last_media_us = self.first_wall = None
        self.wait_cseq = self.cseq + 1
        self.first_packet = asyncio.get_running_loop().create_future()
        self.terminal = asyncio.get_running_loop().create_future()
        return self.send("PLAY", self.url, headers)

    def lag(self, now: float) -> float | None:
        """Wall time since the first packet minus media time received (None before it)."""
        if self.first_wall is None or self.first_media_us is None or self.last_media_us is None:
            return None
        return (now - self.first_wall) - (self.last_media_us - self.first_media_us) / 1e6

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -- the measurements ------------------------------------------------------------------------------


async def first_packet(port: int, seeks: int, day_end_us: int) -> list[float]:
    """PLAY-to-first-packet latencies (s) at random times of ``day``."""
    client = Client(port, "/recordings/day")
    await client.setup()
    rng = random.Random(7)
    out = []
    try:
        for _ in range(seeks):
            t = rng.randrange(T0, day_end_us - 10 * 1_000_000)
            sent = time.perf_counter()
            response = client.responses[client.play(t)]
            assert client.first_packet is not None
            arrived = await asyncio.wait_for(client.first_packet, 10)
            if (await asyncio.wait_for(response, 10)).status != 200:
                raise RuntimeError(f"PLAY at {t}: {response.result().status}")
            out.append(arrived - sent)
    finally:
        await client.close()
    return out


@dataclass(frozen=True)
class RampResult:
    sessions: int
    real_time: int
    worst_lag: float
    mbit_s: float
    server_cores: float
    client_cores: float


@dataclass(frozen=True)
class Rate:
    """One throughput figure: bytes in seconds, with the CPU seconds of sender and receiver."""

    label: str
    nbytes: int
    seconds: float
    sender_cpu: float = 0.0
    receiver_cpu: float = 0.0

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds

    def row(self) -> list[object]:
        per_gb = 1e9 / self.nbytes
        cpu = [f"{c * per_gb:.2f}" if c else "" for c in (self.sender_cpu, self.receiver_cpu)]
        head = [self.label, f"{self.mb_s:.0f}", f"{self.nbytes / 1e6:.0f}", f"{self.seconds:.2f}"]
        return [*head, *cpu, ""]


async def concurrent(server: ServerProcess, n: int, hold: float, hd_end_us: int) -> RampResult:
    """``n`` Rate-Control yes sessions of ``hd`` held ``hold`` seconds."""
    rng = random.Random(n)
    latest = max(T0, hd_end_us - int((hold + 30) * 1_000_000))
    clients = [Client(server.port, "/recordings/hd") for _ in range(n)]
    try:
        for i in range(0, n, 25):
            await asyncio.gather(*(c.setup() for c in clients[i : i + 25]))
        for c in clients:
            c.play(rng.randrange(T0, latest))
        await asyncio.sleep(2)  # everyone started
        bytes0 = sum(c.media_bytes for c in clients)
        cpu0, own0, wall0 = server.cpu(), time.process_time(), time.perf_counter()
        await asyncio.sleep(hold)
        wall = time.perf_counter() - wall0
        cpu, own = server.cpu() - cpu0, time.process_time() - own0
        now = time.perf_counter()
        lags = [c.lag(now) for c in clients]
        media = sum(c.media_bytes for c in clients) - bytes0
    finally:
        for i in range(0, n, 50):
            await asyncio.gather(*(c.close() for c in clients[i : i + 50]))
    known = [lag for lag in lags if lag is not None]
    return RampResult(
        n,
        sum(1 for lag in known if lag < REAL_TIME_SLACK),
        max(known) if known else float("inf"),
        media * 8 / 1e6 / wall,
        cpu / wall,
        own / wall,
    )


async def fast(
    server: ServerProcess, max_seconds: float, client: Client | None = None
) -> tuple[int, float, float, float]:
    """One Rate-Control no session (``client``, by default a direct one over ``hd``) from the
    start: (media bytes, seconds, server and client CPU s). ``bench/uplink.py`` passes its
    direct and tunnelled clients, so both benches time the same way."""
    if client is None:
        client = Client(server.port, "/recordings/hd")
    await client.setup()
    try:
        cpu0, own0 = server.cpu(), time.process_time()
        start = time.perf_counter()
        client.play(T0, rate_control=False)
        assert client.terminal is not None
        try:
            await asyncio.wait_for(asyncio.shield(client.terminal), max_seconds)
        except TimeoutError:
            pass
        elapsed = time.perf_counter() - start
        own = time.process_time() - own0
        return client.media_bytes, elapsed, server.cpu() - cpu0, own
    finally:
        await client.close()


async def fast_counting(
    server: ServerProcess, max_seconds: float, quiet: float = 0.5
) -> tuple[int, float, float, float]:
    """:func:`fast` with a client that, once PLAY is sent, only counts the bytes arriving:
    (wire bytes, seconds to the last byte, server and client CPU s). The end of the recording
    is the last byte before ``quiet`` seconds without any."""
    client = Client(server.port, "/recordings/hd")
    await client.setup()
    try:
        cpu0, own0 = server.cpu(), time.process_time()
        start = time.perf_counter()
        client.count_only = True
        client.play(T0, rate_control=False)
        while True:
            await asyncio.sleep(quiet / 5)
            now = time.perf_counter()
            last = client.last_byte
            if (last is not None and now - last > quiet) or now - start > max_seconds:
                break
        cpu, own = server.cpu() - cpu0, time.process_time() - own0
        return client.wire_bytes, (last or now) - start, cpu, own
    finally:
        await client.close()


async def settle(server: ServerProcess, idle: float = 0.05, longest: float = 15.0) -> None:
    """Until the server has finished with the sessions before (it uses under ``idle`` of a
    core over half a second), so that (c) measures a server doing nothing else."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        cpu0 = server.cpu()
        await asyncio.sleep(0.5)
        if server.cpu() - cpu0 < idle * 0.5:
            return


def evict(paths: list[Path]) -> None:
    """Drop the files from the page cache (written back first), so the next read hits disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def raw_read(paths: list[Path], limit: int) -> tuple[int, float]:
    """Sequential reads of the files (1 MiB at a time), up to ``limit`` bytes."""
    total = 0
    start = time.perf_counter()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            while total < limit and (chunk := os.read(fd, 1 << 20)):
                total += len(chunk)
        finally:
            os.close(fd)
        if total >= limit:
            break
    return total, time.perf_counter() - start


def send_files(port: int, limit: int, paths: list[Path]) -> tuple[int, float]:
    """The loopback reference sender (run in a thread with its own loop): the files' bytes, up
    to ``limit``, in 1 MiB ``transport.write`` calls with the RTSP server's flow control, then
    close; returns the bytes and its CPU seconds."""

    class Sender(asyncio.Protocol):
        def __init__(self) -> None:
            self.ready = asyncio.Event()
            self.ready.set()

        def pause_writing(self) -> None:
            self.ready.clear()

        def resume_writing(self) -> None:
            self.ready.set()

    total = 0

    async def run() -> None:
        nonlocal total
        loop = asyncio.get_running_loop()
        transport, sender = await loop.create_connection(Sender, "127.0.0.1", port)
        transport.set_write_buffer_limits(DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER)  # as TcpChannel
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                while total < limit and (chunk := os.read(fd, 1 << 20)):
                    await sender.ready.wait()
                    transport.write(chunk)
                    total += len(chunk)
            finally:
                os.close(fd)
        await sender.ready.wait()
        transport.close()

    cpu0 = time.thread_time()
    asyncio.run(run())
    return total, time.thread_time() - cpu0


def send_rtp(port: int, limit: int, store: Store) -> tuple[int, float]:
    """The replay data path of one Rate-Control no session without the server around it, in
    one thread: ``hd`` from the store's forward cursor, each access unit framed as ``$``
    RTP packets by a track sender (``TrackSender.frame_into``, the server's fast path),
    blocking ``sendall`` of 256 kB batches; returns the media bytes (RTP packets) and its
    CPU seconds."""
    cursor = store.reader_for(store.get_track("hd", "VIDEO001")).cursor(T0)
    sender = TrackSender(0, "video", 96, 90_000, make_packetizer("H264", 90_000))
    media = 0
    cpu0 = time.thread_time()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        out = bytearray()
        packets = 0
        while media < limit and (frames := cursor.read()):
            for frame in frames:
                ntp = unix_us_to_ntp(frame.time_us)
                timestamp = sender.seq.timestamp(frame.time_us)
                packets += sender.frame_into(out, 0, frame.data, timestamp, ntp, 0, 1)
                if len(out) >= 256 * 1024:
                    sock.sendall(out)
                    media += len(out) - 4 * packets
                    out, packets = bytearray(), 0
        sock.sendall(out)
        media += len(out) - 4 * packets
    cursor.close()
    return media, time.thread_time() - cpu0


class _Counter(asyncio.BufferedProtocol):
    """Receives into one reused buffer and only counts."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self.buffer = bytearray(RECEIVE_BYTES)
        self.received = 0
        self.done = done

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.received)


async def loopback(send: Callable[[int], tuple[int, float]]) -> tuple[int, float, float, float]:
    """``send(port)`` (in a thread: bytes sent, its CPU s) to a receiver that only counts, over
    loopback: (bytes, seconds, sender and receiver CPU). Sender and receiver share this
    process (the receiver only counts: little GIL for it)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    server = await loop.create_server(lambda: _Counter(done), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cpu0 = time.process_time()
    start = time.perf_counter()
    sender = loop.run_in_executor(None, send, port)
    finished, _ = await asyncio.wait({done, sender}, return_when=asyncio.FIRST_COMPLETED)
    if sender in finished:
        sender.result()  # raises what failed it, or the receiver sees the end next
        await done
    elapsed = time.perf_counter() - start
    nbytes, sender_cpu = await sender
    server.close()
    return nbytes, elapsed, sender_cpu, time.process_time() - cpu0 - sender_cpu


def segment_files(media: Path, segments: list[SegmentInfo]) -> list[Path]:
    out = []
    for seg in segments:
        path = Path(seg.path)
        if not path.is_absolute():
            found = media / path
            path = found if found.exists() else next(media.rglob(path.name))
        out.append(path)
    return out


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] * 1e3
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1e3


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--serve":
        return serve(sys.argv[2], Path(sys.argv[3]))
    ap = bench_parser(__doc__)
    ap.add_argument("--minutes", type=float, default=1440, help="day recording (1440 = 24 h)")
    ap.add_argument("--seek-frame-bytes", type=int, default=200, help="its frame size (200)")
    ap.add_argument("--hd-minutes", type=float, default=60, help="hd recording (60)")
    ap.add_argument("--frame-bytes", type=int, default=20_000, help="its frame size (20000)")
    ap.add_argument("--gop", type=int, default=50, help="frames per key frame (50)")
    ap.add_argument("--seeks", type=int, default=200, help="PLAYs at random times (200)")
    ap.add_argument("--sessions", default="50,100,200", help="concurrent 1x sessions (50,100,200)")
    ap.add_argument("--hold", type=float, default=15, help="seconds each ramp step runs (15)")
    ap.add_argument("--fast-seconds", type=float, default=60, help="Rate-Control no limit (60)")
    args = ap.parse_args(argv)
    ramp = [int(n) for n in args.sessions.split(",") if n.strip()]
    day_frames = int(args.minutes * 60 * FPS)
    hd_frames = int(args.hd_minutes * 60 * FPS)
    if min(args.seek_frame_bytes, args.frame_bytes) < 16:
        ap.error("frame sizes must be at least 16 bytes")

    with scratch_dir(args.dir) as work, scratch_database(args.database_url, work) as (engine, db):
        media = work / "media"
        store = Store(engine, settings_for(media))
        store.open()
        print(
            f"replay benchmark: day = {args.minutes:g} min of {args.seek_frame_bytes} B frames, "
            f"hd = {args.hd_minutes:g} min of {args.frame_bytes} B frames "
            f"({args.frame_bytes * 8 * FPS / 1e6:.1f} Mbit/s), {FPS} fps, GOP {args.gop}\n"
            f"database: {db}\nstorage: {work}\ncores: {os.cpu_count()}",
            flush=True,
        )
        day_s = build(store, "day", day_frames, args.seek_frame_bytes, args.gop)
        hd_s = build(store, "hd", hd_frames, args.frame_bytes, args.gop)
        hd_track = store.get_track("hd", "VIDEO001")
        files = segment_files(media, store.reader_for(hd_track).segments())
        store.close()
        print(
            f"built day in {day_s:.1f} s, hd in {hd_s:.1f} s "
            f"({sum(f.stat().st_size for f in files) / 1e6:.0f} MB in {len(files)} segments)",
            flush=True,
        )
        url = engine.url.render_as_string(hide_password=False)
        server = ServerProcess(url, media)
        print(f"server: pid {server.proc.pid}, separate process, 127.0.0.1:{server.port}\n")
        try:
            results = asyncio.run(
                measure(
                    server, args, ramp, T0 + day_frames * FRAME_US, T0 + hd_frames * FRAME_US, files
                )
            )
        finally:
            server.stop()
        latencies, steps, (cold, warm, counted) = results
        evict(files)
        raw_cold = Rate("raw read, from disk", *raw_read(files, cold.nbytes))
        raw_warm = Rate("raw read, page cache", *raw_read(files, warm.nbytes))
        send = functools.partial(send_files, limit=warm.nbytes, paths=files)
        sender = Rate("plain asyncio sender, page cache", *asyncio.run(loopback(send)))
        store = Store(engine, settings_for(media))
        store.open()
        try:
            send = functools.partial(send_rtp, limit=warm.nbytes, store=store)
            path = Rate("replay data path, no server, page cache", *asyncio.run(loopback(send)))
        finally:
            store.close()
    report(
        latencies,
        steps,
        [(cold, raw_cold), (warm, raw_warm), (counted, raw_warm), (warm, sender), (warm, path)],
    )
    return 0


async def measure(
    server: ServerProcess,
    args: argparse.Namespace,
    ramp: list[int],
    day_end: int,
    hd_end: int,
    files: list[Path],
) -> tuple[list[float], list[RampResult], tuple[Rate, Rate, Rate]]:
    latencies = await first_packet(server.port, args.seeks, day_end)
    print(f"(a) {len(latencies)} PLAYs done", flush=True)
    steps = []
    for n in ramp:
        steps.append(await concurrent(server, n, args.hold, hd_end))
        print(f"(b) {n} sessions done", flush=True)
    await settle(server)
    evict(files)
    cold = Rate("Rate-Control no, 1 session, from disk", *await fast(server, args.fast_seconds))
    warm = Rate("Rate-Control no, 1 session, page cache", *await fast(server, args.fast_seconds))
    counted = Rate(
        "Rate-Control no, page cache, counting client",
        *await fast_counting(server, args.fast_seconds),
    )
    print("(c) Rate-Control no done\n", flush=True)
    return latencies, steps, (cold, warm, counted)


def report(
    latencies: list[float],
    steps: list[RampResult],
    pairs: list[tuple[Rate, Rate]],
) -> None:
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(
        table(
            ["(a) PLAY to first packet", "PLAYs", "p50 ms", "p99 ms", "max ms", "goal"],
            [
                [
                    "random times of day",
                    len(latencies),
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{max(latencies) * 1e3:.1f}",
                    "p99 < 50 ms " + ("OK" if p99 < 50 else "MISSED"),
                ]
            ],
        )
    )
    print()
    rows: list[list[object]] = []
    for s in steps:
        per_core = s.sessions / s.server_cores if s.server_cores > 0 else float("inf")
        ok = s.real_time == s.sessions
        rows.append(
            [
                f"{s.sessions} x 1x",
                f"{s.real_time}/{s.sessions}",
                f"{s.worst_lag:.2f}",
                f"{s.mbit_s:.0f}",
                f"{s.server_cores:.2f}",
                f"{s.client_cores:.2f}",
                f"{per_core:.0f}",
                (">= 200/core " + ("OK" if ok and per_core >= 200 else "MISSED"))
                if ok
                else "not real time",
            ]
        )
    print(
        table(
            [
                "(b) sessions",
                "real time",
                "worst lag s",
                "Mbit/s",
                "server cores",
                "client cores",
                "sessions/core",
                "goal",
            ],
            rows,
        )
    )
    print()
    lines: list[list[object]] = []
    shown: list[Rate] = []
    for replay, reference in pairs:
        ratio = replay.mb_s / reference.mb_s
        goal = ">= 0.5 " + ("OK" if ratio >= 0.5 else "MISSED")
        if lines:
            lines.append([])
        for rate in (replay, reference):
            if not any(rate is r for r in shown):
                lines.append(rate.row())
                shown.append(rate)
        lines.append(["  replay / " + reference.label, f"{ratio:.2f}"])
        # The goal is against the disk; the page cache and the ceilings are for reference.
        note = "" if reference.label.startswith("raw") else "(ceiling)"
        lines[-1] += [""] * 4 + [goal if reference.label == "raw read, from disk" else note]
    print(
        table(
            [
                "(c) throughput",
                "MB/s",
                "MB",
                "seconds",
                "CPU s/GB sender",
                "CPU s/GB receiver",
                "goal",
            ],
            [r if r else [""] * 7 for r in lines],
        )
    )


if __name__ == "__main__":
    sys.exit(main())
