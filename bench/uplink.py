"""Uplink benchmark: replay throughput through the cloud uplink vs direct RTSP over TCP.

Builds one recording (``--minutes`` of ``--frame-bytes`` frames at 25 fps) like
``replay.py``, then starts a device process (``python bench/uplink.py --serve``): the RTSP
server on the recording plus an :class:`~nvr.uplink.manager.UplinkManager` that dials the test
cloud of ``tests/uplink/cloud.py`` (TLS with a client certificate, ``h2c-reverse``, reversed
HTTP/2; PKI made on the spot). In this process, on loopback, in the same run:

a. ``Rate-Control: no`` replay of the whole recording (up to ``--fast-seconds``) by one
   session over RTSP/TCP straight to the RTSP port, and by one session through the tunnel
   (RTSP over HTTP: a GET and a POST stream of the cloud's HTTP/2 connection), each twice,
   alternating; the better run of each counts. The receiving side walks the interleaved
   frames the same way (``replay.Client``); the tunnel client additionally runs the cloud's
   ``h2`` client. CPU seconds per GB of the device process and of this process show the
   cost of the tunnel independently of the load of the machine;
b. ``--sessions`` ``Rate-Control: yes`` (1x) sessions held ``--hold`` seconds each way: the
   device's CPU per session (``0`` sessions skips it).

``--wss`` carries the tunnel in WebSocket frames instead. ``--profile FILE`` writes the
device process's cProfile statistics (tunnel runs included) to ``FILE``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # this folder, then the repository

from _common import bench_parser, scratch_database, scratch_dir, table  # noqa: E402
from replay import FPS, Client, ServerProcess, build, fast, settings_for  # noqa: E402

from nvr.playback.tunnel import TUNNEL_CONTENT_TYPE  # noqa: E402
from nvr.store import Store  # noqa: E402
from tests.store.helpers import T0  # noqa: E402
from tests.uplink.cloud import Cloud, CloudConnection, CloudStream, make_pki  # noqa: E402

TOKEN = "hd"


# -- the device process ---------------------------------------------------------------------------


def serve(database_url: str, media: Path, keystore_dir: Path, profile: str) -> int:
    """RTSP server + uplink manager until stdin closes. Prints the RTSP port, then reads the
    uplink's address from stdin."""
    from nvr.db.engine import make_engine
    from nvr.playback import RtspServer
    from nvr.playback.replay import RecordingResolver
    from nvr.uplink.keystore import FileKeystore
    from nvr.uplink.manager import UplinkManager
    from nvr.uplink.settings import UplinkConfiguration

    async def not_found(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        raise RuntimeError("the benchmark makes no HTTP requests")

    async def run() -> None:
        engine = make_engine(database_url)
        store = Store(engine, settings_for(media))
        store.open()
        resolver = RecordingResolver(store)
        server = RtspServer("127.0.0.1", 0, resolver)
        await server.start()
        manager = UplinkManager(
            not_found, FileKeystore(keystore_dir), lambda: server, device="bench"
        )
        await manager.start()
        print(server.port, flush=True)
        loop = asyncio.get_running_loop()
        address = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        config = UplinkConfiguration(
            address, ("User",), certificate_id="device", cert_path_validation_policy_id="cloud"
        )
        manager.update([config])
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await manager.close()
        await server.stop()
        resolver.close()
        store.close()
        engine.dispose()

    if not profile:
        asyncio.run(run())
        return 0
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, run())
    profiler.dump_stats(profile)
    return 0


