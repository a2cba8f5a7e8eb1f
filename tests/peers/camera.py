"""Start and stop the GStreamer fake camera (``gst_camera.py``) from the project's Python.

The camera must run under Debian's ``/usr/bin/python3`` (PyGObject with GstRtspServer only
imports there, DESIGN.md §11), so it is a subprocess: started on a kernel-chosen loopback port,
ready once it prints ``READY <port>``, killed at teardown. :meth:`GstCamera.kill` and
:meth:`GstCamera.restart` (same port) serve the reconnect tests.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("gst_camera.py")
READY_TIMEOUT = 15.0


@cache
def gstreamer_rtsp_server_missing() -> str | None:
    """Why the camera cannot run here, or None when it can."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer"
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode:
        return "GstRtspServer does not import: " + result.stderr.strip().splitlines()[-1]
    return None


def require_gstreamer_camera() -> None:
    """Fail (or, with NVR_TEST_ALLOW_MISSING=1, skip) when the camera cannot run."""
    why = gstreamer_rtsp_server_missing()
    if why is None:
        return
    message = (
        f"GStreamer RTSP server unavailable ({why}): install gir1.2-gst-rtsp-server-1.0, "
        "python3-gi and the gstreamer1.0-plugins-{base,good,bad,ugly} packages"
    )
    if os.environ.get("NVR_TEST_ALLOW_MISSING"):
        pytest.skip(message)
    pytest.fail(message)


class GstCamera:
    """One fake camera process; see ``gst_camera.py --help`` for what the options mean."""

    def __init__(
        self,
        kind: str = "h264",
        *,
        mount: str = "/cam",
        user: str | None = None,
        password: str = "",
        fps: int = 25,
        gop: int = 25,
        session_timeout: int = 0,
        port: int = 0,
    ) -> None:
        self.kind = kind
        self.mount = mount
        self.user = user
        self.password = password
        self.fps = fps
        self.gop = gop
        self.session_timeout = session_timeout
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        # Kept for the camera's lifetime (diagnostics when it fails); closed by close().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115

    def command(self) -> list[str]:
        cmd = [
            SYSTEM_PYTHON,
            str(SCRIPT),
            f"--port={self.port}",
            f"--mount={self.mount}",
            f"--kind={self.kind}",
            f"--fps={self.fps}",
            f"--gop={self.gop}",
            f"--session-timeout={self.session_timeout}",
        ]
        if self.user is not None:
            cmd += [f"--user={self.user}", f"--password={self.password}"]
        return cmd

    def start(self) -> GstCamera:
        """Start the process and wait for its READY line (the port is then known)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("camera already running")
        self._stderr.seek(0)
        self._stderr.truncate()
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True
        )
        line = self._read_ready_line()
        words = line.split()
        if len(words) < 2 or words[0] != "READY":
            self.stop()
            raise RuntimeError(f"camera did not start: {line!r}\n{self.stderr_tail()}")
        self.port = int(words[1])
        return self

    def _read_ready_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + READY_TIMEOUT
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.stop()
                    raise RuntimeError(f"camera not READY in {READY_TIMEOUT} s")
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    break
                buffer += chunk
        return buffer.decode("utf-8", "replace").strip()

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def url(self, userinfo: str | None = None) -> str:
        """The camera's RTSP URL, optionally with ``user:password`` userinfo."""
        auth = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.mount}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the camera (SIGKILL by default: a crash, no goodbye on the wire)."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(sig)
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()

    def restart(self) -> GstCamera:
        """Kill and start again on the same port (a camera reboot)."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Terminate the process and release its pipes."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    def close(self) -> None:
        self.stop()
        self._stderr.close()


@contextmanager
def gst_camera(kind: str = "h264", **options: object) -> Iterator[GstCamera]:
    """A running camera for the ``with`` block (skips/fails the test if GStreamer is missing)."""
    require_gstreamer_camera()
    camera = GstCamera(kind, **options)  # type: ignore[arg-type]
    try:
        camera.start()
        yield camera
    finally:
        camera.close()
