"""Celery task messages as kombu's Redis transport stores them, built here and pushed with
one LPUSH per message instead of through Celery's `send_task`.

A message is Celery's task protocol 2: a JSON body, base64-encoded, with the headers and
properties kombu's Redis channel writes beside it, and a `delivery_tag` of its own so the
worker's acks_late and visibility timeout redeliver it as any other. Celery's publish path
(options, routing, signals, kombu's producer, channel and serializer registry) costs three
times the CPU of the same bytes built here (docs/WEBHOOK.md, docs/BENCHMARKS.md), on paths
taken for every callback and every enqueued call; Celery has no lighter public way to
publish. tests/integration/test_task_messages.py holds each message equal, field by field,
to what `send_task` pushes with the worker's configuration.

Standard library and Celery's node-name helper only: the webhook builds its messages here
without the worker's database or Celery app.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from typing import Any

from celery.utils.nodenames import anon_nodename

# The parts of protocol 2 the dialer's tasks never set (no chain, chord, ETA or limits).
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class TaskMessages:
    """Builds the messages one publisher sends; `reply_to` is its own id, as Celery's is its
    app's (no result is ever sent back to it)."""

    def __init__(self) -> None:
        self.reply_to = str(uuid.uuid4())

    def build(self, task: str, queue: str, *, args: Sequence[Any] = (),
              kwargs: dict[str, Any] | None = None, kwargsrepr: str | None = None) -> str:
        """The JSON text to LPUSH onto `queue` for `task(*args, **kwargs)`.

        `kwargsrepr` replaces Celery's repr of the keyword arguments in the headers (what
        Flower and `inspect` show), e.g. to keep the callers' numbers out of them.
        """
        kwargs = kwargs or {}
        task_id = str(uuid.uuid4())
        argsrepr = repr(tuple(args))
        properties: dict[str, Any] = {"correlation_id": task_id, "reply_to": self.reply_to}
        if kwargsrepr is None:
            kwargsrepr = repr(kwargs)
        else:
            # send_task copies the reprs it is given into the properties too.
            properties.update(argsrepr=argsrepr, kwargsrepr=kwargsrepr)
        properties.update({
            "delivery_mode": 2,
            # The anonymous exchange, as Celery routes to a direct queue on Redis: a
            # redelivered message goes straight back to the list of its queue's name.
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        })
        body = json.dumps([list(args), kwargs, _EMBED]).encode()
        return json.dumps({
            "body": base64.b64encode(body).decode("ascii"),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None,
                "expires": None, "group": None, "group_index": None, "retries": 0,
                "timelimit": [None, None], "root_id": task_id, "parent_id": None,
                "argsrepr": argsrepr, "kwargsrepr": kwargsrepr, "origin": anon_nodename(),
                "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None,
                "stamps": {},
            },
            "properties": properties,
        })
