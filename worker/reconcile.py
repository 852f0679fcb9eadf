"""The reconciler: what makes a lost callback, a dead worker or an ambiguous create harmless.

Every step is idempotent (status reports go through handle_status, whose
event key absorbs repeats; state changes are compare-and-set), so two
overlapping runs do no harm.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from twilio.base.exceptions import TwilioRestException
from twilio.rest.api.v2010.account.call import CallInstance

from worker import gateway, status
from worker.db import session_scope
from worker.dialing import longest_create_s
from worker.lifecycle import TERMINAL_CALL_STATUSES
from worker.logs import mask
from worker.models import Attempt, AttemptStatus, Event, Job, JobStatus, utcnow
from worker.settings import get_settings

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)  # between our database clock and Twilio's
LIST_LIMIT = 50
UNRESOLVED = (AttemptStatus.UNKNOWN, AttemptStatus.CREATING)
LIVE = tuple(AttemptStatus(s) for s in ("queued", "initiated", "ringing", "in-progress"))


def report_from_call(call: CallInstance) -> dict[str, str]:
    """A fetched call as the status handler's input (no SequenceNumber: it orders last)."""
    params = {"CallSid": call.sid, "CallStatus": str(call.status),
              "AccountSid": call.account_sid or "", "To": call.to or "",
              "From": call._from or ""}
    if call.duration:
        params["CallDuration"] = str(call.duration)
    if call.answered_by:
        params["AnsweredBy"] = str(call.answered_by)
    if call.end_time:
        params["Timestamp"] = call.end_time.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return params


def silent_attempts(now: datetime) -> list[str]:
    """CallSids of live attempts with no callback for longer than the silence threshold."""
    quiet_since = now - timedelta(seconds=get_settings().reconcile_silence)
    last_event = (select(Event.attempt_id, func.max(Event.received_at).label("at"))
                  .group_by(Event.attempt_id).subquery())
    with session_scope() as session:
        return list(session.scalars(
            select(Attempt.call_sid)
            .outerjoin(last_event, last_event.c.attempt_id == Attempt.id)
            .where(Attempt.status.in_(LIVE), Attempt.call_sid.is_not(None),
                   or_(last_event.c.at < quiet_since,
                       last_event.c.at.is_(None) & (Attempt.created_at < quiet_since)))
            .limit(500)))


def refresh(call_sid: str) -> None:
    try:
        call = gateway.fetch_call(call_sid)
    except TwilioRestException as exc:
        log.warning("reconciler could not fetch call %s: %s", call_sid, exc.msg)
        return
    status.handle_status(report_from_call(call), source="reconciler")


def unresolved_attempts(now: datetime) -> list[dict[str, Any]]:
    """`unknown` attempts, and `creating` ones older than any live worker could hold them."""
    stuck_before = now - timedelta(seconds=longest_create_s())
    with session_scope() as session:
        rows = session.execute(
            select(Attempt.id, Attempt.job_id, Attempt.status, Attempt.created_at,
                   Attempt.updated_at, Job.to, Job.from_)
            .join(Job, Job.id == Attempt.job_id)
            .where(Attempt.call_sid.is_(None), Attempt.status.in_(UNRESOLVED),
                   or_(Attempt.status == AttemptStatus.UNKNOWN,
                       Attempt.created_at < stuck_before))
            .limit(200)).all()
    return [row._asdict() for row in rows]


def resolve(attempt: dict[str, Any], now: datetime) -> None:
    """Find the call an ambiguous create may have made: adopt it, or release the job."""
    since = attempt["created_at"] - CLOCK_SKEW
    calls = gateway.get_client().calls.list(to=attempt["to"], from_=attempt["from_"],
                                            limit=LIST_LIMIT)
    candidates = [c for c in calls if c.date_created and c.date_created >= since]
    with session_scope() as session:
        taken = set(session.scalars(select(Attempt.call_sid).where(
            Attempt.call_sid.in_([c.sid for c in candidates])))) if candidates else set()
    free = sorted((c for c in candidates if c.sid not in taken), key=lambda c: c.date_created)
    if free:
        adopt(attempt, free[0])
        return
    if now >= last_possible_create(attempt) + timedelta(seconds=get_settings().unknown_grace):
        release_unplaced(attempt)


