"""The producer API: `from worker import enqueue_call, get_job, cancel_job`."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from worker import dnc, validation
from worker.db import session_scope
from worker.lifecycle import is_terminal
from worker.logs import mask
from worker.models import FINAL_JOB_STATUSES, Job, JobStatus, utcnow
from worker.settings import get_settings

log = logging.getLogger(__name__)


def enqueue_call(
    to: str,
    from_: str | None = None,
    *,
    url: str | None = None,
    twiml: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
    retry_on: Iterable[str] | None = None,
    retry_delays: Iterable[int] | None = None,
    campaign_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    call_options: Mapping[str, Any] | None = None,
) -> str:
    """Store a call job and return its id; the same idempotency_key returns the same job.

    Raises ValueError naming the field for bad input, and then stores nothing.
    """
    settings = get_settings()
    url, twiml = validation.check_voice_instructions(url, twiml)
    job = Job(
        id=uuid.uuid4().hex,
        to=validation.normalize_to(to),
        from_=validation.normalize_from(from_ if from_ is not None else settings.default_from),
        url=url,
        twiml=twiml,
        idempotency_key=validation.check_idempotency_key(idempotency_key),
        max_attempts=validation.check_max_attempts(max_attempts, settings.max_attempts),
        retry_on=validation.check_retry_on(retry_on, settings.retry_on),
        retry_delays=validation.check_retry_delays(retry_delays, settings.retry_delays),
        campaign_id=campaign_id,
        metadata_=validation.check_metadata(metadata),
        call_options=validation.check_call_options(call_options),
        status=JobStatus.QUEUED,
        next_attempt_at=utcnow(),
        queued_at=utcnow(),
        attempts=0,
    )
    try:
        with session_scope() as session:
            if dnc.is_listed(session, job.to):
                raise ValueError(f"to: {job.to} is on the do-not-call list")
            session.add(job)
    except IntegrityError:
        # The unique constraint decides between concurrent producers, not a prior read.
        if job.idempotency_key is None:
            raise
        with session_scope() as session:
            existing = session.scalar(
                select(Job.id).where(Job.idempotency_key == job.idempotency_key))
        if existing is None:
            raise
        return existing
    publish_place_call(job.id)
    log.info("job %s enqueued to %s", job.id, mask(job.to))
    return job.id


def publish_place_call(job_id: str) -> None:
    """The fast path after commit; if the broker refuses, the dispatcher publishes it."""
    from worker.tasks import place_call

    try:
        place_call.apply_async((job_id,), retry=False)
    except Exception:
        log.warning("could not publish job %s; the dispatcher will", job_id, exc_info=True)
        with session_scope() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                            .values(status=JobStatus.SCHEDULED, queued_at=None))


def get_job(job_id: str) -> Job | None:
    """The job with its attempts loaded, detached from any session, or None."""
    with session_scope() as session:
        return session.get(Job, job_id)


@dataclass(frozen=True)
class CancelResult:
    job_id: str
    canceled: bool
    status: str
    message: str


def cancel_job(job_id: str) -> CancelResult:
    """Cancel a job: never dialed if it was waiting; its live call ended if it was dialing.

    A final job stays as it is; the result says so. An unknown id raises ValueError.
    """
    now = utcnow()
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise ValueError(f"job_id: no job {job_id!r}")
        if job.status in FINAL_JOB_STATUSES:
            return CancelResult(job_id, False, job.status, f"job is already {job.status}")
        waiting = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DIALING)
        won = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(waiting))
            .values(status=JobStatus.CANCELED, outcome="canceled", updated_at=now)).rowcount
        live = [a for a in job.attempt_rows if a.call_sid and not is_terminal(a.status)]
    if not won:
        return cancel_job(job_id)  # it changed under us; report what it is now
    for attempt in live:
        end_live_call(attempt.call_sid, attempt.status)
    return CancelResult(job_id, True, JobStatus.CANCELED,
                        "canceled; live call ended" if live else "canceled before dialing")


def end_live_call(call_sid: str, status: str) -> None:
    """`canceled` for a call not yet answered, `completed` (hang up) once it is."""
    from twilio.base.exceptions import TwilioRestException

    from worker import gateway

    first = "completed" if status == "in-progress" else "canceled"
    try:
        gateway.end_call(call_sid, first)
    except TwilioRestException as exc:
        if exc.status == 404:
            raise
        # It was answered (or ended) meanwhile: try the other way, once.
        with contextlib.suppress(TwilioRestException):
            gateway.end_call(call_sid, "canceled" if first == "completed" else "completed")
    log.info("ended call %s of a canceled job", call_sid)
