"""The context built from the environment: the one place settings become connections.

Built once per process, on first use, by the edges that need it: the Celery tasks, the
producer API (`worker.api`) and the CLI. Nothing connects until it is used, so a producer
holds no Twilio credentials and opens no Redis connection it does not need.
"""

from __future__ import annotations

import functools

from redis import Redis

from worker.adapters.broker import CeleryBroker, create_celery
from worker.adapters.pacing import Pacer
from worker.adapters.twilio import TwilioCalls
from worker.engine.context import Context
from worker.settings import Settings, get_settings
from worker.store.database import Database


def build_context(settings: Settings) -> Context:
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    # The pace is the account's: every worker dialing for it shares one key. Without
    # credentials the create fails anyway, before the key matters.
    pacer = Pacer(redis, settings.twilio_account_sid or "", settings.calls_per_second,
                  settings.max_pacing_wait)
    broker = CeleryBroker(create_celery(settings, set_as_current=False), redis)
    return Context(settings=settings, database=Database(settings.database_url), broker=broker,
                   twilio=TwilioCalls(settings), pacer=pacer)


@functools.cache
def default_context() -> Context:
    return build_context(get_settings())


def reset_default_context() -> None:
    """Forget the settings and the context read so far, closing the database's connections:
    for a process (a test, a benchmark) that changes its environment."""
    if default_context.cache_info().currsize:
        default_context().database.dispose()
    default_context.cache_clear()
    get_settings.cache_clear()