def last_possible_create(attempt: dict[str, Any]) -> datetime:
    """When the attempt's create can last have reached Twilio: an `unknown` one at its
    ambiguous answer; a `creating` one (its worker died) as late as a live worker's
    last try. The grace after it is for Twilio to list the call."""
    if attempt["status"] == AttemptStatus.UNKNOWN:
        return attempt["updated_at"]
    return attempt["created_at"] + timedelta(seconds=longest_create_s())


def adopt(attempt: dict[str, Any], call: CallInstance) -> None:
    with session_scope() as session:
        adopted = session.execute(
            update(Attempt).where(Attempt.id == attempt["id"], Attempt.call_sid.is_(None))
            .values(call_sid=call.sid, status=AttemptStatus.QUEUED)).rowcount
        if adopted:
            status.adopt_orphan_events(session, call.sid)
    if adopted:
        log.info("attempt of job %s adopted call %s", attempt["job_id"], call.sid)
        refresh(call.sid)


def release_unplaced(attempt: dict[str, Any]) -> None:
    """No call exists after the grace period: the attempt never happened; dial again."""
    with session_scope() as session:
        gone = session.execute(delete(Attempt).where(
            Attempt.id == attempt["id"], Attempt.call_sid.is_(None),
            Attempt.status.in_(UNRESOLVED))).rowcount
        if gone:
            session.execute(
                update(Job).where(Job.id == attempt["job_id"], Job.status == JobStatus.DIALING)
                .values(status=JobStatus.SCHEDULED, attempts=Job.attempts - 1,
                        next_attempt_at=utcnow(), queued_at=None, updated_at=utcnow()))
    if gone:
        log.warning("job %s to %s: no call found for its ambiguous attempt; rescheduled",
                    attempt["job_id"], mask(attempt["to"]))


def decide_stranded(now: datetime) -> int:
    """Decide `dialing` jobs whose current attempt has ended. The status handler decides in
    the transaction that ends the attempt, so nothing known leaves one; this makes any
    cause harmless instead of leaving the job in `dialing` for ever."""
    settled_before = now - timedelta(seconds=get_settings().reconcile_silence)
    with session_scope() as session:
        stranded = session.scalars(
            select(Attempt).join(Job, (Job.id == Attempt.job_id)
                                 & (Job.attempts == Attempt.number))
            .where(Job.status == JobStatus.DIALING,
                   Attempt.status.in_(TERMINAL_CALL_STATUSES),
                   Attempt.updated_at < settled_before)
            .limit(200).with_for_update()).all()
        for attempt in stranded:
            log.error("job %s was left dialing after its attempt ended %s; deciding it now",
                      attempt.job_id, attempt.status)
            status.decide_job(session, attempt)
    return len(stranded)


def adopt_orphans() -> int:
    """Apply callbacks stored before their attempt had its CallSid. handle_status retries
    such a callback through the broker, and a Redis loss takes that retry with it; the
    events table keeps the callback, so the database alone finishes the job."""
    with session_scope() as session:
        call_sids = session.scalars(
            select(Event.call_sid).distinct()
            .join(Attempt, Attempt.call_sid == Event.call_sid)
            .where(Event.attempt_id.is_(None)).limit(200)).all()
    adopted = 0
    for call_sid in call_sids:
        with session_scope() as session:
            adopted += status.adopt_orphan_events(session, call_sid)
    if adopted:
        log.warning("adopted %d callbacks that had arrived before their call's SID was stored",
                    adopted)
    return adopted


def reconcile() -> dict[str, int]:
    now = utcnow()
    orphans = adopt_orphans()  # first: an adopted callback may make its call no longer silent
    silent = silent_attempts(now)
    for call_sid in silent:
        refresh(call_sid)
    unresolved = unresolved_attempts(now)
    for attempt in unresolved:
        try:
            resolve(attempt, now)
        except TwilioRestException as exc:
            log.warning("reconciler could not list calls: %s", exc.msg)
    return {"orphans": orphans, "refreshed": len(silent),
            "unresolved": len(unresolved), "stranded": decide_stranded(now)}
