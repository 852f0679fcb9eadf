"""A campaign's waiting jobs ended (a cancel, an end_at passed) a chunk per transaction.

Each chunk commits its jobs' status change with their result events, so a campaign of any
size ends in transactions of bounded size and length. A run stopped midway is finished by
the next one (the dispatcher's tick, cancel_campaign when asked again) without an event
twice: a chunk takes only jobs still waiting, by compare-and-set on their status.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update

from worker.domain.clock import utcnow
from worker.domain.statuses import EXPIRED, WAITING_JOB_STATUSES, CampaignStatus, JobStatus
from worker.engine import notifications
from worker.engine.context import Context
from worker.store.models import Campaign, Job

log = logging.getLogger(__name__)

END_CHUNK = 1000
# How long the dispatcher leaves a canceled campaign's waiting jobs to the cancel that is
# ending them, so that its answer counts them all; past it, the cancel has stopped (a
# crash) and the dispatcher finishes it. A cancel ends 1,000 jobs in well under a second.
CANCEL_LEFT_TO_CALLER_S = 60.0
CANCELED_OUTCOME = "canceled"

_WAITING = Job.status.in_(WAITING_JOB_STATUSES)


def end_waiting_jobs(ctx: Context, campaign_id: str, outcome: str,
                     chunk: int = END_CHUNK) -> int:
    """The campaign's waiting jobs end `canceled` with `outcome`, `chunk` jobs (and their
    events) per transaction; how many this run ended."""
    ended_total = 0
    while True:
        with ctx.database.session() as session:
            notifications.publish_after_commit(ctx, session)
            batch = list(session.scalars(
                select(Job.id).where(Job.campaign_id == campaign_id, _WAITING).limit(chunk)))
            if not batch:
                return ended_total
            ended = list(session.scalars(
                update(Job).where(Job.id.in_(batch), _WAITING)
                .values(status=JobStatus.CANCELED, outcome=outcome, updated_at=utcnow())
                .returning(Job.id).execution_options(synchronize_session=False)))
            notifications.job_finished(session, ended)
        ended_total += len(ended)


def end_campaigns(ctx: Context, now: datetime, chunk: int = END_CHUNK) -> int:
    """Jobs still waiting in a campaign canceled over CANCEL_LEFT_TO_CALLER_S ago, or in
    one past its end_at (outcome `expired`), end; how many. A job being dialed is sent back
    by the pre-dial check and ends on a later run."""
    canceled_before = now - timedelta(seconds=CANCEL_LEFT_TO_CALLER_S)
    ending = or_(and_(Campaign.status == CampaignStatus.CANCELED,
                      Campaign.updated_at <= canceled_before),
                 and_(Campaign.end_at <= now,
                      Campaign.status.in_((CampaignStatus.ACTIVE, CampaignStatus.PAUSED))))
    waiting = exists().where(Job.campaign_id == Campaign.id, _WAITING)
    with ctx.database.session() as session:
        campaigns = session.execute(
            select(Campaign.id, Campaign.status).where(ending, waiting)).all()
    total = 0
    for campaign_id, status in campaigns:
        outcome = CANCELED_OUTCOME if status == CampaignStatus.CANCELED else EXPIRED
        ended = end_waiting_jobs(ctx, campaign_id, outcome, chunk)
        if ended:
            log.info("campaign %s: %d waiting jobs ended (%s)", campaign_id, ended, outcome)
        total += ended
    return total
