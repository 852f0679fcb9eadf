"""Publish Twilio's callbacks as Celery tasks by name: one LPUSH, failing fast when the
broker is down.

The message is built by worker.adapters.task_messages (Celery's protocol 2 as kombu's
Redis transport stores it) and pushed with one redis-py command; the webhook never builds
a Celery app, nor imports the worker's tasks (they pull in SQLAlchemy and the models).

A broker outage is a quick error (Twilio's request and the gunicorn worker are both
waiting): a refused connection fails at once, an unanswered one within the timeouts.
After a Redis restart redis-py's pool replaces a closed connection as it hands it out, and
one retry on a fresh connection covers a connection dropped while in use.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.adapters.task_messages import TaskMessages
from worker.domain.names import EVENTS_QUEUE

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0

# What a publish raises when the message could not be handed to Redis.
BROKER_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)


class Publisher:
    """Sends Twilio's callbacks to the `events` queue as the tasks that handle them."""

    def __init__(self, broker_url: str) -> None:
        # The pool starts afresh in a forked process. Only a ConnectionError is retried:
        # after a timeout the LPUSH may have run, and a retry could push it twice.
        self.redis = redis.Redis.from_url(
            broker_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
        self.messages = TaskMessages()

    def publish(self, task: str, params: dict[str, str], idempotency_token: str | None,
                summary: tuple[str, ...]) -> None:
        """Raises one of BROKER_ERRORS when the message could not be handed to Redis.

        `summary` names the fields shown in the message headers.
        """
        kwargs = {"params": params, "idempotency_token": idempotency_token,
                  "source": "callback"}
        # A short repr for the headers (what Flower and `inspect` show): the call, not the
        # callers' numbers.
        kwargsrepr = repr({name: params.get(name) for name in summary})
        self.redis.lpush(EVENTS_QUEUE, self.messages.build(task, EVENTS_QUEUE, kwargs=kwargs,
                                                           kwargsrepr=kwargsrepr))
