"""place_call's work: claim, pace, create, record. Every step is safe to run twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import RedisError
from sqlalchemy import Connection, bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from twilio.base.serialize import boolean_to_string

from worker.adapters.pacing import CHECKS_LEAD_S, PacingBacklog
from worker.domain.clock import utcnow
from worker.domain.names import RECORDING_CALLBACK_EVENTS
from worker.domain.statuses import AttemptStatus, CampaignStatus, JobStatus
from worker.domain.twilio_errors import (
    CREATE_BACKOFF_MAX_S,
    CREATE_TRIES,
    CreateFailure,
    classify_create_error,
    error_code,
    error_message,
)
from worker.domain.windows import next_open_for, stored_window
from worker.engine import metrics, notifications
from worker.engine.attempts import give_back
from worker.engine.calls import end_live_call
from worker.engine.context import Context
from worker.engine.status import adopt_orphan_events
from worker.logs import mask
from worker.settings import Settings
from worker.store.models import Attempt, Campaign, DoNotCall, Event, Job

log = logging.getLogger(__name__)

REDIS_DOWN_RETRY_S = 5.0
TRANSIENT_EXHAUSTED_RETRY_S = 30.0
SID_COLLISION_RETRY_S = 30.0
NEVER_OPEN_RETRY = timedelta(hours=1)


class NoLongerDialing(Exception):
    """The job was canceled while its worker waited for a slot."""


class Deferred(Exception):
    """Not now (campaign paused, outside the calling window, frequency cap): try at `until`."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until, self.reason = until, reason


class OnDoNotCall(Exception):
    """The number was put on the do-not-call list after the job was enqueued."""


@dataclass(frozen=True)
class Claimed:
    job_id: str
    attempt_id: int
    ordinal: int
    params: dict[str, Any]


# What create_params reads of a job, labelled with the attribute names it reads them by.
CREATE_COLUMNS = tuple(column.label(column.key) for column in (
    Job.attempts, Job.to, Job.from_, Job.url, Job.twiml, Job.application_sid, Job.call_options))

# The hot path's statements, built once: Core on a plain connection with bound parameters
# costs a fifth of the same statements built per call and run through an ORM Session
# (bench.statements and the profile in docs/BENCHMARKS.md).
_CLAIM = (update(Job)
          .where(Job.id == bindparam("job_id"), Job.status == JobStatus.QUEUED)
          .values(status=JobStatus.DIALING, attempts=Job.attempts + 1,
                  updated_at=bindparam("now"))
          .returning(*CREATE_COLUMNS))
_NEW_ATTEMPT = (insert(Attempt)
                .values(job_id=bindparam("job_id"), ordinal=bindparam("ordinal"),
                        status=AttemptStatus.CREATING, created_at=bindparam("now"),
                        updated_at=bindparam("now"))
                .returning(Attempt.id))
# Everything the last checks read, in one statement: the job, its campaign, its number's
# do-not-call entry.
_PREFLIGHT = (select(Job.status, Job.timezones, Job.to, Job.campaign_id,
                     Campaign.status.label("campaign_status"), Campaign.end_at,
                     Campaign.window_start, Campaign.window_end, Campaign.days,
                     Campaign.timezone, DoNotCall.number.label("listed"))
              .select_from(Job)
              .outerjoin(Campaign, Campaign.id == Job.campaign_id)
              .outerjoin(DoNotCall, DoNotCall.number == Job.to)
              .where(Job.id == bindparam("job_id")))
# Storing the CallSid returns what the next step reads: the job's status (canceled
# meanwhile?) and whether callbacks of the call are stored without an attempt (they
# overtook the create's answer); no row if the reconciler gave the attempt up meanwhile.
_RECORD_SID = (update(Attempt)
               .where(Attempt.id == bindparam("attempt_id"),
                      Attempt.status == AttemptStatus.CREATING)
               .values(call_sid=bindparam("call_sid"), status=AttemptStatus.QUEUED)
               .returning(
                   select(Job.status).where(Job.id == bindparam("job")).scalar_subquery(),
                   exists().where(Event.call_sid == bindparam("call_sid"),
                                  Event.attempt_id.is_(None))))


