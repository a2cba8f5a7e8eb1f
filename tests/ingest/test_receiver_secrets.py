"""Camera passwords at rest: the receivers table never holds them in plaintext, rows written
before sealing are sealed on the next start, and the camera still gets the password."""

from __future__ import annotations

import os
import time

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nvr.db.models import Receiver as ReceiverRow
from nvr.events import EventBus
from nvr.ingest.receivers import ReceiverConfig
from nvr.protocol.rtsp_auth import ServerAuthenticator
from nvr.secretbox import SecretBox
from tests.ingest.fake_camera import FakeCamera
from tests.ingest.test_receivers import manager, run, until

PASSWORD = "Pa:ss@w%C3%B6rd"
"""As written in the URI; the camera sees it percent-decoded."""
DECODED = "Pa:ss@wörd"


def raw_rows(sessions: sessionmaker[Session]) -> list[bytes]:
    """Every receivers row as the database returns it, all columns as bytes."""
    with sessions() as s:
        rows = s.execute(text("SELECT * FROM receivers")).all()
    return [
        b"|".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
        for row in rows
    ]


def assert_no_password(sessions: sessionmaker[Session], *secrets: str) -> None:
    rows = raw_rows(sessions)
    assert rows
    for row in rows:
        for secret in secrets:
            assert secret.encode() not in row, row


def test_the_raw_row_never_holds_the_password(sessions: sessionmaker[Session]) -> None:
    box = SecretBox(os.urandom(32))
    uri = f"rtsp://operator:{PASSWORD}@192.0.2.10:554/onvif/1"
    other = "rtsp://operator:n3w-s3cret@192.0.2.11/onvif/2"

    async def scenario() -> None:
        m = manager(sessions, EventBus(), box=box)
        await m.start()
        r = await m.create(ReceiverConfig("NeverConnect", uri))
        assert_no_password(sessions, PASSWORD, DECODED)
        await m.configure(r.token, ReceiverConfig("NeverConnect", other))
        assert_no_password(sessions, PASSWORD, "n3w-s3cret")
        await m.set_mode(r.token, "AutoConnect")
        assert_no_password(sessions, "n3w-s3cret")
        await m.stop()

        again = manager(sessions, EventBus(), box=box)
        await again.start()
        assert again.get(r.token).config == ReceiverConfig("AutoConnect", other)
        await again.stop()

        with_another_key = manager(sessions, EventBus(), box=SecretBox(os.urandom(32)))
        await with_another_key.start()  # the password is left out, the receiver stays
        assert with_another_key.get(r.token).config.media_uri == (
            "rtsp://operator@192.0.2.11/onvif/2"
        )
        await with_another_key.stop()

    run(scenario())
    with sessions() as s:
        row = s.query(ReceiverRow).one()
        assert row.media_uri == "rtsp://operator@192.0.2.11/onvif/2"
        assert row.media_password_enc is not None


def test_a_plaintext_row_is_sealed_on_start_and_still_connects(
    sessions: sessionmaker[Session],
) -> None:
    box = SecretBox(os.urandom(32))

    async def scenario() -> None:
        auth = ServerAuthenticator("fake", algorithms=("MD5",))
        async with FakeCamera(authenticator=auth, passwords={"op": DECODED}) as fake:
            uri = fake.url.replace("rtsp://", f"rtsp://op:{PASSWORD}@")
            with sessions.begin() as s:  # as written before passwords were sealed
                s.add(
                    ReceiverRow(
                        token="legacy",
                        mode="AlwaysConnect",
                        media_uri=uri,
                        options={},
                        created_us=time.time_ns() // 1000,
                    )
                )
            assert PASSWORD.encode() in raw_rows(sessions)[0]

            m = manager(sessions, EventBus(), box=box)
            await m.start()
            assert_no_password(sessions, PASSWORD, DECODED)
            assert m.get("legacy").config.media_uri == uri
            await until(lambda: m.state("legacy")[0] == "Connected")
            assert m.status("legacy").auth_failures == 0
            await m.stop()

            again = manager(sessions, EventBus(), box=box)  # the sealed row connects too
            await again.start()
            await until(lambda: again.state("legacy")[0] == "Connected")
            await again.stop()
        assert fake.methods().count("PLAY") == 2

    run(scenario())
