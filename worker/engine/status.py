"""handle_status's work: store the event once, advance the attempt, decide the job once."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from worker.domain.callbacks import callback_int, callback_time
from worker.domain.clock import utcnow
from worker.domain.lifecycle import JobPolicy, decide, is_terminal, moves_forward, status_rank
from worker.domain.privacy import REDACTED, redacted_callback
from worker.domain.recordings import ANSWERED_BY, answer_replaces
from worker.domain.statuses import CALL_STATUSES, FINAL_JOB_STATUSES, JobStatus
from worker.engine import metrics, notifications
from worker.engine.context import Context
from worker.store.database import insert_unless_stored
from worker.store.models import Attempt, Event, Job

log = logging.getLogger(__name__)

UNSEQUENCED_BASE = 1_000_000
EVENT_KEY = ("call_sid", "sequence_number")


class UnknownCall(Exception):
    """No attempt has this CallSid (yet): the create's answer may still be on its way."""


def handle_status(ctx: Context, params: dict[str, str], idempotency_token: str | None = None,
                  source: str = "callback") -> str:
    """Returns what happened: 'stored', 'duplicate', 'orphan' (raises UnknownCall) or 'invalid'."""
    call_sid = params.get("CallSid", "")
    call_status = params.get("CallStatus", "")
    sequence = callback_int(params.get("SequenceNumber"))
    if not call_sid or call_status not in CALL_STATUSES:
        log.warning("ignoring a status report with CallSid=%r CallStatus=%r", call_sid[:40],
                    call_status[:20])
        return "invalid"
    if sequence is None:
        # A report without a sequence (a fetched call): one per status, after every callback.
        sequence = UNSEQUENCED_BASE + status_rank(call_status)
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        # The job's number comes with the attempt, in the same statement: a late callback
        # of a call ended by an erasure is stored without its numbers.
        row = session.execute(
            select(Attempt, Job.to).join(Job, Job.id == Attempt.job_id)
            .where(Attempt.call_sid == call_sid).with_for_update(of=Attempt)).one_or_none()
        attempt, job_to = row if row is not None else (None, None)
        payload = redacted_callback(params, ()) if job_to == REDACTED else dict(params)
        values = {"call_sid": call_sid, "sequence_number": sequence,
                  "call_status": call_status, "attempt_id": attempt.id if attempt else None,
                  "source": source, "idempotency_token": idempotency_token,
                  "payload": payload, "received_at": utcnow()}
        # The unique key decides what is a repeat, in the INSERT itself: no savepoint, no
        # failed statement, and no ORM flush (the Event below is only read).
        stored = session.execute(
            insert_unless_stored(session, Event, EVENT_KEY).values(values)
            .returning(Event.id)).scalar()
        event = Event(**values)
        if stored is None:
            # A repeat, unless it was stored as an orphan and its attempt is now known.
            orphan = None if attempt is None else session.scalar(select(Event).where(
                Event.call_sid == call_sid, Event.sequence_number == sequence,
                Event.attempt_id.is_(None)))
            if orphan is None:
                return "duplicate"
            orphan.attempt_id = attempt.id
            event = orphan
        if attempt is None:
            result = "orphan"
        else:
            apply_event(session, attempt, event)
            result = "stored"
    if result == "orphan":
        raise UnknownCall(call_sid)
    return result


def adopt_orphan_events(session: Session, call_sid: str) -> int:
    """Apply callbacks that arrived before the worker stored this CallSid; how many.

    Orphans first: there are usually none, and then the attempt need not be locked.
    """
    orphaned = select(Event).where(Event.call_sid == call_sid, Event.attempt_id.is_(None))
    if session.scalar(orphaned.with_only_columns(Event.id).limit(1)) is None:
        return 0
    attempt = session.scalar(
        select(Attempt).where(Attempt.call_sid == call_sid).with_for_update())
    if attempt is None:
        return 0
    # Read again under the attempt's lock, which handle_status takes before it adopts one.
    orphans = session.scalars(orphaned.order_by(Event.sequence_number)).all()
    for event in orphans:
        event.attempt_id = attempt.id
        apply_event(session, attempt, event)
    return len(orphans)


def apply_event(session: Session, attempt: Attempt, event: Event) -> None:
    """Move the attempt forward if this report is newer; on its first terminal status, the job."""
    params = event.payload
    sequenced = event.sequence_number < UNSEQUENCED_BASE
    if sequenced and event.sequence_number > (attempt.last_sequence or -1):
        attempt.last_sequence = event.sequence_number
    if not moves_forward(attempt.status, event.call_status):
        return
    attempt.status = event.call_status
    attempt.sip_response_code = (callback_int(params.get("SipResponseCode"))
                                 or attempt.sip_response_code)
    attempt.duration = callback_int(params.get("CallDuration")) or attempt.duration
    answered_by = params.get("AnsweredBy")
    if answered_by in ANSWERED_BY and answer_replaces(attempt.answered_by, answered_by):
        attempt.answered_by = answered_by
    if params.get("RecordingSid"):
        attempt.recording_sid = params["RecordingSid"]
        attempt.recording_url = params.get("RecordingUrl")
        attempt.recording_duration = callback_int(params.get("RecordingDuration"))
    if params.get("ErrorCode"):
        attempt.error_code = callback_int(params.get("ErrorCode"))
        attempt.error_message = params.get("ErrorMessage")
    if is_terminal(event.call_status):
        attempt.ended_at = callback_time(params.get("Timestamp")) or utcnow()
        metrics.after_commit(session, metrics.OUTCOMES.labels(event.call_status).inc)
        decide_job(session, attempt)


def decide_job(session: Session, attempt: Attempt) -> None:
    """Apply the retry policy to the job of an attempt that just ended (once: compare-and-set)."""
    # Only the columns the policy reads: loading the whole Job decodes five JSON columns.
    # Whether the producer asks for events comes in the same statement: a job that does not
    # costs none more.
    job = session.execute(
        select(Job.id, Job.status, Job.attempts, Job.max_attempts, Job.retry_on,
               Job.retry_delays, notifications.NOTIFY_URL.label("notify_url"),
               notifications.NOTIFY_EACH_ATTEMPT.label("notify_each_attempt"))
        .where(Job.id == attempt.job_id).with_for_update(of=Job)).one()
    if job.status != JobStatus.DIALING or job.attempts != attempt.ordinal:
        # Final already (canceled while live), or an older attempt's late report. The end of
        # the current attempt of a canceled job is still news to a producer who asked.
        if job.attempts == attempt.ordinal and job.notify_each_attempt and job.notify_url:
            notifications.attempt_ended(session, attempt)
        return
    decision = decide(JobPolicy(job.max_attempts, job.retry_on, job.retry_delays),
                      job.attempts, attempt.status, utcnow())
    values: dict[str, Any] = {"status": decision.status, "outcome": decision.outcome,
                              "updated_at": utcnow()}
    if decision.next_attempt_at is not None:
        values.update(next_attempt_at=decision.next_attempt_at, queued_at=None)
    session.execute(update(Job).where(Job.id == job.id, Job.status == JobStatus.DIALING)
                    .values(**values))
    if decision.status == JobStatus.SCHEDULED:
        metrics.after_commit(session, metrics.RETRIES.labels(attempt.status).inc)
    if job.notify_url is not None:
        if job.notify_each_attempt:
            notifications.attempt_ended(session, attempt)
        if decision.status in FINAL_JOB_STATUSES:
            notifications.job_finished(session, [job.id])
    log.info("job %s attempt %d ended %s -> job %s", job.id, attempt.ordinal, attempt.status,
             decision.status.value)