def create_params(settings: Settings, job: Any) -> dict[str, Any]:
    """Calls.create's parameters from a row holding CREATE_COLUMNS."""
    params: dict[str, Any] = {
        "to": job.to,
        "from_": job.from_,
        "status_callback": settings.status_callback_url,
        "status_callback_event": list(settings.status_callback_events),
        "status_callback_method": "POST",
        **job.call_options,
    }
    if job.url is not None:
        params["url"] = job.url
    elif job.twiml is not None:
        params["twiml"] = job.twiml
    else:
        # Twilio then calls the application's status callback instead of ours; see
        # the README ("What the call does") on what the dialer learns of such a call.
        params["application_sid"] = job.application_sid
    if params.get("record") and "recording_status_callback" not in params:
        # Our webhook: POST only; the job may still choose which events it hears of.
        params.update(recording_status_callback=settings.recording_callback_url,
                      recording_status_callback_method="POST")
        params.setdefault("recording_status_callback_event", list(RECORDING_CALLBACK_EVENTS))
    if "async_amd" in params:
        # Twilio documents `true`/`false`; the client would send Python's `True`.
        params["async_amd"] = boolean_to_string(params["async_amd"])
        if params["async_amd"] == "true" and "async_amd_status_callback" not in params:
            params.update(async_amd_status_callback=settings.amd_callback_url,
                          async_amd_status_callback_method="POST")
    return params


def claim(ctx: Context, job_id: str) -> Claimed | None:
    """Compare-and-set `queued` -> `dialing` and write the attempt row, in one transaction.

    A row count of 0 means another worker has the job, or it is no longer
    waiting (final, canceled, rescheduled): leave it alone.
    """
    now = utcnow()
    with ctx.database.transaction() as connection:
        # RETURNING: the columns the create needs come back from the compare-and-set itself.
        job = connection.execute(_CLAIM, {"job_id": job_id, "now": now}).one_or_none()
        if job is None:
            return None
        attempt_id = connection.execute(_NEW_ATTEMPT, {
            "job_id": job_id, "ordinal": job.attempts, "now": now}).scalar_one()
        return Claimed(job_id, attempt_id, job.attempts, create_params(ctx.settings, job))


def release(ctx: Context, claimed: Claimed, retry_in: float, reason: str) -> None:
    """Undo a claim whose create was surely never sent: the attempt did not happen."""
    with ctx.database.session() as session:
        if not give_back(session, claimed.attempt_id, claimed.job_id,
                         status=JobStatus.SCHEDULED, queued_at=None,
                         next_attempt_at=utcnow() + timedelta(seconds=retry_in)):
            return
    log.info("job %s released for %.1fs: %s", claimed.job_id, retry_in, reason)


def preflight(ctx: Context, job_id: str) -> None:
    """The last checks, right before calls.create: still ours, campaign active, inside the
    recipient's calling window, not on the do-not-call list, under the frequency cap."""
    now = utcnow()
    with ctx.database.transaction() as connection:
        job = connection.execute(_PREFLIGHT, {"job_id": job_id}).one_or_none()
        if job is None or job.status != JobStatus.DIALING:
            raise NoLongerDialing(job_id)
        if job.campaign_id is not None:
            if job.campaign_status != CampaignStatus.ACTIVE:
                raise Deferred(now, f"campaign {job.campaign_status}")
            if job.end_at is not None and job.end_at <= now:
                raise Deferred(now, "campaign ended: the dispatcher expires the job")
            window = stored_window(job.window_start, job.window_end, job.days)
            opening = next_open_for(window, job.timezones, job.timezone, now)
            if opening != now:
                raise Deferred(opening or now + NEVER_OPEN_RETRY, "outside the calling window")
        if job.listed is not None:
            raise OnDoNotCall(job_id)
        capped_until = _frequency_cap(ctx.settings, connection, job, now)
        if capped_until is not None:
            raise Deferred(capped_until, "frequency cap for this number")


