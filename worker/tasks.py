"""Celery tasks: thin wrappers that hand the work to the engine with the process's context."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.signals import worker_process_init, worker_ready
from sqlalchemy.exc import OperationalError

from worker.celery_app import app
from worker.domain.names import (
    DELIVER_NOTIFICATION_TASK,
    DISPATCH_DUE_TASK,
    HANDLE_STATUS_TASK,
    PLACE_CALL_TASK,
    RECONCILE_TASK,
    RELAY_NOTIFICATIONS_TASK,
)
from worker.engine import dialing, dispatch, metrics, notifications, reconcile, status
from worker.settings import get_settings
from worker.wiring import default_context

log = logging.getLogger(__name__)

# A callback can overtake the create's answer; give the worker time to store the CallSid.
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


@app.task(name=HANDLE_STATUS_TASK, bind=True, autoretry_for=(OperationalError,),
          retry_backoff=True, retry_backoff_max=DB_RETRY_BACKOFF_MAX_S, max_retries=DB_RETRIES)
def handle_status(self: Task, params: dict[str, str], idempotency_token: str | None = None,
                  source: str = "callback") -> None:
    try:
        status.handle_status(default_context(), params, idempotency_token, source)
    except status.UnknownCall as exc:
        if self.request.retries >= UNKNOWN_CALL_RETRIES:
            log.warning("status for unknown call %s stored; it matches no attempt", exc)
            return
        raise self.retry(countdown=UNKNOWN_CALL_RETRY_S) from exc


@app.task(name=DISPATCH_DUE_TASK)
def dispatch_due() -> int:
    return dispatch.dispatch_due(default_context())


@app.task(name=RECONCILE_TASK)
def reconcile_calls() -> dict[str, int]:
    return reconcile.reconcile(default_context())


# No autoretry: a delivery that fails waits in its row, and the relay publishes it again
# when it is due (a Celery countdown would sit in a worker's memory on Redis).
@app.task(name=DELIVER_NOTIFICATION_TASK)
def deliver_notification(notification_id: str) -> str:
    return notifications.deliver(default_context(), notification_id)


@app.task(name=RELAY_NOTIFICATIONS_TASK)
def relay_notifications() -> int:
    return notifications.relay(default_context())


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    default_context().database.dispose_after_fork()


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    port = get_settings().metrics_port
    if port:
        metrics.start_server(port, default_context().database)
