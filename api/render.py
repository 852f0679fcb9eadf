"""Jobs as the API's JSON: the field names of the OpenAPI document, times in ISO 8601 with
their offset. Read by attribute, so this module needs no model class; an attempt is
rendered as result notifications render it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from worker.engine.notifications import attempt_as_dict


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def attempt_json(attempt: Any) -> dict[str, Any]:
    """The attempt as result notifications carry it; the API names its start `created_at`."""
    rendered = attempt_as_dict(attempt)
    rendered["created_at"] = rendered.pop("started_at")
    return rendered


def job_json(job: Any) -> dict[str, Any]:
    """A job with its attempts (loaded with it by get_job and find_jobs)."""
    return {
        "id": job.id, "status": job.status, "outcome": job.outcome, "to": job.to,
        "from": job.from_, "url": job.url, "twiml": job.twiml,
        "application_sid": job.application_sid,
        "campaign_id": job.campaign_id, "idempotency_key": job.idempotency_key,
        "metadata": job.metadata_, "call_options": job.call_options,
        "max_attempts": job.max_attempts, "retry_on": job.retry_on,
        "retry_delays": job.retry_delays, "next_attempt_at": _iso(job.next_attempt_at),
        "notify_url": job.notify_url, "notify_each_attempt": job.notify_each_attempt,
        "error_code": job.error_code, "error_message": job.error_message,
        "created_at": _iso(job.created_at), "updated_at": _iso(job.updated_at),
        "attempts": [attempt_json(a) for a in sorted(job.attempt_rows, key=lambda a: a.ordinal)],
    }


# What a job's row leaves out while it is new: no result, no attempt, no event yet.
_NEW_JOB = {"outcome": None, "error_code": None, "error_message": None, "attempt_rows": ()}


def new_job_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A job just stored, from the row its enqueue inserted (attribute names), as job_json
    and a read of it would show it: nothing more to read."""
    return {**job_json(SimpleNamespace(**{**_NEW_JOB, **row})), "notifications": []}


NOTIFICATION_FIELDS = ("id", "type", "status", "attempts", "next_attempt_at", "delivered_at",
                       "last_status_code")


def notification_json(notification: dict[str, Any]) -> dict[str, Any]:
    """A result notification's delivery state, without its delivery log."""
    return {name: notification[name] for name in NOTIFICATION_FIELDS}