def _frequency_cap(settings: Settings, connection: Connection, job: Any,
                   now: datetime) -> datetime | None:
    """When the number may be called again, if the cap is reached (across every job)."""
    if not settings.max_calls_per_number:
        return None
    since = now - timedelta(hours=settings.frequency_window_hours)
    placed = connection.scalars(
        select(Attempt.created_at).join(Job)
        .where(Job.to == job.to, Attempt.created_at >= since, Attempt.call_sid.is_not(None))
        .order_by(Attempt.created_at)).all()
    if len(placed) < settings.max_calls_per_number:
        return None
    return placed[len(placed) - settings.max_calls_per_number] + timedelta(
        hours=settings.frequency_window_hours)


def _create_paced(ctx: Context, claimed: Claimed) -> Any:
    """Each try takes its own pacing slot: a retried create is a new request to Twilio."""
    retrying = Retrying(
        retry=retry_if_exception(
            lambda exc: classify_create_error(exc) is CreateFailure.TRANSIENT),
        wait=wait_random_exponential(multiplier=0.25, max=CREATE_BACKOFF_MAX_S),
        stop=stop_after_attempt(CREATE_TRIES),
        sleep=ctx.sleep,
        reraise=True,
    )
    for try_ in retrying:
        with try_:
            wait = ctx.pacer.reserve()
            ctx.sleep(max(0.0, wait - CHECKS_LEAD_S))  # the gate below holds the create
            preflight(ctx, claimed.job_id)
            ctx.twilio.warm()  # before the gate, where a first request's setup costs no spacing
            while (departs_in := ctx.pacer.depart()) > 0:
                wait += departs_in
                ctx.sleep(departs_in)
            metrics.PACING_WAIT.observe(wait)
            try:
                call = ctx.twilio.create_call(claimed.params)
            except Exception as exc:
                code = error_code(exc)
                metrics.TWILIO_ERRORS.labels(str(code) if code else type(exc).__name__).inc()
                raise
            metrics.CALLS_CREATED.inc()
            return call
    raise AssertionError("unreachable: tenacity reraises")


def dial(ctx: Context, job_id: str) -> None:
    claimed = claim(ctx, job_id)
    if claimed is None:
        log.debug("job %s not claimable; someone else has it or it is done", job_id)
        return
    try:
        call = _create_paced(ctx, claimed)
    except PacingBacklog as exc:
        release(ctx, claimed, exc.wait, "pacing backlog")
    except RedisError:
        log.warning("redis unreachable: not dialing job %s (fail closed)", job_id)
        release(ctx, claimed, REDIS_DOWN_RETRY_S, "redis unreachable")
    except NoLongerDialing:
        discard_attempt(ctx, claimed)
    except Deferred as exc:
        release(ctx, claimed, max(0.0, (exc.until - utcnow()).total_seconds()), exc.reason)
    except OnDoNotCall:
        refuse_do_not_call(ctx, claimed)
    except Exception as exc:
        failure = classify_create_error(exc)
        if failure is CreateFailure.TRANSIENT:
            release(ctx, claimed, TRANSIENT_EXHAUSTED_RETRY_S, f"transient errors: {exc}")
        elif failure is CreateFailure.PERMANENT:
            reject(ctx, claimed, exc)
        else:
            mark_unknown(ctx, claimed, exc)
    else:
        record_created(ctx, claimed, call)


def discard_attempt(ctx: Context, claimed: Claimed) -> None:
    """The job was canceled before its create was sent: the attempt never happened."""
    with ctx.database.session() as session:
        give_back(session, claimed.attempt_id, claimed.job_id, only_dialing=False)


def refuse_do_not_call(ctx: Context, claimed: Claimed) -> None:
    """Listed after it was enqueued: no call, and the job ends here."""
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        if not give_back(session, claimed.attempt_id, claimed.job_id,
                         status=JobStatus.FAILED, outcome="do-not-call"):
            return
        notifications.job_finished(session, [claimed.job_id])
    log.info("job %s to %s not dialed: on the do-not-call list", claimed.job_id,
             mask(claimed.params["to"]))


