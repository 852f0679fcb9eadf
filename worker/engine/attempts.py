"""Giving back an attempt that placed no call: one rule for every path that does it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from worker.domain.clock import utcnow
from worker.domain.statuses import AttemptStatus, JobStatus
from worker.store.models import Attempt, Job


def give_back(session: Session, attempt_id: int, job_id: str, *,
              statuses: Iterable[AttemptStatus] = (AttemptStatus.CREATING,),
              only_dialing: bool = True, **job_values: Any) -> bool:
    """Delete the attempt and take it off its job's count, setting `job_values` on the job
    (only while it is `dialing`, unless told otherwise).

    False, and nothing changed, if the attempt has left `statuses` or holds a CallSid: the
    reconciler took it from a worker that looked dead (or the worker from the reconciler),
    and the job may be someone else's claim by now.
    """
    gone = session.execute(delete(Attempt).where(
        Attempt.id == attempt_id, Attempt.call_sid.is_(None),
        Attempt.status.in_(list(statuses)))).rowcount
    if not gone:
        return False
    job = update(Job).where(Job.id == job_id)
    if only_dialing:
        job = job.where(Job.status == JobStatus.DIALING)
    if job_values:
        job_values["updated_at"] = utcnow()
    session.execute(job.values(attempts=Job.attempts - 1, **job_values))
    return True
