"""Celery: the app's configuration, and the broker as the engine uses it (publish place_call
and deliver_notification messages by task name, read how many wait in the dial queue)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from kombu import Queue
from redis import Redis

from worker.adapters.task_messages import TaskMessages
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

# Messages per LPUSH: a batch of any size goes out in a few commands of bounded size.
PUSH_CHUNK = 1000


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
    """Publishes the dialer's tasks by name with one LPUSH per queue and batch (see
    task_messages), and reads how long the dial queue is."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._messages = TaskMessages()

    def _push(self, task: str, queue: str, messages_args: Sequence[tuple[str, ...]]) -> None:
        """A message of `task` for each tuple of arguments, several per LPUSH: BRPOP takes
        them in the order given. Raises what Redis raises, without retrying (the callers
        have a fallback)."""
        for start in range(0, len(messages_args), PUSH_CHUNK):
            self._redis.lpush(queue, *(self._messages.build(task, queue, args=args)
                                       for args in messages_args[start:start + PUSH_CHUNK]))

    def publish_place_calls(self, job_ids: Sequence[str]) -> None:
        self._push(PLACE_CALL_TASK, DIAL_QUEUE, [(job_id,) for job_id in job_ids])

    def dial_queue_length(self) -> int:
        # kombu's Redis transport keeps a queue's waiting messages in a list of its name.
        return int(self._redis.llen(DIAL_QUEUE))

    def publish_notifications(self, notification_ids: Sequence[str]) -> None:
        """A message per NOTIFICATIONS_PER_MESSAGE events."""
        self._push(DELIVER_NOTIFICATION_TASK, NOTIFY_QUEUE, [
            tuple(notification_ids[start:start + NOTIFICATIONS_PER_MESSAGE])
            for start in range(0, len(notification_ids), NOTIFICATIONS_PER_MESSAGE)])
