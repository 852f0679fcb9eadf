"""A job's result notifications as the operator and the producer see them, and putting
given-up ones back to be delivered again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.engine import notifications
from worker.engine.context import Context


def job_notifications(ctx: Context, job_id: str) -> list[dict[str, Any]]:
    """The job's events, oldest first, each with its delivery attempts."""
    return jobs_notifications(ctx, [job_id])[job_id]


def jobs_notifications(ctx: Context, job_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """job_notifications of many jobs, by job id, in one transaction."""
    with ctx.database.session() as session:
        return notifications.for_jobs(session, job_ids)


def retry_notifications(ctx: Context, *, job_id: str | None = None,
                        all_given_up: bool = False) -> int:
    """Given-up events of one job (or all, with `all_given_up`) back to pending, due now;
    how many. ValueError names the argument when neither or both are given."""
    if (job_id is None) == (not all_given_up):
        raise ValueError("job_id: give a job id or all_given_up, not both or neither")
    return notifications.retry_given_up(ctx, job_id=job_id)
