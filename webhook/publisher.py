"""Publish `handle_status` by name, failing fast when the broker is down.

The webhook never imports the worker's Celery app or tasks (they pull in SQLAlchemy and
the models); this is a second, bare Celery app that only builds and sends the message. A
broker outage must turn into a quick 503 (Twilio's request and the gunicorn worker are both
waiting), not into Celery's default of retrying the connection for seconds.

Publishing is most of the webhook's CPU per callback, so it skips what `send_task` does for
a caller we are not (routing tables, parent-task lookup, an AsyncResult) and what kombu's
Redis channel redoes per message (a new `redis.Redis`); the message itself is still built
and sent by Celery's own `create_task_message` and `send_task_message`, as `send_task` does.
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
from kombu.utils.uuid import uuid

from worker.settings import EVENTS_QUEUE, HANDLE_STATUS_TASK

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0

# What a publish raises when Redis cannot be reached or drops the connection.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, redis.ConnectionError,
                                                  redis.TimeoutError, OSError)


class _HeldClientChannel(kombu_redis.Channel):
    """kombu's Redis channel, with one `redis.Redis` per channel instead of one per command.

    kombu's `conn_or_acquire` builds a new `redis.Redis` for every LPUSH: a quarter of a
    publish's CPU, mostly its table of response callbacks. That client only wraps the
    channel's own connection pool and is thread-safe, so reusing it changes nothing else: the
    same pool, sockets, timeouts and errors. A channel lives inside one producer of the
    producer pool, created lazily in the process that publishes (never across a fork); when
    kombu replaces the channel's pool (a disconnect), a new client is made on the new one.
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


class Publisher:
    """Sends status callbacks to the `events` queue as `dialer.handle_status` tasks."""

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
        if urlsplit(broker_url).scheme == "redis":
            # Only plain redis://: kombu picks rediss:// (its SSL defaults) by the scheme name.
            self.celery.conf.broker_transport = _HeldClientTransport
        self._amqp = self.celery.amqp
        self._queue = self._amqp.queues[EVENTS_QUEUE]

    def publish_status(self, params: dict[str, str], idempotency_token: str | None) -> None:
        """Raises one of BROKER_ERRORS when the message could not be handed to Redis."""
        kwargs: dict[str, Any] = {"params": params, "idempotency_token": idempotency_token,
                                  "source": "callback"}
        # Our own short repr for the message headers (what Flower and `inspect` show): Celery
        # would otherwise saferepr every field, the callers' numbers included, at about a
        # tenth of the webhook's CPU per callback.
        summary = repr({"CallSid": params.get("CallSid"), "CallStatus": params.get("CallStatus"),
                        "SequenceNumber": params.get("SequenceNumber")})
        # What `send_task(HANDLE_STATUS_TASK, kwargs=kwargs, queue=EVENTS_QUEUE, argsrepr="()",
        # kwargsrepr=summary)` hands these two calls, message and properties alike.
        message = self._amqp.create_task_message(
            uuid(), HANDLE_STATUS_TASK, (), kwargs, reply_to=self.celery.thread_oid,
            ignore_result=None, argsrepr="()", kwargsrepr=summary)
        # The pool's producers (and their connections) are made lazily in this process and
        # lent to one thread at a time.
        with self.celery.producer_or_acquire() as producer, \
                producer.connection._reraise_as_library_errors():
            # Celery declares the queue on every publish and kombu skips it once this
            # connection has (its cache is keyed by the entity's hash), but only after copying
            # the queue and its exchange to check: a sixth of a publish. Same check, no copies.
            declared = hash(self._queue) in producer.connection.declared_entities
            self._amqp.send_task_message(producer, HANDLE_STATUS_TASK, message,
                                         queue=self._queue, declare=[] if declared else None,
                                         argsrepr="()", kwargsrepr=summary)
