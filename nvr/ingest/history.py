"""RecordingHistory events (search.md §7): when data and recording start and stop.

The store knows exactly where a track's contiguous data begins and ends (its runs), so the
``Track/State`` events come from its listener hooks, stamped with the media time of the first
and last sample rather than the time we noticed. ``Recording/State`` follows job activity: the
recording engine says when a recording gains its first or loses its last recording track.
Both go to the event bus; the Search service indexes them from there.
"""

from __future__ import annotations

import threading

from nvr.events import EventBus, Items
from nvr.store.types import NullListener, TrackRef, now_us

__all__ = ["RECORDING_STATE", "TRACK_STATE", "RecordingHistory"]

TRACK_STATE = "tns1:RecordingHistory/Track/State"
RECORDING_STATE = "tns1:RecordingHistory/Recording/State"


def _bool(value: bool) -> str:
    return "true" if value else "false"


class RecordingHistory(NullListener):
    """A :class:`~nvr.store.types.StoreListener` that publishes RecordingHistory events.

    ``run_started``/``run_ended`` are called on the store's writer thread; the bus is
    thread-safe and publishing is quick, so they publish directly.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._recording: dict[str, bool] = {}
        self._tracks: set[tuple[str, str]] = set()

    # ---- store listener -----------------------------------------------------------------------

    def run_started(self, track: TrackRef, start_us: int) -> None:
        self._track_state(track, True, start_us)

    def run_ended(self, track: TrackRef, end_us: int) -> None:
        self._track_state(track, False, end_us)

    def _track_state(self, track: TrackRef, present: bool, time_us: int) -> None:
        if not track.recording_token:
            return
        with self._lock:
            self._tracks.add((track.recording_token, track.track_token))
        self._bus.publish_property(
            TRACK_STATE,
            _track_source(track.recording_token, track.track_token),
            (("IsDataPresent", _bool(present)),),
            time_us=time_us,
        )

    # ---- recording engine ---------------------------------------------------------------------

    def recording_state(
        self, recording_token: str, is_recording: bool, time_us: int | None = None
    ) -> None:
        """Publish ``Recording/State`` if it differs from the last one for this recording."""
        with self._lock:
            if self._recording.get(recording_token, False) == is_recording:
                return
            self._recording[recording_token] = is_recording
        self._bus.publish_property(
            RECORDING_STATE,
            (("RecordingToken", recording_token),),
            (("IsRecording", _bool(is_recording)),),
            time_us=now_us() if time_us is None else time_us,
        )

    def forget_recording(self, recording_token: str) -> None:
        """The recording is deleted: its properties no longer exist (Deleted messages)."""
        with self._lock:
            had_state = self._recording.pop(recording_token, None) is not None
            tracks = sorted(t for r, t in self._tracks if r == recording_token)
            self._tracks -= {(recording_token, t) for t in tracks}
        if had_state:
            self._bus.delete_property(RECORDING_STATE, (("RecordingToken", recording_token),))
        for track in tracks:
            self._bus.delete_property(TRACK_STATE, _track_source(recording_token, track))


def _track_source(recording_token: str, track_token: str) -> Items:
    return (("RecordingToken", recording_token), ("Track", track_token))
