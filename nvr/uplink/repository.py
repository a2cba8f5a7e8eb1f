"""The uplink configurations in the database (table ``uplinks``), keyed by remote address.

Blocking: call from worker threads. The Uplink service writes through it and the connection
manager reads it at start; the live status is not stored here (see ``UplinkState``).
"""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Uplink
from nvr.uplink.settings import UplinkConfiguration

MAX_ADDRESS_LENGTH = int(Uplink.__table__.c.remote_address.type.length)  # type: ignore[attr-defined]
"""Longest RemoteAddress the table holds."""


class UplinkLimitReached(Exception):
    """A new configuration would exceed the number of uplinks allowed."""


def _configuration(row: Uplink) -> UplinkConfiguration:
    return UplinkConfiguration(
        remote_address=row.remote_address,
        user_level=tuple(row.user_level),
        certificate_id=row.certificate_id,
        cert_path_validation_policy_id=row.cert_path_validation_policy_id,
        authorization_server=row.authorization_server,
    )


def _assign(row: Uplink, cfg: UplinkConfiguration) -> None:
    row.user_level = list(cfg.user_level)
    row.certificate_id = cfg.certificate_id
    row.cert_path_validation_policy_id = cfg.cert_path_validation_policy_id
    row.authorization_server = cfg.authorization_server


class UplinkRepository:
    """CRUD of :class:`UplinkConfiguration`; ``list()`` keeps the order they were created in."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(self) -> list[UplinkConfiguration]:
        with self._sessions() as s:
            rows = s.scalars(select(Uplink).order_by(Uplink.id))
            return [_configuration(row) for row in rows]

    def get(self, remote_address: str) -> UplinkConfiguration | None:
        with self._sessions() as s:
            row = s.scalar(select(Uplink).where(Uplink.remote_address == remote_address))
            return None if row is None else _configuration(row)

    def upsert(self, cfg: UplinkConfiguration, *, max_count: int | None = None) -> bool:
        """Replace the configuration with ``cfg.remote_address`` or add it; True if added.

        With ``max_count``, adding one beyond that many raises :class:`UplinkLimitReached`
        (replacing never does). Two concurrent adds of the same address: one adds, the other
        replaces.
        """
        if len(cfg.remote_address) > MAX_ADDRESS_LENGTH:
            raise ValueError(f"remote address longer than {MAX_ADDRESS_LENGTH} characters")
        try:
            return self._upsert(cfg, max_count)
        except IntegrityError:  # the same address was added meanwhile: now it is a replace
            return self._upsert(cfg, max_count)

    def _upsert(self, cfg: UplinkConfiguration, max_count: int | None) -> bool:
        with self._sessions.begin() as s:
            row = s.scalar(select(Uplink).where(Uplink.remote_address == cfg.remote_address))
            if row is not None:
                _assign(row, cfg)
                return False
            if max_count is not None:
                count = s.scalar(select(func.count()).select_from(Uplink)) or 0
                if count >= max_count:
                    raise UplinkLimitReached(f"{count} uplinks are configured, the most allowed")
            row = Uplink(remote_address=cfg.remote_address, created_us=time.time_ns() // 1000)
            _assign(row, cfg)
            s.add(row)
            return True

    def delete(self, remote_address: str) -> bool:
        """Remove the configuration; False if there was none with that address."""
        with self._sessions.begin() as s:
            row = s.scalar(select(Uplink).where(Uplink.remote_address == remote_address))
            if row is None:
                return False
            s.delete(row)
            return True


__all__ = ["MAX_ADDRESS_LENGTH", "UplinkLimitReached", "UplinkRepository"]
