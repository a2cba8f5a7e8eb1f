"""Start ``nvr serve`` as a subprocess for tests: free ports, temp data dir, wait for ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nvr_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nvr.cli", *args]


def run_nvr(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        nvr_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def get_json(url: str, timeout: float = 5) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class Daemon:
    """A running ``nvr serve`` bound to loopback on free ports."""

    def __init__(
        self, data_dir: Path, database_url: str, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.http_port = free_port()
        self.rtsp_port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"nvr-{self.http_port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            nvr_command(
                "serve",
                "--data-dir",
                str(data_dir),
                "--database-url",
                database_url,
                "--http-port",
                str(self.http_port),
                "--rtsp-port",
                str(self.rtsp_port),
                *extra,
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "NVR_HTTP_HOST": "127.0.0.1",
                "NVR_RTSP_HOST": "127.0.0.1",
                **(env or {}),
            },
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nvr exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, body = get_json(self.base_url + "/healthz", timeout=2)
                if status == 200:
                    return body
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"nvr not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
