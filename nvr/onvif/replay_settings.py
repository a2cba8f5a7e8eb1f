"""The Replay service's SessionTimeout: persisted with the other ONVIF settings, bounded by config.

A VMS sets it with SetReplayConfiguration; until then ``replay.session_timeout_seconds`` is the
value. The advertised SessionTimeoutRange is that config field's own bounds, so the file, the
environment and ONVIF all accept the same values. RTSP ``Session: …;timeout=`` carries whole
seconds, so that is the unit stored.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from nvr.config import FIELDS_BY_KEY, Config
from nvr.onvif.device_settings import DeviceSettings

SESSION_TIMEOUT_KEY: Final = "onvif.replay.session_timeout"
_FIELD: Final = FIELDS_BY_KEY["replay.session_timeout_seconds"]
assert _FIELD.low is not None and _FIELD.high is not None
SESSION_TIMEOUT_RANGE: Final = (int(_FIELD.low), int(_FIELD.high))
"""Smallest and largest SessionTimeout in seconds (trp:Capabilities@SessionTimeoutRange)."""


class ReplaySettings(DeviceSettings):
    """SessionTimeout in the ``meta`` table (blocking: call from worker threads)."""

    def __init__(self, sessions: sessionmaker[Session], config: Config) -> None:
        super().__init__(sessions)
        self._default = int(config["replay.session_timeout_seconds"])

    def session_timeout(self) -> int:
        """The current timeout in seconds, clamped into the range (bounds may have changed)."""
        low, high = SESSION_TIMEOUT_RANGE
        return min(max(int(self._get(SESSION_TIMEOUT_KEY, self._default)), low), high)

    def set_session_timeout(self, seconds: int) -> None:
        low, high = SESSION_TIMEOUT_RANGE
        if not low <= seconds <= high:
            raise ValueError(f"session timeout {seconds} s is outside {low}-{high} s")
        self._set(SESSION_TIMEOUT_KEY, seconds)
