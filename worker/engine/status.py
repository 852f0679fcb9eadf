"""handle_status's work: store the event once, advance the attempt, decide the job once.

Every callback takes this path, so its statements are built once and run on the Session's
connection: through the ORM's execution path the same statements cost four times as much
CPU. The Session stays for what runs once it commits (metrics, notifications to publish),
and for the notifications' own reads.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Insert, bindparam, select, update
from sqlalchemy.orm import Session

from worker.domain.callbacks import UNSEQUENCED_BASE, attempt_changes, callback_int
from worker.domain.clock import utcnow
from worker.domain.lifecycle import JobPolicy, decide, is_terminal, status_rank
from worker.domain.privacy import REDACTED, redacted_callback
from worker.domain.statuses import CALL_STATUSES, FINAL_JOB_STATUSES, JobStatus
from worker.engine import metrics, notifications
from worker.engine.context import Context
from worker.store.database import insert_unless_stored, table_row
from worker.store.models import Attempt, Event, Job

log = logging.getLogger(__name__)

EVENT_KEY = ("call_sid", "sequence_number")

# An attempt as a report advances it: what attempt_changes reads, and what deciding its job
# needs. Carried as a dict between the steps of one transaction.
_STATE = (Attempt.id, Attempt.job_id, Attempt.ordinal.label("ordinal"), Attempt.status,
          Attempt.last_sequence, Attempt.answered_by)
# The job's number comes with the attempt: a late callback of a call ended by an erasure
# is stored without its numbers. The job's row is locked too, as redaction locks it first:
# a callback handled while its job is being redacted waits and reads the redacted number,
# or goes first and its event is there for the redaction to scrub.
_ATTEMPT_BY_SID = (select(*_STATE, Job.to.label("job_to")).join(Job, Job.id == Attempt.job_id)
                   .where(Attempt.call_sid == bindparam("call_sid"))
                   .with_for_update(of=[Attempt, Job]))


class JobToDecide(NamedTuple):
    """What deciding a job reads: the policy's columns only (loading the whole Job decodes
    five JSON columns), and whether the producer asks for events, so that a job that does
    not costs no further statement."""

    id: str
    status: str
    attempts: int
    max_attempts: int
    retry_on: list[Any]
    retry_delays: list[Any]
    notify_url: str | None
    notify_each_attempt: bool


_TO_DECIDE = tuple(column.label(f"decide_{name}") for name, column in zip(
    JobToDecide._fields,
    (Job.id, Job.status, Job.attempts, Job.max_attempts, Job.retry_on, Job.retry_delays,
     notifications.NOTIFY_URL, notifications.NOTIFY_EACH_ATTEMPT), strict=True))
_JOB_TO_DECIDE = (select(*_TO_DECIDE).where(Job.id == bindparam("job_id"))
                  .with_for_update(of=Job))
# A report of a final status decides the job in its transaction: the job's row, locked
# already, is read in the same statement as the attempt.
_ATTEMPT_AND_JOB_BY_SID = _ATTEMPT_BY_SID.add_columns(*_TO_DECIDE)
_ATTEMPT_BY_ID = select(*_STATE).where(Attempt.id == bindparam("attempt_id")).with_for_update()
_ORPHANS = (select(Event.id, Event.call_status, Event.sequence_number, Event.payload)
            .where(Event.call_sid == bindparam("call_sid"), Event.attempt_id.is_(None)))
_ORPHAN_OF_SEQUENCE = _ORPHANS.where(Event.sequence_number == bindparam("sequence"))
_ADOPT = update(Event).where(Event.id == bindparam("event_id")).values(
    attempt_id=bindparam("adopter"))
# SET from the parameters given: only the columns a report changes (and updated_at).
_ADVANCE = update(Attempt.__table__).where(Attempt.__table__.c.id == bindparam("attempt_pk"))
_DECIDE = update(Job.__table__).where(Job.__table__.c.id == bindparam("job_pk"),
                                      Job.__table__.c.status == JobStatus.DIALING)


@cache
def _insert_event(dialect: str) -> Insert:
    """The event's INSERT: the unique key decides what is a repeat, in the INSERT itself."""
    return insert_unless_stored(dialect, Event, EVENT_KEY).returning(Event.id)


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
    final = is_terminal(call_status)
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        connection = session.connection()
        attempt = connection.execute(_ATTEMPT_AND_JOB_BY_SID if final else _ATTEMPT_BY_SID,
                                     {"call_sid": call_sid}).one_or_none()
        redacted = attempt is not None and attempt.job_to == REDACTED
        payload = redacted_callback(params, ()) if redacted else dict(params)
        stored = connection.execute(_insert_event(connection.dialect.name), {
            "call_sid": call_sid, "sequence_number": sequence, "call_status": call_status,
            "attempt_id": attempt.id if attempt else None, "source": source,
            "idempotency_token": idempotency_token, "payload": payload,
            "received_at": utcnow()}).scalar()
        report = (call_status, sequence, payload)
        if stored is None:
            # A repeat, unless it was stored as an orphan and its attempt is now known.
            orphan = None if attempt is None else connection.execute(
                _ORPHAN_OF_SEQUENCE, {"call_sid": call_sid, "sequence": sequence}).one_or_none()
            if orphan is None:
                return "duplicate"
            connection.execute(_ADOPT, {"event_id": orphan.id, "adopter": attempt.id})
            report = (orphan.call_status, orphan.sequence_number, orphan.payload)
        if attempt is None:
            result = "orphan"
        else:
            job = _job_to_decide(attempt) if final else None
            apply_event(session, _state(attempt), *report, job=job)
            result = "stored"
    if result == "orphan":
        raise UnknownCall(call_sid)
    return result


