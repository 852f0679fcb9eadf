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

from harness.servers import PostgresServer, RedisServer
from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, Stack, clean_environ
from simulator import Simulator
from worker.engine.context import Context
from worker.wiring import default_context, reset_default_context

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
    """Point this test process (the producer side, `worker.api`, `default_context()`) at the
    same settings as the stack."""
    for key, value in env.items():
        if key.startswith(("DIALER_", "TWILIO_")):
            monkeypatch.setenv(key, value)
    reset_default_context()
    if "worker.celery_app" in sys.modules:
        # The worker's app reads the broker URL once, at import; every test shares one Redis.
        app = sys.modules["worker.celery_app"].app
        assert app.conf.broker_url == env["DIALER_REDIS_URL"], "one Redis per test session"


@pytest.fixture
def ctx(request: pytest.FixtureRequest) -> Context:
    """The context this process's settings give, for tests that call the engine or the
    producer functions directly. With `producer_env`, built after it whatever the order of
    the test's arguments; a test using `make_stack` calls `default_context()` after
    `make_stack(...)` instead, since the settings are known only then."""
    if "producer_env" in request.fixturenames:
        request.getfixturevalue("producer_env")
    return default_context()


@pytest.fixture
def make_stack(tmp_path: Path, redis_server: RedisServer, database_url: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Stack]]:
    """make_stack(cps=..., time_scale=..., **settings) -> a Stack whose processes are not started.

    Redis is flushed first: each test starts with empty queues and pacing state.
    """
    redis.Redis.from_url(redis_server.url).flushall()
    made: list[tuple[Stack, Any]] = []

    def make(sim_cps: float = 1000, time_scale: float = 0.02, **settings: str) -> Stack:
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
    reset_default_context()


@pytest.fixture
def producer_env(database_url: str, redis_server: RedisServer,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """This process as a producer: settings for the database and Redis, no stack."""
    redis.Redis.from_url(redis_server.url).flushall()
    env = {"DIALER_DATABASE_URL": database_url, "DIALER_REDIS_URL": redis_server.url,
           "DIALER_DEFAULT_FROM": "+14155550100"}
    use_settings(monkeypatch, env)
    yield env
    reset_default_context()
