"""UplinkRepository on the database of the backend under test (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nvr.uplink.repository import MAX_ADDRESS_LENGTH, UplinkLimitReached, UplinkRepository
from nvr.uplink.settings import UplinkConfiguration

MTLS = UplinkConfiguration(
    remote_address="https://cloud.example.com/uplink",
    user_level=("Operator",),
    certificate_id="device-cert",
    cert_path_validation_policy_id="cloud-ca",
)
TOKEN = UplinkConfiguration(
    remote_address="wss://vms.example.net:8443/h2c",
    user_level=("Administrator", "User"),
    authorization_server="oauth-1",
)


def test_upsert_adds_then_replaces_keyed_by_address(sessions: sessionmaker[Session]) -> None:
    repo = UplinkRepository(sessions)
    assert repo.list() == [] and repo.get(MTLS.remote_address) is None
    assert repo.upsert(MTLS) is True
    assert repo.upsert(TOKEN) is True
    assert repo.list() == [MTLS, TOKEN]
    changed = UplinkConfiguration(
        remote_address=MTLS.remote_address, user_level=("User",), authorization_server="oauth-2"
    )
    assert repo.upsert(changed) is False
    assert repo.list() == [changed, TOKEN]  # creation order kept, optional fields cleared
    assert repo.get(MTLS.remote_address) == changed
    assert UplinkRepository(sessions).list() == [changed, TOKEN]  # nothing cached


def test_delete(sessions: sessionmaker[Session]) -> None:
    repo = UplinkRepository(sessions)
    repo.upsert(MTLS)
    repo.upsert(TOKEN)
    assert repo.delete(MTLS.remote_address) is True
    assert repo.delete(MTLS.remote_address) is False
    assert repo.delete("https://never.example.com") is False
    assert repo.list() == [TOKEN]


def test_limit_counts_new_addresses_only(sessions: sessionmaker[Session]) -> None:
    repo = UplinkRepository(sessions)
    repo.upsert(MTLS, max_count=2)
    repo.upsert(TOKEN, max_count=2)
    third = UplinkConfiguration(remote_address="https://third.example.com", user_level=("User",))
    with pytest.raises(UplinkLimitReached):
        repo.upsert(third, max_count=2)
    assert repo.upsert(MTLS, max_count=2) is False  # replacing is always allowed
    assert [c.remote_address for c in repo.list()] == [MTLS.remote_address, TOKEN.remote_address]


def test_address_length_bound(sessions: sessionmaker[Session]) -> None:
    repo = UplinkRepository(sessions)
    longest = "https://h/" + "a" * (MAX_ADDRESS_LENGTH - 10)
    repo.upsert(UplinkConfiguration(remote_address=longest, user_level=("User",)))
    assert repo.get(longest) is not None
    with pytest.raises(ValueError):
        repo.upsert(UplinkConfiguration(remote_address=longest + "b", user_level=("User",)))