def _mark_attempt(session: Session, claimed: Claimed, **values: Any) -> bool:
    """Settle our `creating` attempt; False if the reconciler already took it (see above)."""
    return bool(session.execute(update(Attempt).where(
        Attempt.id == claimed.attempt_id, Attempt.status == AttemptStatus.CREATING)
        .values(**values)).rowcount)


def reject(ctx: Context, claimed: Claimed, exc: BaseException) -> None:
    code, message = error_code(exc), error_message(exc)
    now = utcnow()
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        if not _mark_attempt(session, claimed, status=AttemptStatus.REJECTED, error_code=code,
                             error_message=message, ended_at=now):
            return
        if session.execute(
            update(Job).where(Job.id == claimed.job_id, Job.status == JobStatus.DIALING).values(
                status=JobStatus.FAILED, outcome=str(code) if code else AttemptStatus.REJECTED,
                error_code=code, error_message=message, updated_at=now)).rowcount:
            # A refused create is an attempt too: its end is news to a notify_each_attempt job.
            notifications.attempt_ended(session, claimed.job_id, claimed.attempt_id)
            notifications.job_finished(session, [claimed.job_id])
    log.warning("job %s to %s refused by Twilio: %s", claimed.job_id,
                mask(claimed.params["to"]), message)


def mark_unknown(ctx: Context, claimed: Claimed, exc: BaseException) -> None:
    """A create that may have reached Twilio: never resent blindly; the reconciler decides."""
    with ctx.database.session() as session:
        # updated_at: the reconciler's grace for finding the call counts from this answer.
        if not _mark_attempt(session, claimed, status=AttemptStatus.UNKNOWN,
                             error_code=error_code(exc), error_message=error_message(exc),
                             updated_at=utcnow()):
            log.error("job %s: attempt %d was released while its create ran, and the create's "
                      "answer was ambiguous: a call may exist that no attempt holds",
                      claimed.job_id, claimed.ordinal)
            return
    log.warning("job %s attempt %d ambiguous create (%s); left for the reconciler",
                claimed.job_id, claimed.ordinal, error_message(exc))


def record_created(ctx: Context, claimed: Claimed, call: Any) -> None:
    try:
        _record_created(ctx, claimed, call)
    except IntegrityError:
        # Twilio's SIDs are unique; a stand-in restarted with a fixed seed is not. The call
        # cannot be told apart from the attempt that holds its SID (their callbacks would
        # mix), so it is ended, and the job dialed again as if this attempt never happened.
        log.error("job %s: call %s has the SID of another attempt; ending it, and dialing "
                  "the job again in %.0fs", claimed.job_id, call.sid, SID_COLLISION_RETRY_S)
        end_live_call(ctx, call.sid, str(call.status))
        release(ctx, claimed, SID_COLLISION_RETRY_S, "call SID collision")


def _record_created(ctx: Context, claimed: Claimed, call: Any) -> None:
    status = str(call.status)
    with ctx.database.transaction() as connection:
        # `queued`, not the answer's status: a terminal one written here would bypass
        # apply_event, so the job would never be decided (nor look silent to the reconciler).
        recorded = connection.execute(_RECORD_SID, {
            "attempt_id": claimed.attempt_id, "call_sid": call.sid,
            "job": claimed.job_id}).one_or_none()
    job_status, orphaned = recorded or (None, False)
    if recorded and orphaned:
        # Callbacks that came before this answer: rare, and handled in a Session of their
        # own (a callback retried meanwhile adopts its own event just as well).
        with ctx.database.session() as session:
            notifications.publish_after_commit(ctx, session)
            adopt_orphan_events(session, call.sid)
    if not recorded:
        # The reconciler gave this attempt up (the worker looked dead); the job may be
        # dialed again, so this call must not go on.
        log.error("job %s: attempt %d was released while its create ran; ending call %s",
                  claimed.job_id, claimed.ordinal, call.sid)
        end_live_call(ctx, call.sid, status)
        return
    log.info("job %s attempt %d created call %s", claimed.job_id, claimed.ordinal, call.sid)
    if job_status == JobStatus.CANCELED:
        # canceled between our last check and the create: end the call we just placed
        end_live_call(ctx, call.sid, status)
