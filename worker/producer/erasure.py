"""Erasing a number everywhere the dialer holds it, for a person who asks: their jobs
redacted (kept, counted, their number gone), their waiting jobs canceled, their live calls
ended, the number scrubbed wherever else it is written."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select, update
from twilio.base.exceptions import TwilioRestException

from worker.domain.clock import utcnow
from worker.domain.statuses import FINAL_JOB_STATUSES, WAITING_JOB_STATUSES, JobStatus
from worker.domain.validation import normalize_to
from worker.engine import notifications
from worker.engine.context import Context
from worker.engine.retention import BATCH, redact_job, scrub_mentions
from worker.producer.dnc import listed_numbers
from worker.producer.jobs import cancel_job
from worker.store.models import DoNotCall, Job

log = logging.getLogger(__name__)

MAX_NUMBERS = 10_000


def _checked(numbers: object, do_not_call: object) -> list[str]:
    if isinstance(numbers, str):
        numbers = [numbers]
    if not isinstance(numbers, Iterable):
        raise ValueError("numbers: one or more phone numbers are expected")
    wanted = sorted({normalize_to(n, "numbers") for n in numbers})
    if not 1 <= len(wanted) <= MAX_NUMBERS:
        raise ValueError(f"numbers: 1 to {MAX_NUMBERS} numbers are expected")
    if not isinstance(do_not_call, bool):
        raise ValueError(f"do_not_call: true or false is expected, got {do_not_call!r}")
    return wanted


def _end(ctx: Context, job_id: str) -> bool:
    """Cancel a live job and end its call. A call Twilio will not end (gone, or unreachable)
    ends on its own: its job is canceled all the same, and its callbacks are stored without
    their numbers."""
    try:
        return cancel_job(ctx, job_id).canceled
    except TwilioRestException as exc:
        log.warning("erasure: the call of job %s was not ended: %s", job_id, exc.msg)
        return False


def erase_number(ctx: Context, numbers: str | Iterable[str], *,
                 do_not_call: bool = False) -> dict[str, Any]:
    """Remove the numbers (normalised as enqueue does) from every job, attempt, callback,
    contact's details and notification; what it does, counted.

    Their waiting jobs end `canceled` and their live calls are ended (the jobs end
    `canceled`): every job of the number is final, then redacted. Jobs, outcomes and
    attempts stay, so campaign totals and exports still add up. With `do_not_call` the
    numbers go on the do-not-call list, in the same transaction as the cancels, and are
    never called again; the list itself is not erased (it is the record of the wish not to
    be called). Safe to run again. ValueError names the field; nothing changes then.
    """
    wanted = _checked(numbers, do_not_call)
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        added = sorted(set(wanted) - listed_numbers(session)) if do_not_call else []
        if added:
            session.execute(insert(DoNotCall), [{"number": n} for n in added])
        canceled = session.scalars(
            update(Job).where(Job.to.in_(wanted), Job.status.in_(WAITING_JOB_STATUSES))
            .values(status=JobStatus.CANCELED, outcome="canceled", updated_at=utcnow())
            .returning(Job.id)).all()
        notifications.job_finished(session, canceled)
        dialing = session.scalars(select(Job.id).where(
            Job.to.in_(wanted), Job.status == JobStatus.DIALING)).all()
    ended = sum(_end(ctx, job_id) for job_id in dialing)
    counts: Counter[str] = Counter()
    while True:
        with ctx.database.session() as session:
            ids = session.scalars(select(Job.id).where(
                Job.to.in_(wanted), Job.status.in_(list(FINAL_JOB_STATUSES)))
                .order_by(Job.id).limit(BATCH)).all()
            for job_id in ids:
                counts.update(redact_job(session, job_id, wanted))
        if len(ids) < BATCH:
            break
    with ctx.database.session() as session:
        mentions = scrub_mentions(session, wanted)
        # Enqueued for the number while this ran (never, with do_not_call): erase again.
        left = session.scalar(select(func.count()).select_from(Job)
                              .where(Job.to.in_(wanted)))
    log.info("erased %d numbers: %d jobs redacted, %d canceled, %d live calls ended",
             len(wanted), counts["jobs"], len(canceled), ended)
    return {"numbers": len(wanted), "jobs": counts["jobs"], "canceled": len(canceled),
            "live_calls_ended": ended, "events": counts["events"],
            "notifications": counts["notifications"], "other_mentions": mentions,
            "do_not_call_added": len(added), "jobs_left": left}
