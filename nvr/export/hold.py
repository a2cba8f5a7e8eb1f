"""A retention hold over the range an export is reading, for as long as the export runs.

Retention keeps every frame inside an unexpired ``holds`` row (and the key frame before it).
The rows carry a lease rather than no expiry: a job renews it while it runs and deletes the
rows when it ends, and if the process dies mid-export the hold lapses by itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Hold
from nvr.store.types import now_us

LEASE_US = 15 * 60 * 1_000_000
RENEW_EVERY_S = 60.0


class ExportHold:
    """One ``holds`` row per exported track of a recording."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        recording_id: int,
        track_ids: Sequence[int],
        start_us: int,
        end_us: int,
        reason: str,
    ) -> None:
        self._sessions = sessions
        self.recording_id = recording_id
        self.track_ids = tuple(track_ids)
        self.start_us = start_us
        self.end_us = end_us
        self.reason = reason[:256]
        self._ids: list[int] = []
        self._renewed = 0.0

    def acquire(self) -> None:
        now = now_us()
        with self._sessions.begin() as s:
            for track_id in self.track_ids:
                self._ids.append(
                    s.execute(
                        insert(Hold)
                        .values(
                            recording_id=self.recording_id,
                            track_id=track_id,
                            start_us=self.start_us,
                            end_us=self.end_us,
                            reason=self.reason,
                            created_us=now,
                            expires_us=now + LEASE_US,
                        )
                        .returning(Hold.id)
                    ).scalar_one()
                )
        self._renewed = time.monotonic()

    def _update(self, **values: int) -> None:
        if self._ids:
            with self._sessions.begin() as s:
                s.execute(update(Hold).where(Hold.id.in_(self._ids)).values(**values))

    def widen(self, start_us: int) -> None:
        """Move the start back (the export starts at the key frame before the asked time)."""
        if start_us < self.start_us:
            self.start_us = start_us
            self._update(start_us=start_us, expires_us=now_us() + LEASE_US)

    def renew(self, *, force: bool = False) -> None:
        """Extend the lease; cheap to call often (touches the database once a minute)."""
        if force or time.monotonic() - self._renewed >= RENEW_EVERY_S:
            self._update(expires_us=now_us() + LEASE_US)
            self._renewed = time.monotonic()

    def release(self) -> None:
        if self._ids:
            with self._sessions.begin() as s:
                s.execute(delete(Hold).where(Hold.id.in_(self._ids)))
            self._ids = []
