"""The reconciler: what makes a lost callback, a dead worker or an ambiguous create harmless.

Every step is idempotent (status reports go through handle_status, whose
event key absorbs repeats; state changes are compare-and-set), so two
overlapping runs do no harm.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from twilio.base.exceptions import TwilioRestException

from worker.domain.clock import utcnow
from worker.domain.statuses import (
    LIVE_CALL_STATUSES,
    TERMINAL_CALL_STATUSES,
    UNRESOLVED_ATTEMPT_STATUSES,
    AttemptStatus,
    JobStatus,
)
from worker.domain.twilio_errors import longest_create_s
from worker.engine import notifications, status
from worker.engine.attempts import give_back
from worker.engine.context import Context
from worker.engine.isolation import isolated
from worker.logs import mask
from worker.settings import Settings
from worker.store.models import Attempt, Event, Job

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)  # between our database clock and Twilio's
LIST_LIMIT = 50
SILENT_LIMIT = 500  # calls fetched per run


def report_from_call(call: Any) -> dict[str, str]:
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


def silent_attempts(ctx: Context, now: datetime) -> list[str]:
    """CallSids of live attempts with no callback for longer than the silence threshold.

    A call not heard from at all may still be ringing: the dialer asks for no `initiated`
    or `ringing` callback by default, so its first one comes when it is answered or ends.
    Such a call is fetched only once its ring timeout (the job's `timeout`) has passed too;
    Twilio's default of 60 s is within the default silence.
    """
    silence = ctx.settings.reconcile_silence
    quiet_since = now - timedelta(seconds=silence)
    last_event = (select(Event.attempt_id, func.max(Event.received_at).label("at"))
                  .group_by(Event.attempt_id).subquery())
    ring_timeout = Job.call_options["timeout"].as_integer()
    with ctx.database.session() as session:
        # No LIMIT: calls still ringing would fill it and hide the silent ones behind them.
        rows = session.execute(
            select(Attempt.call_sid, Attempt.created_at, last_event.c.at, ring_timeout)
            .join(Job, Job.id == Attempt.job_id)
            .outerjoin(last_event, last_event.c.attempt_id == Attempt.id)
            .where(Attempt.status.in_(list(LIVE_CALL_STATUSES)), Attempt.call_sid.is_not(None),
                   or_(last_event.c.at < quiet_since,
                       last_event.c.at.is_(None) & (Attempt.created_at < quiet_since)))
            .order_by(Attempt.created_at)).all()
    return [call_sid for call_sid, created_at, heard_at, ring_s in rows
            if heard_at is not None
            or created_at < now - timedelta(seconds=max(silence, ring_s or 0))][:SILENT_LIMIT]


def refresh(ctx: Context, call_sid: str) -> None:
    try:
        call = ctx.twilio.fetch_call(call_sid)
    except TwilioRestException as exc:
        log.warning("reconciler could not fetch call %s: %s", call_sid, exc.msg)
        return
    status.handle_status(ctx, report_from_call(call), source="reconciler")


def _longest_create_s(settings: Settings) -> float:
    return longest_create_s(settings.max_pacing_wait, settings.twilio_timeout)


def unresolved_attempts(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """`unknown` attempts, and `creating` ones older than any live worker could hold them."""
    stuck_before = now - timedelta(seconds=_longest_create_s(ctx.settings))
    with ctx.database.session() as session:
        rows = session.execute(
            select(Attempt.id, Attempt.job_id, Attempt.status, Attempt.created_at,
                   Attempt.updated_at, Job.to, Job.from_)
            .join(Job, Job.id == Attempt.job_id)
            .where(Attempt.call_sid.is_(None), Attempt.status.in_(UNRESOLVED_ATTEMPT_STATUSES),
                   or_(Attempt.status == AttemptStatus.UNKNOWN,
                       Attempt.created_at < stuck_before))
            .limit(200)).all()
    return [row._asdict() for row in rows]


def resolve(ctx: Context, attempt: dict[str, Any], now: datetime) -> None:
    """Find the call an ambiguous create may have made: adopt it, or release the job."""
    since = attempt["created_at"] - CLOCK_SKEW
    calls = ctx.twilio.list_calls(attempt["to"], attempt["from_"], LIST_LIMIT)
    candidates = [c for c in calls if c.date_created and c.date_created >= since]
    with ctx.database.session() as session:
        taken = set(session.scalars(select(Attempt.call_sid).where(
            Attempt.call_sid.in_([c.sid for c in candidates])))) if candidates else set()
    free = sorted((c for c in candidates if c.sid not in taken), key=lambda c: c.date_created)
    if free:
        adopt(ctx, attempt, free[0])
        return
    grace = timedelta(seconds=ctx.settings.unknown_grace)
    if now >= last_possible_create(ctx.settings, attempt) + grace:
        release_unplaced(ctx, attempt)


def _resolve_listing(ctx: Context, attempt: dict[str, Any], now: datetime) -> None:
    try:
        resolve(ctx, attempt, now)
    except TwilioRestException as exc:
        log.warning("reconciler could not list calls: %s", exc.msg)


def last_possible_create(settings: Settings, attempt: dict[str, Any]) -> datetime:
    """When the attempt's create can last have reached Twilio: an `unknown` one at its
    ambiguous answer; a `creating` one (its worker died) as late as a live worker's
    last try. The grace after it is for Twilio to list the call."""
    if attempt["status"] == AttemptStatus.UNKNOWN:
        return attempt["updated_at"]
    return attempt["created_at"] + timedelta(seconds=_longest_create_s(settings))


def adopt(ctx: Context, attempt: dict[str, Any], call: Any) -> None:
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        adopted = session.execute(
            update(Attempt).where(Attempt.id == attempt["id"], Attempt.call_sid.is_(None))
            .values(call_sid=call.sid, status=AttemptStatus.QUEUED)).rowcount
        if adopted:
            status.adopt_orphan_events(session, call.sid)
    if adopted:
        log.info("attempt of job %s adopted call %s", attempt["job_id"], call.sid)
        refresh(ctx, call.sid)


def release_unplaced(ctx: Context, attempt: dict[str, Any]) -> None:
    """No call exists after the grace period: the attempt never happened; dial again."""
    with ctx.database.session() as session:
        gone = give_back(session, attempt["id"], attempt["job_id"],
                         statuses=UNRESOLVED_ATTEMPT_STATUSES, status=JobStatus.SCHEDULED,
                         next_attempt_at=utcnow(), queued_at=None)
    if gone:
        log.warning("job %s to %s: no call found for its ambiguous attempt; rescheduled",
                    attempt["job_id"], mask(attempt["to"]))


def decide_stranded(ctx: Context, now: datetime) -> int:
    """Decide `dialing` jobs whose current attempt has ended. The status handler decides in
    the transaction that ends the attempt, so nothing known leaves one; this makes any
    cause harmless instead of leaving the job in `dialing` for ever."""
    settled_before = now - timedelta(seconds=ctx.settings.reconcile_silence)
    with ctx.database.session() as session:
        stranded = session.scalars(
            select(Attempt.id).join(Job, (Job.id == Attempt.job_id)
                                    & (Job.attempts == Attempt.ordinal))
            .where(Job.status == JobStatus.DIALING,
                   Attempt.status.in_(list(TERMINAL_CALL_STATUSES)),
                   Attempt.updated_at < settled_before)
            .limit(200)).all()
    decided = 0
    for attempt_id in stranded:
        decided += bool(isolated(ctx, "decide_stranded", attempt_id, _decide_one, attempt_id))
    return decided


def _decide_one(ctx: Context, attempt_id: int) -> bool:
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        attempt = status.locked_attempt(session, attempt_id)
        if attempt is None:
            return False
        log.error("job %s was left dialing after its attempt ended %s; deciding it now",
                  attempt["job_id"], attempt["status"])
        status.decide_job(session, attempt)
    return True


def adopt_orphans(ctx: Context) -> int:
    """Apply callbacks stored before their attempt had its CallSid. handle_status retries
    such a callback through the broker, and a Redis loss takes that retry with it; the
    events table keeps the callback, so the database alone finishes the job."""
    with ctx.database.session() as session:
        call_sids = session.scalars(
            select(Event.call_sid).distinct()
            .join(Attempt, Attempt.call_sid == Event.call_sid)
            .where(Event.attempt_id.is_(None)).limit(200)).all()
    adopted = 0
    for call_sid in call_sids:
        adopted += isolated(ctx, "adopt_orphans", call_sid, _adopt_orphans_of, call_sid) or 0
    if adopted:
        log.warning("adopted %d callbacks that had arrived before their call's SID was stored",
                    adopted)
    return adopted


def _adopt_orphans_of(ctx: Context, call_sid: str) -> int:
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        return status.adopt_orphan_events(session, call_sid)


def reconcile(ctx: Context) -> dict[str, int]:
    now = utcnow()
    # First: an adopted callback may make its call no longer silent.
    orphans = adopt_orphans(ctx)
    silent = silent_attempts(ctx, now)
    for call_sid in silent:
        isolated(ctx, "refresh", call_sid, refresh, call_sid)
    unresolved = unresolved_attempts(ctx, now)
    for attempt in unresolved:
        isolated(ctx, "resolve", attempt["id"], _resolve_listing, attempt, now)
    return {"orphans": orphans, "refreshed": len(silent),
            "unresolved": len(unresolved), "stranded": decide_stranded(ctx, now)}
