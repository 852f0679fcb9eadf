"""Removing personal data: a job's number, its contact details and its callbacks' numbers,
once its retention has passed (the beat task) or when its number is erased (the producer's
erase_number). Counts and outcomes stay, so reports and exports still add up.

A redacted job's `to` is REDACTED: that is how every step tells it from one still to do,
which makes each of them safe to run again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from worker.domain.clock import utcnow
from worker.domain.privacy import (
    REDACTED,
    mentions,
    redacted_callback,
    redacted_event_data,
    redacted_metadata,
    scrub,
)
from worker.domain.statuses import FINAL_JOB_STATUSES
from worker.engine.context import Context
from worker.engine.isolation import isolated
from worker.store.models import (
    Attempt,
    Campaign,
    Event,
    Job,
    Notification,
    NotificationAttempt,
)

log = logging.getLogger(__name__)

# Jobs per transaction: short enough not to hold the workers' row locks for long.
BATCH = 200


def redact_job(session: Session, job_id: str, numbers: Collection[str] = ()) -> Counter[str]:
    """Remove the job's number (and `numbers`) from the job, its attempts, their callbacks
    and its notifications; what it redacts, counted by table. The job's updated_at stays
    the time of the job's own last change."""
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    counts: Counter[str] = Counter()
    if job is None:
        return counts
    numbers = {*numbers, job.to} - {REDACTED}
    attempts = session.execute(select(Attempt.id, Attempt.call_sid, Attempt.error_message)
                               .where(Attempt.job_id == job_id)).all()
    for attempt in attempts:
        if mentions(attempt.error_message, numbers):
            session.execute(update(Attempt).where(Attempt.id == attempt.id).values(
                error_message=scrub(attempt.error_message, numbers),
                updated_at=Attempt.updated_at))
    call_sids = [a.call_sid for a in attempts if a.call_sid]
    events = session.execute(select(Event.id, Event.payload).where(or_(
        Event.attempt_id.in_([a.id for a in attempts]), Event.call_sid.in_(call_sids)))).all()
    for event in events:
        payload = redacted_callback(event.payload, numbers)
        if payload != event.payload:
            session.execute(update(Event).where(Event.id == event.id).values(payload=payload))
            counts["events"] += 1
    counts["notifications"] += _redact_notifications(session, job_id, numbers)
    key = None if mentions(job.idempotency_key, numbers) else job.idempotency_key
    session.execute(update(Job).where(Job.id == job_id).values({
        Job.to: REDACTED, Job.metadata_: redacted_metadata(job.metadata_),
        Job.idempotency_key: key,
        # A hash of the request is a hash of the number: the key alone keeps a repeat a repeat.
        Job.request_hash: None, Job.url: scrub(job.url, numbers),
        Job.twiml: scrub(job.twiml, numbers), Job.error_message: scrub(job.error_message, numbers),
        Job.updated_at: Job.updated_at}))
    counts["jobs"] += 1
    return counts


def _redact_notifications(session: Session, job_id: str, numbers: Collection[str]) -> int:
    changed = 0
    for notification in session.execute(select(Notification.id, Notification.payload,
                                               Notification.last_error)
                                        .where(Notification.job_id == job_id)).all():
        payload = redacted_event_data(notification.payload, numbers)
        error = scrub(notification.last_error, numbers)
        if (payload, error) != (notification.payload, notification.last_error):
            session.execute(update(Notification).where(Notification.id == notification.id)
                            .values(payload=payload, last_error=error))
            changed += 1
        for tried in session.execute(select(NotificationAttempt.id, NotificationAttempt.error)
                                     .where(NotificationAttempt.notification_id
                                            == notification.id)).all():
            if mentions(tried.error, numbers):
                session.execute(update(NotificationAttempt)
                                .where(NotificationAttempt.id == tried.id)
                                .values(error=scrub(tried.error, numbers)))
    return changed


def _redact_in_savepoint(ctx: Context, session: Session, job_id: str) -> Counter[str]:
    """One job of a batch: a job that raises rolls back its own changes only."""
    with session.begin_nested():
        return redact_job(session, job_id)


def apply_retention(ctx: Context, now: datetime | None = None) -> dict[str, int]:
    """Redact final jobs not updated for DIALER_RETENTION_DAYS (none when it is 0), a batch
    per transaction, and delete callbacks of unknown calls as old (no job ever claims one
    by then). A job whose redaction raises is logged, counted and skipped."""
    days = ctx.settings.retention_days
    totals: Counter[str] = Counter()
    if not days:
        return {"jobs": 0, "events": 0, "notifications": 0, "orphan_events": 0, "skipped": 0}
    cutoff = (now or utcnow()) - timedelta(days=days)
    skipped: set[str] = set()
    while True:
        with ctx.database.session() as session:
            ids = session.scalars(
                select(Job.id).where(Job.status.in_(list(FINAL_JOB_STATUSES)),
                                     Job.updated_at < cutoff, Job.to != REDACTED,
                                     Job.id.not_in(skipped))
                .order_by(Job.updated_at, Job.id).limit(BATCH)).all()
            for job_id in ids:
                counts = isolated(ctx, "retention", job_id, _redact_in_savepoint, session,
                                  job_id)
                if counts is None:
                    skipped.add(job_id)
                else:
                    totals.update(counts)
        if len(ids) < BATCH:
            break
    with ctx.database.session() as session:
        totals["orphan_events"] = session.execute(delete(Event).where(
            Event.attempt_id.is_(None), Event.received_at < cutoff)).rowcount
    if totals["jobs"] or skipped:
        log.info("retention: %d jobs older than %d days redacted, %d skipped",
                 totals["jobs"], days, len(skipped))
    return {name: totals[name] for name in ("jobs", "events", "notifications",
                                             "orphan_events")} | {"skipped": len(skipped)}


# Text and JSON columns where a number can also be written by hand (a contact's second
# phone, a URL's query, an error's text): searched when a number is erased. The caller ID
# columns (`from`) are the account's own numbers and stay.
MENTIONING_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Job.metadata_, Job.url, Job.twiml, Job.error_message, Job.idempotency_key,
    Attempt.error_message, Event.payload, Notification.payload, Notification.last_error,
    NotificationAttempt.error, Campaign.name, Campaign.url, Campaign.twiml)


def scrub_mentions(session: Session, numbers: Collection[str]) -> int:
    """Replace the numbers wherever MENTIONING_COLUMNS hold them; how many rows changed.

    A LIKE on each column: a full scan, fine for an operator's erasure, never on a hot path.
    """
    changed = 0
    for column in MENTIONING_COLUMNS:
        model = column.class_
        key = model.__mapper__.primary_key[0]
        text = cast(column, Text)
        found = session.execute(select(key, column).where(or_(*(
            text.contains(number, autoescape=True) for number in numbers)))).all()
        for row_key, value in found:
            if column is Event.payload:
                new = redacted_callback(value, numbers)
            elif column is Job.idempotency_key:
                new = None
            else:
                new = scrub(value, numbers)
            session.execute(update(model).where(key == row_key).values({column: new}))
            changed += 1
    return changed
