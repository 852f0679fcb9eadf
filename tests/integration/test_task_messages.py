"""Our own protocol-2 messages against Celery's: both pushed to a real Redis and read back
with LRANGE, equal field by field except the ids each publish makes afresh.

The webhook (webhook/publisher.py) and the worker's broker (worker/adapters/broker.py)
build their task messages themselves (worker/adapters/task_messages.py); the worker
consumes them with kombu, so each must be exactly what `send_task` with the worker's
configuration pushes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.servers import RedisServer
from webhook.publisher import Publisher
from worker.adapters.broker import CeleryBroker, create_celery
from worker.domain.names import (
    DELIVER_NOTIFICATION_TASK,
    DIAL_QUEUE,
    EVENTS_QUEUE,
    HANDLE_AMD_TASK,
    HANDLE_RECORDING_TASK,
    HANDLE_STATUS_TASK,
    NOTIFY_QUEUE,
    PLACE_CALL_TASK,
)
from worker.settings import Settings

pytestmark = pytest.mark.integration

PARAMS = {"CallSid": "CA" + "0123456789abcdef" * 2, "CallStatus": "completed",
          "SequenceNumber": "3", "To": "+14155550123", "Note": "ünïcode \"quoted\" \\ /"}
SUMMARY = ("CallSid", "CallStatus", "SequenceNumber")
# Made afresh by every publish (ids), or by every app (Celery's reply_to is its app's id).
FRESH = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
         ("properties", "delivery_tag"), ("properties", "reply_to")}


def pushed(client: redis.Redis, queue: str = EVENTS_QUEUE) -> dict[str, Any]:
    """The one message in `queue`, taken off the list."""
    raw = client.lrange(queue, 0, -1)
    assert len(raw) == 1, raw
    client.delete(queue)
    return json.loads(raw[0])  # type: ignore[no-any-return]


def assert_same_but_ids(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert {k: v for k, v in fields(ours).items() if k not in FRESH} == \
        {k: v for k, v in fields(theirs).items() if k not in FRESH}
    assert ours["body"] == theirs["body"]  # the very bytes: a body holds no id
    assert list(ours) == list(theirs)  # the same fields in the same order, at every level
    assert list(ours["headers"]) == list(theirs["headers"])
    assert list(ours["properties"]) == list(theirs["properties"])
    # The ids: fresh for each message, the task's id repeated where Celery repeats it.
    headers, properties = ours["headers"], ours["properties"]
    assert headers["id"] == headers["root_id"] == properties["correlation_id"]
    assert headers["id"] != properties["delivery_tag"]
    assert headers["origin"] == f"gen{os.getpid()}@{socket.gethostname()}"


def fields(message: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """Every leaf of the message by its path, the decoded body's included."""
    out: dict[tuple[str, ...], Any] = {
        ("body", "decoded"): json.loads(base64.b64decode(message["body"]))}

    def walk(path: tuple[str, ...], value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk((*path, key), inner)
        else:
            out[path] = value

    walk((), message)
    return out


@pytest.mark.parametrize("task", [HANDLE_STATUS_TASK, HANDLE_RECORDING_TASK, HANDLE_AMD_TASK])
@pytest.mark.parametrize("token", ["AC0123-token", None])
def test_message_equals_celerys_send_task_but_for_ids(redis_server: RedisServer,
                                                      broker: redis.Redis, task: str,
                                                      token: str | None) -> None:
    settings = Settings.from_env({"DIALER_REDIS_URL": redis_server.url})
    celery = create_celery(settings, set_as_current=False)
    kwargs = {"params": PARAMS, "idempotency_token": token, "source": "callback"}
    kwargsrepr = repr({name: PARAMS.get(name) for name in SUMMARY})
    try:
        celery.send_task(task, kwargs=kwargs, queue=EVENTS_QUEUE, argsrepr="()",
                         kwargsrepr=kwargsrepr)
    finally:
        celery.close()
    theirs = pushed(broker)

    Publisher(redis_server.url).publish(task, PARAMS, token, SUMMARY)
    assert_same_but_ids(pushed(broker), theirs)


@pytest.mark.parametrize(("task", "queue", "publish"), [
    (PLACE_CALL_TASK, DIAL_QUEUE, CeleryBroker.publish_place_calls),
    (DELIVER_NOTIFICATION_TASK, NOTIFY_QUEUE, CeleryBroker.publish_notifications)])
def test_the_workers_own_messages_equal_celerys_send_task_but_for_ids(
        redis_server: RedisServer, broker: redis.Redis, task: str, queue: str,
        publish: Any) -> None:
    """As producers and the dispatcher published them with send_task, routed by task name."""
    settings = Settings.from_env({"DIALER_REDIS_URL": redis_server.url})
    celery = create_celery(settings, set_as_current=False)
    try:
        celery.send_task(task, ("0123abcd",))
    finally:
        celery.close()
    theirs = pushed(broker, queue)
    publish(CeleryBroker(broker), ["0123abcd"])
    assert_same_but_ids(pushed(broker, queue), theirs)


def test_a_batch_is_taken_off_its_queue_in_the_order_given(broker: redis.Redis) -> None:
    CeleryBroker(broker).publish_place_calls([f"job{n}" for n in range(2500)])
    taken = []
    while raw := broker.rpop(DIAL_QUEUE):  # as kombu's BRPOP takes them
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        taken.append(body[0][0])
    assert taken == [f"job{n}" for n in range(2500)]


def test_every_message_has_ids_of_its_own(redis_server: RedisServer,
                                          broker: redis.Redis) -> None:
    """Kombu keeps an unacknowledged message by its delivery_tag: two alike would be one."""
    publisher = Publisher(redis_server.url)
    for _ in range(3):
        publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
    messages = [json.loads(raw) for raw in broker.lrange(EVENTS_QUEUE, 0, -1)]
    assert len({m["headers"]["id"] for m in messages}) == 3
    assert len({m["properties"]["delivery_tag"] for m in messages}) == 3


def test_a_pooled_connection_redis_dropped_is_reconnected(redis_server: RedisServer,
                                                          broker: redis.Redis) -> None:
    """A restart drops every pooled connection: the next publish reconnects and goes out."""
    publisher = Publisher(redis_server.url)
    publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
    broker.delete(EVENTS_QUEUE)
    broker.client_kill_filter(_type="normal", skipme=True)
    publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
    assert broker.llen(EVENTS_QUEUE) == 1


@contextmanager
def dropping_first_lpush(port: int) -> Iterator[str]:
    """A TCP proxy to Redis that closes the first connection as its first LPUSH arrives,
    unforwarded: a connection lost while in use, after the pool handed it out."""
    listener = socket.create_server(("127.0.0.1", 0))
    dropped = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket, watch: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if watch and b"LPUSH" in data and not dropped.is_set():
                    dropped.set()
                    break
                dst.sendall(data)
        for end in (src, dst):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", port))
                for args in ((client, upstream, True), (upstream, client, False)):
                    threading.Thread(target=pipe, args=args, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()
    assert dropped.is_set(), "the proxy dropped no connection"


def test_a_connection_dropped_in_use_is_retried_once(redis_server: RedisServer,
                                                     broker: redis.Redis) -> None:
    with dropping_first_lpush(redis_server.port) as url:
        publisher = Publisher(url)
        try:
            publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
        finally:
            publisher.redis.close()
    assert broker.llen(EVENTS_QUEUE) == 1


def test_broker_refusing_connections_fails_fast(tmp_path: Path) -> None:
    own = RedisServer(tmp_path).start()
    publisher = Publisher(own.url)
    publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
    own.stop()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        publisher.publish(HANDLE_STATUS_TASK, PARAMS, None, SUMMARY)
    assert time.monotonic() - started < 1
