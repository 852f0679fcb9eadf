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
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, exists, func, or_, select, update
from sqlalchemy.orm import Session

from worker.domain.clock import utcnow
from worker.domain.fairness import Demand, fair_share
from worker.domain.statuses import (
    FINAL_JOB_STATUSES,
    CampaignStatus,
    JobStatus,
)
from worker.domain.windows import is_open, next_open_for, stored_window, zone
from worker.engine import metrics, notifications
from worker.engine.campaign_end import end_campaigns
from worker.engine.context import Context
from worker.engine.outbox import publish_place_calls
from worker.store.models import Campaign, Job

log = logging.getLogger(__name__)

# How far ahead of the pace the dial queue is filled: enough that no slot goes idle
# between ticks, little enough that a single call published now is behind at most this
# much of a campaign's backlog.
LOOKAHEAD_S = 2.0
MIN_BATCH = 3
WINDOW_SCAN = 500  # due jobs of one campaign examined per tick against its calling window


def dispatch_due(ctx: Context) -> int:
    """One dispatcher tick: claim what is due and publish it; how many jobs were published."""
    ids = claim_due_batch(ctx, dial_queue_empty=ctx.broker.dial_queue_length() == 0)
    publish_place_calls(ctx, ids)
    return len(ids)


def claim_due_batch(ctx: Context, dial_queue_empty: bool) -> list[str]:
    """Move due `scheduled` jobs (and stale `queued` ones) to `queued`; return their ids.

    Single calls (priority 0) go before campaign jobs, oldest first. The
    compare-and-set on status makes two overlapping dispatchers harmless.
    """
    settings = ctx.settings
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.queued_stale_after)
    budget = max(MIN_BATCH, math.ceil(settings.calls_per_second * LOOKAHEAD_S))
    end_campaigns(ctx, now)
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        in_queue = session.scalar(select(func.count()).select_from(Job).where(
            Job.status == JobStatus.QUEUED, Job.queued_at >= stale_before)) or 0
        stale = session.scalars(
            select(Job.id).where(Job.status == JobStatus.QUEUED, Job.queued_at < stale_before)
            .order_by(Job.queued_at).limit(budget)).all() if dial_queue_empty else []
        room = max(0, budget - in_queue - len(stale))
        due: list[str] = []
        if room:
            due = list(session.scalars(
                select(Job.id).where(Job.status == JobStatus.SCHEDULED,
                                     Job.next_attempt_at <= now, Job.campaign_id.is_(None))
                .order_by(Job.priority, Job.next_attempt_at).limit(room)))
        if room > len(due):
            due += campaign_share(session, room - len(due), now)
        ids = list(stale)
        if due:
            ids += session.scalars(
                update(Job).where(Job.id.in_(due), Job.status == JobStatus.SCHEDULED)
                .values(status=JobStatus.QUEUED, queued_at=now, updated_at=now)
                .returning(Job.id)).all()
        if stale:
            session.execute(update(Job).where(Job.id.in_(stale), Job.status == JobStatus.QUEUED)
                            .values(queued_at=now))
        finish_campaigns(session, now)
    if stale:
        log.warning("re-publishing %d jobs queued for over %ss", len(stale),
                    settings.queued_stale_after)
    return ids


def campaign_share(session: Session, room: int, now: datetime) -> list[str]:
    """Due jobs of active campaigns, split by weight; jobs outside their recipient's calling
    window are moved to the window's next opening instead (retries included)."""
    campaigns = session.scalars(select(Campaign).where(
        Campaign.status == CampaignStatus.ACTIVE)).all()
    ready: dict[str, list[str]] = {}
    for campaign in campaigns:
        rows = session.execute(
            select(Job.id, Job.timezones).where(
                Job.campaign_id == campaign.id, Job.status == JobStatus.SCHEDULED,
                Job.next_attempt_at <= now)
            .order_by(Job.next_attempt_at).limit(WINDOW_SCAN)).all()
        if rows:
            # A savepoint per campaign: one whose stored data breaks a rule (a window no
            # parser accepts) is logged, counted and left out, and the others dispatch.
            try:
                with session.begin_nested():
                    ready[campaign.id] = _open_now(session, campaign, rows, now)
            except Exception:
                log.exception("dispatch: campaign %s skipped", campaign.id)
                metrics.SKIPPED.labels("dispatch").inc()
    shares, vtimes = fair_share(room, {c.id: Demand(c.weight, len(ready.get(c.id, [])), c.vtime)
                                       for c in campaigns})
    weights = {c.id: c.weight for c in campaigns}
    for campaign_id, vtime in vtimes.items():
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(vtime=vtime))
    # Published interleaved, in the order fair queuing picked them, not campaign by campaign.
    picks = sorted((vtimes[c] - (n - 1 - k) / weights[c], c, ready[c][k])
                   for c, n in shares.items() for k in range(n))
    return [job_id for _, _, job_id in picks]


def _open_now(session: Session, campaign: Campaign, rows: Sequence[Row[Any]],
              now: datetime) -> list[str]:
    window = stored_window(campaign.window_start, campaign.window_end, campaign.days)
    ready: list[str] = []
    closed: dict[tuple[str, ...], list[str]] = defaultdict(list)
    is_open_for: dict[tuple[str, ...], bool | None] = {}
    unknown_zones: list[str] = []
    for job_id, zones in rows:
        key = tuple(zones or [campaign.timezone])
        if key not in is_open_for:
            try:
                is_open_for[key] = is_open(window, [zone(z) for z in key], now)
            except ValueError:
                is_open_for[key] = None  # a stored zone no tz database knows
        if is_open_for[key] is None:
            unknown_zones.append(job_id)
        elif is_open_for[key]:
            ready.append(job_id)
        else:
            closed[key].append(job_id)
    if unknown_zones:
        _fail_unknown_zones(session, unknown_zones, now)
    for key, ids in closed.items():
        opening = next_open_for(window, key, campaign.timezone, now)
        values: dict[str, Any] = ({"next_attempt_at": opening} if opening else
                        {"status": JobStatus.FAILED, "outcome": "outside-window"})
        changed = session.scalars(
            update(Job).where(Job.id.in_(ids), Job.status == JobStatus.SCHEDULED)
            .values(updated_at=now, **values).returning(Job.id)).all()
        if not opening:
            notifications.job_finished(session, changed)
    return ready


def _fail_unknown_zones(session: Session, job_ids: list[str], now: datetime) -> None:
    """Jobs whose stored time zones no tz database knows can never be placed in a window:
    they end `failed` (outcome `unknown-timezone`), each counted, instead of being looked
    at again by every run."""
    failed = session.scalars(
        update(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.SCHEDULED)
        .values(status=JobStatus.FAILED, outcome="unknown-timezone", updated_at=now)
        .returning(Job.id)).all()
    notifications.job_finished(session, failed)
    log.error("dispatch: %d jobs failed: their time zones are unknown (first: %s)",
              len(failed), job_ids[0])
    metrics.after_commit(session, lambda: metrics.SKIPPED.labels("dispatch").inc(len(failed)))


def finish_campaigns(session: Session, now: datetime) -> None:
    """An active campaign with every job final is done; so is a paused one past its end."""
    pending = exists().where(Job.campaign_id == Campaign.id,
                             Job.status.not_in(list(FINAL_JOB_STATUSES)))
    finishing = or_(Campaign.status == CampaignStatus.ACTIVE,
                    (Campaign.status == CampaignStatus.PAUSED) & (Campaign.end_at <= now))
    session.execute(update(Campaign).where(finishing, ~pending)
                    .values(status=CampaignStatus.DONE, updated_at=now))
