"""The outbox relay: due rows in the jobs table become place_call messages.

Only as many jobs are moved to `queued` as the pace can dial in the next few
seconds, so the broker queue stays short. A `queued` job whose message went
missing (Redis restarted without its data, a publish that failed) is published
again once it is stale *and* the dial queue is empty: while messages are still
waiting, an old `queued` job is only a long queue, and re-publishing it would
flood the queue with duplicates.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from sqlalchemy import func, select, update

from worker.db import session_scope
from worker.models import Job, JobStatus, utcnow
from worker.settings import get_settings

log = logging.getLogger(__name__)

LOOKAHEAD_S = 5.0  # how far ahead of the pace the queue is filled
MIN_BATCH = 10


def claim_due_batch(dial_queue_empty: bool) -> list[str]:
    """Move due `scheduled` jobs (and stale `queued` ones) to `queued`; return their ids.

    Single calls (priority 0) go before campaign jobs, oldest first. The
    compare-and-set on status makes two overlapping dispatchers harmless.
    """
    settings = get_settings()
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.queued_stale_after)
    budget = max(MIN_BATCH, math.ceil(settings.calls_per_second * LOOKAHEAD_S))
    with session_scope() as session:
        in_queue = session.scalar(select(func.count()).select_from(Job).where(
            Job.status == JobStatus.QUEUED, Job.queued_at >= stale_before)) or 0
        stale = session.scalars(
            select(Job.id).where(Job.status == JobStatus.QUEUED, Job.queued_at < stale_before)
            .order_by(Job.queued_at).limit(budget)).all() if dial_queue_empty else []
        room = max(0, budget - in_queue - len(stale))
        due = session.scalars(
            select(Job.id).where(Job.status == JobStatus.SCHEDULED, Job.next_attempt_at <= now)
            .order_by(Job.priority, Job.next_attempt_at).limit(room)).all() if room else []
        ids = list(stale)
        if due:
            ids += session.scalars(
                update(Job).where(Job.id.in_(due), Job.status == JobStatus.SCHEDULED)
                .values(status=JobStatus.QUEUED, queued_at=now, updated_at=now)
                .returning(Job.id)).all()
        if stale:
            session.execute(update(Job).where(Job.id.in_(stale), Job.status == JobStatus.QUEUED)
                            .values(queued_at=now))
    if stale:
        log.warning("re-publishing %d jobs queued for over %ss", len(stale),
                    settings.queued_stale_after)
    return ids
