"""Fixtures for end-to-end tests: a database per test on both backends, and the stack."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.servers import PostgresServer, RedisServer
from tests.support.simulator_fixtures import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN
from tests.support.stack import Stack, clean_environ

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: PostgresServer) -> str:
    """A database migrated once per session with `dialer db upgrade`, as documented; each test
    gets a copy of it (CREATE DATABASE ... TEMPLATE), which takes milliseconds instead of a
    migration run."""
    name = "migrated"
    url = postgres_server.create_database(name)
    subprocess.run([sys.executable, "-m", "worker.cli", "db", "upgrade"], check=True,
                   env={**clean_environ(), "DIALER_DATABASE_URL": url}, capture_output=True)
    return name


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database: SQLite migrates itself on first use; PostgreSQL is a copy
    of the session's migrated database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dialer.db'}"
    return request.getfixturevalue("postgres_server").create_database(
        "t" + uuid.uuid4().hex[:16], template=request.getfixturevalue("migrated_postgres"))


def use_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Point this test process (the producer side) at the same settings as the stack."""
    from worker import dialing, gateway, settings

    for key, value in env.items():
        if key.startswith(("DIALER_", "TWILIO_")):
            monkeypatch.setenv(key, value)
    for cached in (settings.get_settings, gateway.get_client, dialing.get_redis,
                   dialing.get_pacer):
        cached.cache_clear()
    if "worker.celery_app" in sys.modules:
        from worker.celery_app import app

        # The app reads the broker URL once, at import; every test shares one Redis.
        assert app.conf.broker_url == env["DIALER_REDIS_URL"], "one Redis per test session"


@pytest.fixture
def make_stack(tmp_path: Path, redis_server: RedisServer, database_url: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Stack]]:
    """make_stack(cps=..., time_scale=..., **settings) -> a Stack whose processes are not started.

    Redis is flushed first: each test starts with empty queues and pacing state.
    """
    redis.Redis.from_url(redis_server.url).flushall()
    made: list[tuple[Stack, Any]] = []

    def make(sim_cps: float = 1000, time_scale: float = 0.02, **settings: str) -> Stack:
        from simulator import Simulator

        sim = Simulator(account_sid=SIM_ACCOUNT_SID, auth_token=SIM_AUTH_TOKEN, cps=sim_cps,
                        time_scale=time_scale, seed=7).start()
        stack = Stack(tmp_path, redis_server.url, database_url, sim, **settings)
        made.append((stack, sim))
        use_settings(monkeypatch, stack.env)
        return stack

    yield make
    for stack, sim in made:
        stack.stop()
        sim.stop()
    _dispose_engine(database_url)


def _dispose_engine(url: str) -> None:
    from worker import db

    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def producer_env(database_url: str, redis_server: RedisServer,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """This process as a producer: settings for the database and Redis, no stack."""
    redis.Redis.from_url(redis_server.url).flushall()
    env = {"DIALER_DATABASE_URL": database_url, "DIALER_REDIS_URL": redis_server.url,
           "DIALER_DEFAULT_FROM": "+14155550100"}
    use_settings(monkeypatch, env)
    yield env
    _dispose_engine(database_url)
