"""Device settings a VMS may change over ONVIF, persisted in the ``meta`` table.

Configurable scopes, discovery mode, the time zone and date/time type, and the device's
stable endpoint UUID (created on first use; WS-Discovery and GetEndpointReference share it).
Values are JSON under ``onvif.*`` keys, so no migration is needed for new settings.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Meta

SCOPES: Final = "onvif.scopes"
DISCOVERY_MODE: Final = "onvif.discovery_mode"
DATE_TIME: Final = "onvif.date_time"
ENDPOINT_UUID: Final = "onvif.endpoint_uuid"


@dataclass(frozen=True, slots=True)
class DateTimeSettings:
    date_time_type: str = "NTP"
    daylight_savings: bool = False
    time_zone: str = "UTC0"


class DeviceSettings:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _get(self, key: str, default: Any) -> Any:
        with self._sessions() as s:
            row = s.get(Meta, key)
            return default if row is None else json.loads(row.value)

    def _set(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        with self._sessions.begin() as s:
            row = s.get(Meta, key)
            if row is None:
                s.add(Meta(key=key, value=text))
            else:
                row.value = text

    def scopes(self) -> list[str]:
        return list(self._get(SCOPES, []))

    def set_scopes(self, scopes: list[str]) -> None:
        self._set(SCOPES, scopes)

    def discovery_mode(self) -> str:
        return str(self._get(DISCOVERY_MODE, "Discoverable"))

    def set_discovery_mode(self, mode: str) -> None:
        self._set(DISCOVERY_MODE, mode)

    def date_time(self) -> DateTimeSettings:
        return DateTimeSettings(**self._get(DATE_TIME, {}))

    def set_date_time(self, value: DateTimeSettings) -> None:
        self._set(
            DATE_TIME,
            {
                "date_time_type": value.date_time_type,
                "daylight_savings": value.daylight_savings,
                "time_zone": value.time_zone,
            },
        )

    def endpoint_uuid(self) -> str:
        """A UUID for this device that survives restarts (created on first call)."""
        existing = self._get(ENDPOINT_UUID, None)
        if existing:
            return str(existing)
        try:
            with self._sessions.begin() as s:
                s.add(Meta(key=ENDPOINT_UUID, value=json.dumps(str(uuid.uuid4()))))
        except IntegrityError:
            pass  # another thread or process won the race; use its value
        return str(self._get(ENDPOINT_UUID, None))
