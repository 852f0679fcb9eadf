"""Celery: the app's configuration, and the broker as the engine uses it (publish place_call
messages by task name, read how many wait in the dial queue)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from kombu import Queue
from redis import Redis

from worker.domain.names import (
    APPLY_RETENTION_TASK,
    DEFAULT_QUEUE,
    DELIVER_NOTIFICATION_TASK,
    DIAL_QUEUE,
    DISPATCH_DUE_TASK,
    EVENTS_QUEUE,
    HANDLE_AMD_TASK,
    HANDLE_RECORDING_TASK,
    HANDLE_STATUS_TASK,
    NOTIFY_QUEUE,
    PLACE_CALL_TASK,
    QUEUES,
    RECONCILE_TASK,
    RELAY_NOTIFICATIONS_TASK,
)
from worker.domain.notifications import NOTIFICATIONS_PER_MESSAGE
from worker.settings import Settings


def create_celery(settings: Settings, *, include: Sequence[str] = (),
                  set_as_current: bool = True) -> Celery:
    """The Celery app every process of the dialer configures alike: the worker's (with the
    tasks), and the one a producer publishes with (by task name, not current)."""
    app = Celery("dialer", broker=settings.redis_url, include=list(include),
                 set_as_current=set_as_current)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        timezone="UTC",
        enable_utc=True,
        task_queues=tuple(Queue(name) for name in QUEUES),
        task_default_queue=DEFAULT_QUEUE,
        task_routes={
            PLACE_CALL_TASK: {"queue": DIAL_QUEUE},
            HANDLE_STATUS_TASK: {"queue": EVENTS_QUEUE},
            HANDLE_RECORDING_TASK: {"queue": EVENTS_QUEUE},
            HANDLE_AMD_TASK: {"queue": EVENTS_QUEUE},
            DELIVER_NOTIFICATION_TASK: {"queue": NOTIFY_QUEUE},
        },
        # A dial message is acknowledged only once handled, one at a time per
        # process, and put back if the process dies: the claim makes a redelivery harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "dispatch-due": {"task": DISPATCH_DUE_TASK, "schedule": settings.dispatch_interval},
            "reconcile": {"task": RECONCILE_TASK, "schedule": settings.reconcile_interval},
            "relay-notifications": {"task": RELAY_NOTIFICATIONS_TASK,
                                    "schedule": settings.notify_relay_interval},
            "apply-retention": {"task": APPLY_RETENTION_TASK,
                                "schedule": settings.retention_interval},
        },
    )
    return app


class CeleryBroker:
    def __init__(self, app: Celery, redis: Redis) -> None:
        self._app = app
        self._redis = redis

    def publish_place_calls(self, job_ids: Sequence[str]) -> None:
        """One broker connection and pipelined LPUSHes (kombu's producer batch); raises
        what the broker raises, without retrying (the caller has a fallback)."""
        with self._app.producer_or_acquire() as producer, producer.batch():
            for job_id in job_ids:
                self._app.send_task(PLACE_CALL_TASK, (job_id,), retry=False,
                                    producer=producer)

    def dial_queue_length(self) -> int:
        # kombu's Redis transport keeps a queue's waiting messages in a list of its name.
        return int(self._redis.llen(DIAL_QUEUE))

    def publish_notifications(self, notification_ids: Sequence[str]) -> None:
        """As publish_place_calls, for deliver_notification on the notify queue: a message
        per NOTIFICATIONS_PER_MESSAGE events."""
        with self._app.producer_or_acquire() as producer, producer.batch():
            for start in range(0, len(notification_ids), NOTIFICATIONS_PER_MESSAGE):
                self._app.send_task(
                    DELIVER_NOTIFICATION_TASK,
                    tuple(notification_ids[start:start + NOTIFICATIONS_PER_MESSAGE]),
                    retry=False, producer=producer)
