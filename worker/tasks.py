"""Celery tasks: thin wrappers that hand the work to plain modules."""

from __future__ import annotations

import logging

from celery import Task
from sqlalchemy.exc import OperationalError

from worker import dialing, dispatch, reconcile, status
from worker.celery_app import (
    DIAL_QUEUE,
    DISPATCH_DUE_TASK,
    PLACE_CALL_TASK,
    RECONCILE_TASK,
    app,
)
from worker.producer import publish_place_calls
from worker.settings import HANDLE_STATUS_TASK

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
    dialing.dial(job_id)


@app.task(name=HANDLE_STATUS_TASK, bind=True, autoretry_for=(OperationalError,),
          retry_backoff=True, retry_backoff_max=DB_RETRY_BACKOFF_MAX_S, max_retries=DB_RETRIES)
def handle_status(self: Task, params: dict[str, str], idempotency_token: str | None = None,
                  source: str = "callback") -> None:
    try:
        status.handle_status(params, idempotency_token, source)
    except status.UnknownCall as exc:
        if self.request.retries >= UNKNOWN_CALL_RETRIES:
            log.warning("status for unknown call %s stored; it matches no attempt", exc)
            return
        raise self.retry(countdown=UNKNOWN_CALL_RETRY_S) from exc


@app.task(name=DISPATCH_DUE_TASK)
def dispatch_due() -> int:
    # kombu's Redis transport keeps a queue's waiting messages in a list of its name.
    ids = dispatch.claim_due_batch(dial_queue_empty=dialing.get_redis().llen(DIAL_QUEUE) == 0)
    publish_place_calls(ids)
    return len(ids)


@app.task(name=RECONCILE_TASK)
def reconcile_calls() -> dict[str, int]:
    return reconcile.reconcile()
