"""Jobs as plain data, for the CLI's tables and its --json alike, and the search behind
listings (`find_jobs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from worker.domain.statuses import JobStatus
from worker.domain.validation import normalize_to
from worker.engine import notifications
from worker.engine.context import Context
from worker.store.models import WITH_ATTEMPTS, Attempt, Event, Job


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_as_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "to": job.to, "from": job.from_, "url": job.url, "twiml": job.twiml,
        "application_sid": job.application_sid,
        "status": job.status, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "retry_on": job.retry_on, "retry_delays": job.retry_delays, "outcome": job.outcome,
        "error_code": job.error_code, "error_message": job.error_message,
        "next_attempt_at": _iso(job.next_attempt_at), "campaign_id": job.campaign_id,
        "idempotency_key": job.idempotency_key, "metadata": job.metadata_,
        "call_options": job.call_options, "notify_url": job.notify_url,
        "notify_each_attempt": job.notify_each_attempt, "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }


def attempt_as_dict(attempt: Attempt, events: list[Event]) -> dict[str, Any]:
    """The attempt as producers see it (notifications.attempt_as_dict), with what the CLI
    shows besides: its number, the recording the status callbacks named, its event timeline."""
    return {
        **notifications.attempt_as_dict(attempt),
        "number": attempt.ordinal, "recording_url": attempt.recording_url,
        "recording_sid": attempt.recording_sid,
        "recording_duration": attempt.recording_duration,
        "created_at": _iso(attempt.created_at),
        "events": [{"sequence": e.sequence_number, "status": e.call_status, "source": e.source,
                    "received_at": _iso(e.received_at)} for e in events],
    }


def job_detail(ctx: Context, job_id: str) -> dict[str, Any] | None:
    with ctx.database.session() as session:
        job = session.get(Job, job_id, options=[WITH_ATTEMPTS])
        if job is None:
            return None
        ids = [a.id for a in job.attempt_rows]
        events = session.scalars(select(Event).where(Event.attempt_id.in_(ids))
                                 .order_by(Event.sequence_number)).all() if ids else []
        detail = job_as_dict(job)
        detail["attempt_list"] = [
            attempt_as_dict(a, [e for e in events if e.attempt_id == a.id])
            for a in job.attempt_rows]
        detail["notifications"] = notifications.for_job(session, job_id)
        return detail


def list_jobs(ctx: Context, status: str | None, limit: int) -> list[dict[str, Any]]:
    with ctx.database.session() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        return [job_as_dict(job) for job in session.scalars(query)]


FIND_LIMIT_MAX = 1000


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name}: an aware datetime (with its UTC offset) is expected")
    return value


def find_jobs(ctx: Context, *, status: str | None = None, campaign_id: str | None = None,
              to: str | None = None, created_after: datetime | None = None,
              created_before: datetime | None = None, updated_after: datetime | None = None,
              updated_before: datetime | None = None, after: tuple[datetime, str] | None = None,
              limit: int = 50) -> list[Job]:
    """Jobs matching every filter given, newest first (created_at, then id, descending), with
    their attempts loaded.

    Time bounds are half-open: `*_after` includes the instant, `*_before` excludes it.
    `after` is the (created_at, id) of the last job of the previous page: the next page
    starts right below it, whatever was enqueued meanwhile. The filters are plain column
    comparisons served by the indexes on `to`, on (status, next_attempt_at) and on
    (campaign_id, status, next_attempt_at); the order by created_at has no index of its own.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= FIND_LIMIT_MAX:
        raise ValueError(f"limit: a whole number from 1 to {FIND_LIMIT_MAX}, got {limit!r}")
    query = select(Job)
    number = None if to is None else normalize_to(to)
    if status is not None and status not in set(JobStatus):
        raise ValueError(f"status: {status!r} is not one of {', '.join(JobStatus)}")
    if number is not None:
        query = query.where(Job.to == number)
    for column, value in ((Job.status, status), (Job.campaign_id, campaign_id)):
        if value is not None:
            # A number has a handful of jobs, a status or a campaign may have millions; SQLite,
            # without statistics, would pick their index over ix_jobs_to. Comparing `col || ''`
            # is SQLite's documented way to keep a term off an index (PostgreSQL's
            # statistics choose ix_jobs_to anyway).
            query = query.where((column.op("||")("") if number else column) == value)
    for name, bound, column, inclusive in (
            ("created_after", created_after, Job.created_at, True),
            ("created_before", created_before, Job.created_at, False),
            ("updated_after", updated_after, Job.updated_at, True),
            ("updated_before", updated_before, Job.updated_at, False)):
        if bound is not None:
            _aware(bound, name)
            query = query.where(column >= bound if inclusive else column < bound)
    if after is not None:
        if not isinstance(after, tuple) or len(after) != 2 or not isinstance(after[1], str):
            raise ValueError("after: (created_at, id) of the previous page's last job is expected")
        created_at, job_id = _aware(after[0], "after"), after[1]
        query = query.where(or_(Job.created_at < created_at,
                                and_(Job.created_at == created_at, Job.id < job_id)))
    query = (query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
             .options(WITH_ATTEMPTS))
    with ctx.database.session() as session:
        return list(session.scalars(query))
