"""Celery tasks: thin wrappers that hand the work to the engine with the process's context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.signals import worker_process_init, worker_ready
from sqlalchemy.exc import OperationalError

from worker.celery_app import app
from worker.domain.names import (
    APPLY_RETENTION_TASK,
    DELIVER_NOTIFICATION_TASK,
    DISPATCH_DUE_TASK,
    HANDLE_AMD_TASK,
    HANDLE_RECORDING_TASK,
    HANDLE_STATUS_TASK,
    PLACE_CALL_TASK,
    RECONCILE_TASK,
    RELAY_NOTIFICATIONS_TASK,
)
from worker.engine import (
    dialing,
    dispatch,
    metrics,
    notifications,
    reconcile,
    recordings,
    retention,
    status,
)
from worker.settings import get_settings
from worker.wiring import default_context

log = logging.getLogger(__name__)

# A callback can overtake the create's answer; give the worker time to store the CallSid.
# A short broker countdown, not a schedule in the jobs table: 5 x 2 s stays far inside the
# visibility timeout, and what it waits for is already stored (a status event as an
# orphan, adopted by record_created or the reconciler; a recording by its CallSid), so a
# retry lost with Redis costs latency, not the callback. An AMD result has no row of its
# own until its attempt is known (docs/WEBHOOK.md says what is lost then).
UNKNOWN_CALL_RETRIES = 5
UNKNOWN_CALL_RETRY_S = 2
# A database outage of up to a few minutes must not cost a callback (the
# claim and the event's unique key make every step safe to run again).
DB_RETRIES = 10
DB_RETRY_BACKOFF_MAX_S = 60


@app.task(name=PLACE_CALL_TASK, autoretry_for=(OperationalError,), retry_backoff=True,
          retry_backoff_max=DB_RETRY_BACKOFF_MAX_S, max_retries=DB_RETRIES)
def place_call(job_id: str) -> None:
    dialing.dial(default_context(), job_id)


# Twilio's callbacks: retried through a database outage, and a few times while their CallSid
# is not stored yet. The webhook sends each with the same kwargs; the recording and AMD
# handlers need only the params (a repeat is told by the RecordingSid, or the attempt's result).
CALLBACK_TASK: dict[str, Any] = {
    "bind": True, "autoretry_for": (OperationalError,), "retry_backoff": True,
    "retry_backoff_max": DB_RETRY_BACKOFF_MAX_S, "max_retries": DB_RETRIES}


def _until_known(task: Task, handle: Callable[[], object], given_up: str) -> None:
    """Run a callback's handler; retry it while no attempt holds its CallSid, then log
    `given_up` (formatted with the CallSid)."""
    try:
        handle()
    except status.UnknownCall as exc:
        if task.request.retries >= UNKNOWN_CALL_RETRIES:
            log.warning(given_up, exc)
            return
        raise task.retry(countdown=UNKNOWN_CALL_RETRY_S) from exc


@app.task(name=HANDLE_STATUS_TASK, **CALLBACK_TASK)
def handle_status(self: Task, params: dict[str, str], idempotency_token: str | None = None,
                  source: str = "callback") -> None:
    _until_known(self, lambda: status.handle_status(default_context(), params,
                                                    idempotency_token, source),
                 "status for unknown call %s stored; it matches no attempt")


@app.task(name=HANDLE_RECORDING_TASK, **CALLBACK_TASK)
def handle_recording(self: Task, params: dict[str, str], idempotency_token: str | None = None,
                     source: str = "callback") -> None:
    _until_known(self, lambda: recordings.handle_recording(default_context(), params),
                 "recording of unknown call %s stored; it joins the attempt that holds that "
                 "CallSid, if one ever does")


@app.task(name=HANDLE_AMD_TASK, **CALLBACK_TASK)
def handle_amd(self: Task, params: dict[str, str], idempotency_token: str | None = None,
               source: str = "callback") -> None:
    _until_known(self, lambda: recordings.handle_amd(default_context(), params),
                 "AMD result for unknown call %s dropped: no attempt holds it")


@app.task(name=DISPATCH_DUE_TASK)
def dispatch_due() -> int:
    return dispatch.dispatch_due(default_context())


@app.task(name=RECONCILE_TASK)
def reconcile_calls() -> dict[str, int]:
    return reconcile.reconcile(default_context())


# No autoretry: a delivery that fails waits in its row, and the relay publishes it again
# when it is due (a Celery countdown would sit in a worker's memory on Redis). A message
# carries one event or several (the broker's publish_notifications).
@app.task(name=DELIVER_NOTIFICATION_TASK)
def deliver_notification(*notification_ids: str) -> list[str]:
    return notifications.deliver_many(default_context(), notification_ids)


@app.task(name=RELAY_NOTIFICATIONS_TASK)
def relay_notifications() -> int:
    return notifications.relay(default_context())


@app.task(name=APPLY_RETENTION_TASK)
def apply_retention() -> dict[str, int]:
    return retention.apply_retention(default_context())


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    default_context().database.dispose_after_fork()


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    port = get_settings().metrics_port
    if port:
        metrics.start_server(port, default_context().database)
