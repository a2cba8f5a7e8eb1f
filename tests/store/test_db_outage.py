"""A PostgreSQL outage while recording (DESIGN §4: the writer never waits for the database).

The store talks to PostgreSQL through a TCP proxy on 127.0.0.1 that the test cuts (every
connection closed, new ones refused) and restores. While it is cut, media keeps being written
(the files grow) and the index lags behind (status says so); once it is back the index catches
up, and every frame submitted reads back, byte-identical, with no gap in the timeline.

The daemon's start with an unreachable database (clear message, non-zero exit) is covered by
``tests/test_cli.py``.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from nvr.db.engine import make_engine
from nvr.db.models import Segment
from nvr.store import Store, TrackHandle
from nvr.store.settings import StorageDirSettings, StoreSettings
from tests.conftest import BACKEND
from tests.store.helpers import T0, SynthFrame, audio_frames, video_frames

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="a database outage needs a database server: PostgreSQL only (SQLite is a local file)",
)

SPEED = 4
"""Stream seconds per wall second: more segments are born during the outage."""


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; :meth:`cut` closes every connection and
    refuses new ones (the listening socket is closed), :meth:`restore` listens again on the
    same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self.connections = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.restore()

    def restore(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(sock, self._stop), daemon=True).start()

    def cut(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            _close(s)

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if stop.is_set():  # cut while connecting
                    _close(client)
                    _close(server)
                    return
                self._conns.update((client, server))
                self.connections += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


class Feeder:
    """Video (25 fps, ~20 kB) and audio (50 frames/s) at ``SPEED`` times real time."""

    def __init__(self, handles: dict[str, TrackHandle]) -> None:
        self.handles = handles
        self.sent: dict[str, dict[int, tuple[int, int]]] = {t: {} for t in handles}
        streams = {
            "VIDEO001": video_frames(10**9, gop=25, mean_size=20_000, seed=11),
            "AUDIO001": audio_frames(10**9, seed=12),
        }
        self._next: dict[str, SynthFrame] = {t: next(s) for t, s in streams.items()}
        self._streams = streams
        self._stream_us = 0

    def feed(self, seconds: float) -> None:
        start = time.monotonic()
        base = self._stream_us
        while (elapsed := time.monotonic() - start) < seconds:
            self._stream_us = base + int(elapsed * SPEED * 1_000_000)
            for track, frame in self._next.items():
                while frame.capture_us <= T0 + self._stream_us:
                    assert self.handles[track].submit(*frame.args), "queue refused a frame"
                    self.sent[track][frame.capture_us] = (zlib.crc32(frame.data), len(frame.data))
                    frame = self._next[track] = next(self._streams[track])
            time.sleep(0.005)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy(("127.0.0.1", 5432))
    yield p
    p.close()


def media_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.suffix != ".json")


def indexed_frames(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.coalesce(func.sum(Segment.frames), 0))) or 0)


def test_recording_goes_on_through_a_database_outage(
    engine: Engine, proxy: TcpProxy, tmp_path: Path
) -> None:
    url = engine.url
    assert (url.host, url.port or 5432) == ("127.0.0.1", 5432), "the proxy forwards there"
    proxied = make_engine(url.set(port=proxy.port).render_as_string(hide_password=False))
    media = tmp_path / "media"
    settings = StoreSettings(
        dirs=(StorageDirSettings(path=media, min_free_bytes=0),),
        segment_seconds=2.0,
        checkpoint_seconds=0.25,
    )
    store = Store(proxied, settings)
    store.open()
    store.create_recording("rec")
    handles = {t: store.open_writer("rec", t) for t in ("VIDEO001", "AUDIO001")}
    service = store.writer_service
    feeder = Feeder(handles)
    try:
        feeder.feed(1.0)
        assert service.flush(10)
        before = indexed_frames(engine)
        assert before == sum(len(s) for s in feeder.sent.values())
        checkpoints_before = service.index_status().checkpoints
        disk_before = media_bytes(media)

        proxy.cut()
        written_at_cut = sum(h.status().frames_written for h in handles.values())
        lag = []
        for _ in range(6):
            feeder.feed(0.5)
            written = sum(h.status().frames_written for h in handles.values())
            lag.append(written - indexed_frames(engine))
        during = service.index_status()
        disk_during = media_bytes(media)
        indexed_during = indexed_frames(engine)
        written_during = sum(h.status().frames_written for h in handles.values())
        assert not during.database_ok and during.failures > 0 and during.last_error
        assert during.pending_segments > 0
        assert indexed_during == before, "something was indexed through a cut connection?"
        assert disk_during > disk_before, "media stopped being written during the outage"
        assert written_during > written_at_cut and lag == sorted(lag)

        proxy.restore()
        feeder.feed(1.0)
        assert service.flush(30), "the index did not catch up"
        after = service.index_status()
        assert after.database_ok and after.pending_segments == 0 and after.last_error is None
        statuses = [h.status() for h in handles.values()]
        assert store.close(30)
    finally:
        store.close()
        proxied.dispose()
    assert all(s.dropped_queue == s.dropped_error == 0 for s in statuses)

    # A fresh start on a direct connection: nothing to recover, every frame is there.
    check = Store(engine, settings)
    report = check.open()
    try:
        assert report.recovery.changes == 0, str(report.recovery)
        for track, sent in feeder.sent.items():
            reader = check.reader("rec", track)
            frames = list(reader.frames(0))
            assert [f.time_us for f in frames] == sorted(sent), f"{track}: frames missing"
            for f in frames:
                assert (zlib.crc32(f.data), len(f.data)) == sent[f.time_us]
            assert len(reader.data_intervals()) == 1, f"{track}: a gap in the timeline"
        segments = len(check.reader("rec", "VIDEO001").segments())
    finally:
        check.close()
    total = sum(len(s) for s in feeder.sent.values())
    print(
        f"\noutage of 3 s ({3 * SPEED} s of stream): media grew {disk_before / 1e6:.1f} -> "
        f"{disk_during / 1e6:.1f} MB, index frozen at {indexed_during} frames while "
        f"{written_during} were written (lag {lag[0]} -> {lag[-1]} frames, "
        f"{during.pending_segments} segments pending, {during.failures} failed checkpoints: "
        f"{during.last_error!r}); after restore: {after.checkpoints - checkpoints_before} "
        f"checkpoints, all {total} frames in {segments} video segments read back, one run per "
        f"track; {proxy.connections} proxied connections"
    )
