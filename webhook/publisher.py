"""Publish Twilio's callbacks as Celery tasks by name: one LPUSH, failing fast when the
broker is down.

The message is Celery's task protocol 2 as kombu's Redis transport stores it, built here
and pushed with one redis-py command. Celery's `send_task` goes through options, routing,
signals and kombu's producer, channel and serializer registry: 43 % of the webhook's CPU
per callback under load (py-spy), 0.28-0.29 ms of CPU per publish in-process, against
0.08-0.12 ms here for the same message (best of 20 x 200 against a local Redis; see
docs/WEBHOOK.md). It never imports the worker's Celery app or tasks (they pull in
SQLAlchemy and the models). The worker consumes the message with kombu unchanged: the same
task name, kwargs, queue and headers, and a `delivery_tag` of its own so acks_late and the
visibility timeout redeliver it as any other. tests/integration/test_webhook_message.py
holds it equal, field by field, to what `send_task` pushes with the worker's configuration.

A broker outage is a quick error (Twilio's request and the gunicorn worker are both
waiting): a refused connection fails at once, an unanswered one within the timeouts.
After a Redis restart redis-py's pool replaces a closed connection as it hands it out, and
one retry on a fresh connection covers a connection dropped while in use.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import redis
from celery.utils.nodenames import anon_nodename
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.domain.names import EVENTS_QUEUE

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0

# What a publish raises when the message could not be handed to Redis.
BROKER_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

# The parts of protocol 2 a callback's task never sets (no chain, chord, ETA or limits).
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_DELIVERY_INFO = {"exchange": "", "routing_key": EVENTS_QUEUE}


def task_message(task: str, kwargs: dict[str, Any], kwargsrepr: str, *, task_id: str,
                 delivery_tag: str, reply_to: str, origin: str) -> dict[str, Any]:
    """The protocol-2 message of `task(**kwargs)` on the events queue, as kombu's Redis
    channel serialises it: JSON body, base64-encoded, headers and properties beside it."""
    body = json.dumps([[], kwargs, _EMBED]).encode()
    return {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": task_id, "parent_id": None,
            "argsrepr": "()", "kwargsrepr": kwargsrepr, "origin": origin,
            "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": reply_to, "argsrepr": "()",
            "kwargsrepr": kwargsrepr, "delivery_mode": 2, "delivery_info": _DELIVERY_INFO,
            "priority": 0, "body_encoding": "base64", "delivery_tag": delivery_tag,
        },
    }


class Publisher:
    """Sends Twilio's callbacks to the `events` queue as the tasks that handle them."""

    def __init__(self, broker_url: str) -> None:
        # The pool starts afresh in a forked process. Only a ConnectionError is retried:
        # after a timeout the LPUSH may have run, and a retry could push it twice.
        self.redis = redis.Redis.from_url(
            broker_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
        # Celery's reply_to is its app's id; no result is ever sent back to it.
        self.reply_to = str(uuid.uuid4())

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
        task_id = str(uuid.uuid4())
        message = task_message(task, kwargs, kwargsrepr, task_id=task_id,
                               delivery_tag=str(uuid.uuid4()), reply_to=self.reply_to,
                               origin=anon_nodename())
        self.redis.lpush(EVENTS_QUEUE, json.dumps(message))
