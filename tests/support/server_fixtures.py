"""Session-wide real servers: one redis-server and one PostgreSQL cluster per test run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.servers import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the test run's Redis, emptied first: the broker as the worker reads it.
    (The unit tests' own `broker` is an in-memory stand-in.)"""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: that is 0700, and under root the cluster runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="dialer-pg-"))
    os.chmod(workdir, 0o755)
    server = PostgresServer(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
