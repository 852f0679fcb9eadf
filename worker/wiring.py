"""The context built from the environment: the one place settings become connections.

Built once per process, on first use, by the edges that need it: the Celery tasks, the
producer API (`worker.api`) and the CLI. Nothing connects until it is used, so a producer
holds no Twilio credentials and opens no Redis connection it does not need.
"""

from __future__ import annotations

from redis import Redis

from worker.adapters.broker import CeleryBroker
from worker.adapters.http import PooledNotifier
from worker.adapters.pacing import AccountPacer
from worker.adapters.twilio import TwilioCalls
from worker.engine.context import Context
from worker.settings import Settings, get_settings
from worker.store.database import Database


def build_context(settings: Settings) -> Context:
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    broker = CeleryBroker(redis)
    return Context(settings=settings, database=Database(settings.database_url), broker=broker,
                   twilio=TwilioCalls(settings), pacer=AccountPacer(redis, settings),
                   notifier=PooledNotifier())


_default: Context | None = None


def default_context() -> Context:
    """This process's context: the one `set_default_context` gave, else built from the
    environment on first use."""
    global _default
    if _default is None:
        _default = build_context(get_settings())
    return _default


def set_default_context(ctx: Context) -> None:
    """Run this process's tasks and producer calls with `ctx`: e.g. a benchmark's worker
    with another pacer. Set before the worker forks, every prefork child inherits it."""
    global _default
    _default = ctx


def reset_default_context() -> None:
    """Forget the settings and the context read so far, closing the database's connections:
    for a process (a test, a benchmark) that changes its environment."""
    global _default
    if _default is not None:
        _default.database.dispose()
    _default = None
    get_settings.cache_clear()
