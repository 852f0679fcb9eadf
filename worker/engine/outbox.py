"""Publishing place_call messages for jobs just stored or claimed as due.

The database is the outbox: a job is `queued` before its message is sent, and a message
that never arrives is published again by the dispatcher (see dispatch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import update

from worker.domain.statuses import JobStatus
from worker.engine.context import Context
from worker.store.database import in_chunks
from worker.store.models import Job

log = logging.getLogger(__name__)


def publish_place_calls(ctx: Context, job_ids: Sequence[str]) -> None:
    """The fast path after commit. If the broker refuses, the dispatcher publishes them."""
    if not job_ids:
        return
    try:
        ctx.broker.publish_place_calls(job_ids)
    except Exception as exc:
        # Which of the batch's LPUSHes went through is unknown: hand them all to the
        # dispatcher. A delivered one is then dropped by the claim (it wants `queued`).
        # One line, no traceback: the jobs are stored, the caller has nothing to fix.
        log.warning("could not publish %d job(s) (%s: %s); the dispatcher will",
                    len(job_ids), type(exc).__name__, exc)
        try:
            with ctx.database.session() as session:
                for chunk in in_chunks(job_ids):
                    session.execute(update(Job).where(Job.id.in_(chunk),
                                                      Job.status == JobStatus.QUEUED)
                                    .values(status=JobStatus.SCHEDULED, queued_at=None))
        except Exception as db_exc:
            # The caller's jobs are stored: left `queued`, the dispatcher republishes them
            # once they are stale and the dial queue is empty.
            log.warning("could not hand %d job(s) to the dispatcher (%s: %s); they are "
                        "published again once stale", len(job_ids), type(db_exc).__name__,
                        db_exc)
