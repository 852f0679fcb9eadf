"""Jobs as plain data, for the CLI's tables and its --json alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from worker.engine.context import Context
from worker.store.models import Attempt, Event, Job


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_as_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "to": job.to, "from": job.from_, "url": job.url, "twiml": job.twiml,
        "status": job.status, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "retry_on": job.retry_on, "retry_delays": job.retry_delays, "outcome": job.outcome,
        "error_code": job.error_code, "error_message": job.error_message,
        "next_attempt_at": _iso(job.next_attempt_at), "campaign_id": job.campaign_id,
        "idempotency_key": job.idempotency_key, "metadata": job.metadata_,
        "call_options": job.call_options, "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
    }


def attempt_as_dict(attempt: Attempt, events: list[Event]) -> dict[str, Any]:
    return {
        "number": attempt.ordinal, "call_sid": attempt.call_sid, "status": attempt.status,
        "sip_response_code": attempt.sip_response_code, "duration": attempt.duration,
        "answered_by": attempt.answered_by, "error_code": attempt.error_code,
        "error_message": attempt.error_message, "recording_url": attempt.recording_url,
        "recording_sid": attempt.recording_sid,
        "recording_duration": attempt.recording_duration,
        "created_at": _iso(attempt.created_at), "ended_at": _iso(attempt.ended_at),
        "events": [{"sequence": e.sequence_number, "status": e.call_status, "source": e.source,
                    "received_at": _iso(e.received_at)} for e in events],
    }


def job_detail(ctx: Context, job_id: str) -> dict[str, Any] | None:
    with ctx.database.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        ids = [a.id for a in job.attempt_rows]
        events = session.scalars(select(Event).where(Event.attempt_id.in_(ids))
                                 .order_by(Event.sequence_number)).all() if ids else []
        detail = job_as_dict(job)
        detail["attempt_list"] = [
            attempt_as_dict(a, [e for e in events if e.attempt_id == a.id])
            for a in job.attempt_rows]
        return detail


def list_jobs(ctx: Context, status: str | None, limit: int) -> list[dict[str, Any]]:
    with ctx.database.session() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        return [job_as_dict(job) for job in session.scalars(query)]
