"""Celery tasks: thin wrappers that hand the work to plain modules."""

from __future__ import annotations

import logging

from celery import Task

from worker import dialing, dispatch, status
from worker.celery_app import DISPATCH_DUE_TASK, PLACE_CALL_TASK, app
from worker.settings import HANDLE_STATUS_TASK

log = logging.getLogger(__name__)

# A callback can overtake the create's answer; give the worker time to store the CallSid.
UNKNOWN_CALL_RETRIES = 5
UNKNOWN_CALL_RETRY_S = 2


@app.task(name=PLACE_CALL_TASK)
def place_call(job_id: str) -> None:
    dialing.dial(job_id)


@app.task(name=HANDLE_STATUS_TASK, bind=True, max_retries=UNKNOWN_CALL_RETRIES)
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
    ids = dispatch.claim_due_batch()
    for job_id in ids:
        place_call.apply_async((job_id,))
    return len(ids)
