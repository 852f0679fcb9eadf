"""Publish Twilio's callbacks as tasks by name, failing fast when the broker is down.

The webhook never imports the worker's Celery app or tasks (they pull in SQLAlchemy and
the models); this is a second, bare Celery app that only knows how to `send_task`. A broker
outage must turn into a quick 503 (Twilio's request and the gunicorn worker are both
waiting), not into Celery's default of retrying the connection for seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from kombu.transport import redis as kombu_redis

from worker.domain.names import EVENTS_QUEUE

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0

# What a publish raises when Redis cannot be reached or drops the connection.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, redis.ConnectionError,
                                                  redis.TimeoutError, OSError)


class _HeldClientChannel(kombu_redis.Channel):
    """kombu's Redis channel with one `redis.Redis` per channel instead of one per command.

    kombu builds a new `redis.Redis` in `conn_or_acquire` for every LPUSH it publishes:
    a quarter of a publish's CPU, mostly filling its table of response callbacks. The
    client only wraps the channel's own connection pool and is thread-safe, so holding one
    changes nothing else: the same pool, sockets, timeouts and errors. kombu has no setting
    for it, hence a subclass overriding that one method. A channel lives in one producer
    of the pool, made lazily in the process that publishes (never across a fork); when
    kombu replaces the channel's pool (a disconnect), a new client is made on the new one.
    Publishing only: a worker consuming through it did not recover from a Redis restart
    (tests/faults), so the worker keeps kombu's own channel.
    """

    _held_client: redis.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        if client:
            yield client
            return
        held = self._held_client
        if held is None or held.connection_pool is not self.pool:
            held = self._held_client = self._create_client()
        yield held


class _HeldClientTransport(kombu_redis.Transport):
    Channel = _HeldClientChannel


def _transport_for(broker_url: str) -> type[kombu_redis.Transport] | None:
    """The transport class for a Celery app's `broker_transport`, or None for kombu's own.

    Only plain redis://: kombu picks rediss:// (and its SSL defaults) by the scheme name.
    """
    return _HeldClientTransport if urlsplit(broker_url).scheme == "redis" else None


class Publisher:
    """Sends Twilio's callbacks to the `events` queue as the tasks that handle them."""

    def __init__(self, broker_url: str) -> None:
        self.celery = Celery("dialer-webhook", broker=broker_url, set_as_current=False)
        self.celery.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            broker_connection_timeout=CONNECT_TIMEOUT_S,
            broker_transport_options={
                "socket_connect_timeout": CONNECT_TIMEOUT_S,
                "socket_timeout": SOCKET_TIMEOUT_S,
                "max_retries": 0,  # kombu's own reconnect loop, which defaults to seconds
            },
            # One retry on a fresh connection covers a pooled connection that went stale
            # when Redis restarted; a broker that is really down still fails within ~2 s.
            task_publish_retry=True,
            task_publish_retry_policy={"max_retries": 1, "interval_start": 0,
                                       "interval_step": 0, "interval_max": 0},
        )
        transport = _transport_for(broker_url)
        if transport is not None:
            self.celery.conf.broker_transport = transport

    def publish(self, task: str, params: dict[str, str], idempotency_token: str | None,
                summary: tuple[str, ...]) -> None:
        """Raises one of BROKER_ERRORS when the message could not be handed to Redis.

        `summary` names the fields shown in the message headers.
        """
        kwargs: dict[str, Any] = {"params": params, "idempotency_token": idempotency_token,
                                  "source": "callback"}
        # Our own short repr for the message headers (what Flower and `inspect` show): Celery
        # would otherwise saferepr every field, the callers' numbers included, at about a
        # tenth of the webhook's CPU per callback.
        kwargsrepr = repr({name: params.get(name) for name in summary})
        self.celery.send_task(task, kwargs=kwargs, queue=EVENTS_QUEUE, argsrepr="()",
                              kwargsrepr=kwargsrepr)
