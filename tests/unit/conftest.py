"""The engine's context with stand-ins: a SQLite file per test, the broker, Twilio and the
pace in memory. No server, no subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.standins import (
    ACCOUNT_SID,
    CALLER_ID,
    TO,
    VOICE_URL,
    Dialed,
    FakeTwilio,
    InMemoryBroker,
    InstantPacer,
    RecordingNotifier,
)
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.producer.jobs import enqueue_call
from worker.settings import Settings
from worker.store.database import Database


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    """Settings a test changes: `@pytest.mark.parametrize("settings_overrides", [{...}])`."""
    return {}


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
def twilio() -> FakeTwilio:
    return FakeTwilio()


@pytest.fixture
def pacer() -> InstantPacer:
    return InstantPacer()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def engine_ctx(tmp_path: Path, settings_overrides: dict[str, str], broker: InMemoryBroker,
               twilio: FakeTwilio, pacer: InstantPacer,
               notifier: RecordingNotifier) -> Iterator[Context]:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    settings = Settings.from_env({
        "DIALER_DEFAULT_FROM": CALLER_ID,
        "DIALER_PUBLIC_URL": "https://dialer.example.com",
        "DIALER_DATABASE_URL": url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "x",
        **settings_overrides,
    })
    database = Database(url)
    yield Context(settings=settings, database=database, broker=broker, twilio=twilio,
                  pacer=pacer, sleep=lambda _seconds: None, notifier=notifier)
    database.dispose()


@pytest.fixture
def dialed(engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> Dialed:
    """A job enqueued and dialed through the broker: its call is placed, no callback yet."""
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    dial(engine_ctx, broker.take())
    (call_sid,) = twilio.calls
    return Dialed(job_id, call_sid)