def _state(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in _STATE}


def _job_to_decide(row: Any) -> JobToDecide:
    return JobToDecide(*(getattr(row, column.key) for column in _TO_DECIDE))


def locked_attempt(session: Session, attempt_id: int) -> dict[str, Any] | None:
    """The attempt's state for decide_job, its row locked until the transaction ends."""
    row = session.connection().execute(_ATTEMPT_BY_ID, {"attempt_id": attempt_id}).one_or_none()
    return None if row is None else _state(row)


def adopt_orphan_events(session: Session, call_sid: str) -> int:
    """Apply callbacks that arrived before the worker stored this CallSid; how many.

    Orphans first: there are usually none, and then the attempt need not be locked.
    """
    connection = session.connection()
    if connection.execute(_ORPHANS.limit(1), {"call_sid": call_sid}).first() is None:
        return 0
    attempt = connection.execute(_ATTEMPT_BY_SID, {"call_sid": call_sid}).one_or_none()
    if attempt is None:
        return 0
    # Read again under the attempt's lock, which handle_status takes before it adopts one.
    orphans = connection.execute(_ORPHANS.order_by(Event.sequence_number),
                                 {"call_sid": call_sid}).all()
    state = _state(attempt)
    for orphan in orphans:
        connection.execute(_ADOPT, {"event_id": orphan.id, "adopter": state["id"]})
        state = apply_event(session, state, orphan.call_status, orphan.sequence_number,
                            orphan.payload)
    return len(orphans)


def apply_event(session: Session, attempt: dict[str, Any], call_status: str,
                sequence_number: int, payload: dict[str, str],
                job: JobToDecide | None = None) -> dict[str, Any]:
    """Move the attempt forward if this report is newer; on its first terminal status, the
    job (`job`: its row if the caller read it already, under its lock). Returns the
    attempt's state after it."""
    changes = attempt_changes(attempt, call_status, sequence_number, payload, utcnow())
    if not changes:
        return attempt
    session.connection().execute(_ADVANCE, {"attempt_pk": attempt["id"],
                                            **table_row(Attempt, changes)})
    attempt = {**attempt, **changes}
    if "status" in changes and is_terminal(changes["status"]):
        metrics.after_commit(session, metrics.OUTCOMES.labels(call_status).inc)
        decide_job(session, attempt, job)
    return attempt


def decide_job(session: Session, attempt: dict[str, Any], job: JobToDecide | None = None) -> None:
    """Apply the retry policy to the job of an attempt that just ended (once: compare-and-set);
    `job`: its row if the caller read it already, under its lock."""
    connection = session.connection()
    if job is None:
        job = _job_to_decide(connection.execute(_JOB_TO_DECIDE,
                                                {"job_id": attempt["job_id"]}).one())
    if job.status != JobStatus.DIALING or job.attempts != attempt["ordinal"]:
        # Final already (canceled while live), or an older attempt's late report. The end of
        # the current attempt of a canceled job is still news to a producer who asked.
        if job.attempts == attempt["ordinal"] and job.notify_each_attempt and job.notify_url:
            notifications.attempt_ended(session, job.id, attempt["id"])
        return
    decision = decide(JobPolicy(job.max_attempts, job.retry_on, job.retry_delays),
                      job.attempts, attempt["status"], utcnow())
    values: dict[str, Any] = {"status": decision.status, "outcome": decision.outcome,
                              "updated_at": utcnow()}
    if decision.next_attempt_at is not None:
        values.update(next_attempt_at=decision.next_attempt_at, queued_at=None)
    connection.execute(_DECIDE, {"job_pk": job.id, **values})
    if decision.status == JobStatus.SCHEDULED:
        metrics.after_commit(session, metrics.RETRIES.labels(attempt["status"]).inc)
    if job.notify_url is not None:
        if job.notify_each_attempt:
            notifications.attempt_ended(session, job.id, attempt["id"])
        if decision.status in FINAL_JOB_STATUSES:
            notifications.job_finished(session, [job.id])
    log.info("job %s attempt %d ended %s -> job %s", job.id, attempt["ordinal"],
             attempt["status"], decision.status.value)