class DeviceProcess(ServerProcess):
    """The device in a child process (``cpu()``/``stop()`` as for the replay server)."""

    def __init__(self, database_url: str, media: Path, keystore: Path, profile: str) -> None:
        super().__init__(database_url, media, keystore, profile, script=__file__)

    def dial(self, address: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(address + "\n")
        self.proc.stdin.flush()


# -- the cloud's RTSP client ----------------------------------------------------------------------


class _PostWriter:
    """``Client.transport`` through the tunnel: requests leave base64-encoded on the POST."""

    def __init__(self, conn: CloudConnection, post: CloudStream) -> None:
        self.conn, self.post = conn, post
        self.sending: set[asyncio.Task[None]] = set()

    def write(self, data: bytes) -> None:
        task = asyncio.get_running_loop().create_task(
            self.conn.send(self.post, base64.b64encode(data))
        )
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    def close(self) -> None:
        self.conn.h2.reset_stream(self.post.stream_id)
        self.conn.flush()


class TunnelClient(Client):
    """:class:`replay.Client` whose bytes ride a tunnel GET/POST pair of the cloud."""

    conn: CloudConnection

    async def connect(self) -> None:
        cookie = secrets.token_hex(8)
        get = await self.conn.open(
            "GET",
            self.path,
            [("accept", TUNNEL_CONTENT_TYPE), ("x-sessioncookie", cookie)],
            end_stream=True,
        )
        buffer = bytearray()

        def on_data(data: bytes) -> None:
            buffer.extend(data)
            used = self.consume(buffer, 0, len(buffer))
            del buffer[:used]

        get.on_data = on_data
        head = await get.head
        if head[":status"] != "200":
            raise RuntimeError(f"tunnel GET: {head}")
        post = await self.conn.open(
            "POST",
            self.path,
            [
                ("content-type", TUNNEL_CONTENT_TYPE),
                ("x-sessioncookie", cookie),
                ("content-length", str(2**31 - 1)),
            ],
        )
        self.transport = _PostWriter(self.conn, post)  # type: ignore[assignment]
        self._get = get

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.conn.h2.reset_stream(self._get.stream_id)
            self.conn.flush()


# -- the measurements -----------------------------------------------------------------------------


async def real_time(
    clients: list[Client], device: DeviceProcess, hold: float
) -> tuple[float, float]:
    """``clients`` at 1x for ``hold`` s: (device CPU cores, Mbit/s received)."""
    try:
        for client in clients:
            await client.setup()
        for client in clients:
            client.play(T0)
        await asyncio.sleep(1)
        cpu0, bytes0, wall0 = device.cpu(), sum(c.media_bytes for c in clients), time.perf_counter()
        await asyncio.sleep(hold)
        wall = time.perf_counter() - wall0
        media = sum(c.media_bytes for c in clients) - bytes0
        return (device.cpu() - cpu0) / wall, media * 8 / 1e6 / wall
    finally:
        for client in clients:
            await client.close()


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 6 and sys.argv[1] == "--serve":
        return serve(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
    ap = bench_parser(__doc__)
    ap.add_argument("--minutes", type=float, default=5, help="recording length (5)")
    ap.add_argument("--frame-bytes", type=int, default=20_000, help="frame size (20000)")
    ap.add_argument("--gop", type=int, default=50, help="frames per key frame (50)")
    ap.add_argument("--fast-seconds", type=float, default=30, help="Rate-Control no limit (30)")
    ap.add_argument("--sessions", type=int, default=10, help="1x sessions each way (10)")
    ap.add_argument("--hold", type=float, default=5, help="seconds the 1x sessions run (5)")
    ap.add_argument("--wss", action="store_true", help="tunnel in WebSocket frames (wss://)")
    ap.add_argument("--profile", default="", help="write the device's cProfile stats here")
    args = ap.parse_args(argv)
    frames = int(args.minutes * 60 * FPS)

    with scratch_dir(args.dir) as work, scratch_database(args.database_url, work) as (engine, db):
        media = work / "media"
        store = Store(engine, settings_for(media))
        store.open()
        mbit = args.frame_bytes * 8 * FPS / 1e6
        print(
            f"uplink benchmark: {args.minutes:g} min of {args.frame_bytes} B frames "
            f"({mbit:.1f} Mbit/s), {FPS} fps, GOP {args.gop}\n"
            f"database: {db}\nstorage: {work}\ncores: {os.cpu_count()}",
            flush=True,
        )
        build(store, TOKEN, frames, args.frame_bytes, args.gop)
        store.close()
        pki = make_pki(work / "pki")
        from nvr.uplink.keystore import FileKeystore

        keystore = FileKeystore(work / "keystore")
        keystore.add_certificate("device", pki.device[0].read_bytes(), pki.device[1].read_bytes())
        keystore.add_trust("cloud", pki.ca_file.read_bytes())
        url = engine.url.render_as_string(hide_password=False)
        device = DeviceProcess(url, media, work / "keystore", args.profile)
        cloud = Cloud(pki, window=16 * 1024 * 1024, frame_size=1024 * 1024)
        try:
            device.dial(cloud.url("wss" if args.wss else "https"))
            conn = cloud.next_connection()
            direct = lambda: Client(device.port, f"/recordings/{TOKEN}")  # noqa: E731

            def tunnel() -> Client:
                client = TunnelClient(device.port, f"/recordings/{TOKEN}")
                client.conn = conn
                return client

            runs: dict[str, list[tuple[int, float, float, float]]] = {"direct": [], "tunnel": []}
            for _ in range(2):
                runs["direct"].append(cloud.call(fast(device, args.fast_seconds, direct()), 600))
                runs["tunnel"].append(cloud.call(fast(device, args.fast_seconds, tunnel()), 600))
            best = {k: max(v, key=lambda r: r[0] / r[1]) for k, v in runs.items()}
            load = {}
            if args.sessions:
                n, hold = args.sessions, args.hold
                load["direct"] = cloud.call(
                    real_time([direct() for _ in range(n)], device, hold), 600
                )
                load["tunnel"] = cloud.call(
                    real_time([tunnel() for _ in range(n)], device, hold), 600
                )
        finally:
            device.stop()
            cloud.close()
    carrier = "wss (WebSocket frames)" if args.wss else "https (h2c-reverse)"
    rows = []
    for label, key in (("RTSP/TCP direct", "direct"), (f"uplink tunnel, {carrier}", "tunnel")):
        nbytes, seconds, device_cpu, own_cpu = best[key]
        rows.append(
            [
                f"{label}",
                f"{nbytes / 1e6 / seconds:.0f}",
                f"{nbytes / 1e6:.0f}",
                f"{seconds:.2f}",
                f"{device_cpu * 1e9 / nbytes:.2f}",
                f"{own_cpu * 1e9 / nbytes:.2f}",
            ]
        )
    print("\n(a) Rate-Control no, 1 session, loopback, best of 2")
    print(table(["path", "MB/s", "MB", "s", "device CPU s/GB", "client CPU s/GB"], rows))
    ratio = (best["tunnel"][0] / best["tunnel"][1]) / (best["direct"][0] / best["direct"][1])
    print(f"tunnel / direct throughput: {ratio:.2f}")
    if load:
        print(f"\n(b) {args.sessions} sessions at 1x ({mbit:.1f} Mbit/s each) for {args.hold:g} s")
        print(
            table(
                ["path", "device cores", "Mbit/s received", "device cores per session"],
                [
                    [label, f"{cores:.3f}", f"{rate:.1f}", f"{cores / args.sessions:.4f}"]
                    for label, (cores, rate) in (
                        ("RTSP/TCP direct", load["direct"]),
                        ("uplink tunnel", load["tunnel"]),
                    )
                ],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
