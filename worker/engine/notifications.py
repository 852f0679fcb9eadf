"""Result notifications: the events a producer's notify_url receives, made in the
transaction that makes a job final (the database is the outbox) and delivered by their own
task on their own queue, so a slow receiver never holds up dialing.

Delivery is at least once: the event id is stable, and receivers deduplicate on it (the
`webhook-id` header). A delivery claims its message's rows by compare-and-set, pushing
next_attempt_at forward by a lease that covers each of their POSTs, so two workers never
POST the same event at once; failures wait in the row (next_attempt_at), never in a Celery
ETA, and the relay publishes the due ones. A published message leases its row too
(relayed_until): the relay publishes a due event again only once that lease has passed (a
message not taken by then counts as lost), whatever else the notify queue holds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    event,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from worker.domain.clock import utcnow
from worker.domain.notifications import (
    GONE,
    NotificationStatus,
    NotificationType,
    api_key_signing_key,
    is_success,
    retry_delay,
    signed_headers,
)
from worker.domain.statuses import FINAL_JOB_STATUSES
from worker.engine import metrics
from worker.engine.context import Context
from worker.store.database import in_chunks
from worker.store.models import (
    WITH_ATTEMPTS,
    Attempt,
    Campaign,
    Job,
    Notification,
    NotificationAttempt,
    Recording,
)

log = logging.getLogger(__name__)

# Ids of the events this transaction made, published after it commits.
_NEW = "dialer_new_notifications"
# How many due events the relay publishes per run.
RELAY_BATCH = 500
# How long a published deliver_notification message holds its event: a message not taken
# by then counts as lost (its publisher died after commit), and the relay publishes again.
# Long enough for a notify queue backed up by a slow receiver to reach it.
RELAY_LEASE = timedelta(minutes=5)
ERROR_MAX_CHARS = 500


def _campaign_default(column: Any) -> Any:
    return select(column).where(Campaign.id == Job.campaign_id).scalar_subquery()


# A job's own choice, else its campaign's (the global default is stored on the job, or its
# campaign, when it is made). Read in the statements that already select the job.
NOTIFY_URL: ColumnElement[str | None] = func.coalesce(Job.notify_url,
                                                      _campaign_default(Campaign.notify_url))
NOTIFY_EACH_ATTEMPT: ColumnElement[bool] = (
    Job.notify_each_attempt | func.coalesce(_campaign_default(Campaign.notify_each_attempt),
                                            false()))


_INSERT_EVENT = insert(Notification.__table__)


def new_event_id() -> str:
    return "msg_" + uuid.uuid4().hex


def job_finished(session: Session, job_ids: Iterable[str]) -> list[str]:
    """A call.finished event for each of these jobs that is final and asks for one; the ids.

    Called by whoever just made the jobs final, in that transaction: once per job.
    """
    made: list[str] = []
    for chunk in in_chunks(list(job_ids)):
        rows = session.execute(
            select(Job, NOTIFY_URL).where(Job.id.in_(chunk), NOTIFY_URL.is_not(None),
                                          Job.status.in_(list(FINAL_JOB_STATUSES)))
            .options(WITH_ATTEMPTS).execution_options(populate_existing=True)
        ).all()
        made += _store(session, [_event(job, url, NotificationType.CALL_FINISHED)
                                 for job, url in rows])
    return made


def attempt_ended(session: Session, job_id: str, attempt_id: int) -> str | None:
    """A call.attempt_ended event for this ended attempt, if its job asks for one."""
    row = session.execute(
        select(Job, NOTIFY_URL).where(Job.id == job_id, NOTIFY_URL.is_not(None),
                                      NOTIFY_EACH_ATTEMPT)
        .options(WITH_ATTEMPTS).execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        return None
    job, url = row
    attempt = next(a for a in job.attempt_rows if a.id == attempt_id)
    (made,) = _store(session, [_event(job, url, NotificationType.ATTEMPT_ENDED, attempt)])
    return made


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def recording_as_dict(recording: Recording) -> dict[str, Any]:
    return {"sid": recording.sid, "status": recording.status, "url": recording.url,
            "duration": recording.duration, "channels": recording.channels,
            "source": recording.source, "track": recording.track,
            "started_at": _iso(recording.started_at), "error_code": recording.error_code}


def attempt_as_dict(attempt: Attempt) -> dict[str, Any]:
    """An attempt as producers see it, in notifications and in the HTTP API alike (its
    recordings loaded with it: WITH_ATTEMPTS)."""
    return {
        "ordinal": attempt.ordinal, "call_sid": attempt.call_sid, "status": attempt.status,
        "duration": attempt.duration, "answered_by": attempt.answered_by,
        "machine_detection_duration_ms": attempt.machine_detection_duration,
        "sip_response_code": attempt.sip_response_code, "error_code": attempt.error_code,
        "error_message": attempt.error_message, "started_at": _iso(attempt.created_at),
        "ended_at": _iso(attempt.ended_at),
        "recordings": [recording_as_dict(r) for r in attempt.recordings],
    }


def event_data(job: Job, attempt: Attempt | None = None) -> dict[str, Any]:
    """The event's `data`: the job as the producer knows it, with its attempts."""
    data: dict[str, Any] = {
        "job_id": job.id, "idempotency_key": job.idempotency_key, "status": job.status,
        "outcome": job.outcome, "to": job.to, "campaign_id": job.campaign_id,
        "attempts": [attempt_as_dict(a) for a in job.attempt_rows],
        "error_code": job.error_code, "error_message": job.error_message,
        "metadata": job.metadata_,
    }
    if attempt is not None:
        data["attempt"] = attempt_as_dict(attempt)
    return data


def _event(job: Job, url: str, type_: NotificationType,
           attempt: Attempt | None = None) -> dict[str, Any]:
    """The notifications row of one new event, due now and leased by its publish."""
    now = utcnow()
    event_id = new_event_id()
    payload = {"id": event_id, "type": type_.value, "timestamp": now.isoformat(),
               "data": event_data(job, attempt)}
    return {"id": event_id, "job_id": job.id, "type": type_.value, "url": url,
            "payload": payload, "status": NotificationStatus.PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now, "relayed_until": now + RELAY_LEASE,
            "api_key_id": job.api_key_id}


def _store(session: Session, events: list[dict[str, Any]]) -> list[str]:
    """Insert the events in one statement on the Session's connection (a bulk cancel makes
    a thousand per transaction) and note them for publish_after_commit; their ids."""
    if events:
        session.connection().execute(_INSERT_EVENT, events)
    ids = [e["id"] for e in events]
    session.info.setdefault(_NEW, []).extend(ids)
    return ids


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_NEW, None)


def publish_after_commit(ctx: Context, session: Session) -> None:
    """Publish the events this transaction makes once it commits: the fast path. What it
    misses (the broker refused, the process died) the relay publishes."""
    metrics.after_commit(session, lambda: publish(ctx, session.info.pop(_NEW, [])))


def publish(ctx: Context, ids: Sequence[str]) -> None:
    """Publish leased events; if the broker refuses, give their leases back, so the next
    relay run publishes them rather than the one after the lease.

    Never raises: it runs after its transaction committed, whose caller must not take the
    committed work for failed. Leases the database cannot give back just run out.
    """
    if not ids:
        return
    try:
        ctx.broker.publish_notifications(ids)
    except Exception as exc:
        log.warning("could not publish %d notification(s) (%s: %s); the relay will",
                    len(ids), type(exc).__name__, exc)
        try:
            with ctx.database.session() as session:
                for chunk in in_chunks(list(ids)):
                    session.execute(update(Notification).where(Notification.id.in_(chunk))
                                    .values(relayed_until=None)
                                    .execution_options(synchronize_session=False))
        except SQLAlchemyError as db_exc:
            log.warning("could not give back the leases of %d notification(s) (%s); the "
                        "relay publishes them once the leases pass", len(ids), db_exc)


def _relayable(now: datetime) -> list[ColumnElement[bool]]:
    """Pending, due, and no message published for it still holding it."""
    return [Notification.status == NotificationStatus.PENDING,
            Notification.next_attempt_at <= now,
            or_(Notification.relayed_until.is_(None), Notification.relayed_until <= now)]


def relay(ctx: Context) -> int:
    """Publish the events that are due (new ones the fast path missed, retries whose time
    has come) and not leased by a message already published; how many.

    One UPDATE picks them and leases them: a concurrent relay's UPDATE rechecks the lease on
    each row it waited for, so two relays never publish the same event within a lease.
    """
    if ctx.settings.notify_secret is None:
        return 0
    now = utcnow()
    due = (select(Notification.id).where(*_relayable(now))
           .order_by(Notification.next_attempt_at).limit(RELAY_BATCH))
    with ctx.database.session() as session:
        ids = list(session.scalars(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()), *_relayable(now))
            .values(relayed_until=now + RELAY_LEASE)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)))
    publish(ctx, ids)
    return len(ids)


def lease_s(ctx: Context) -> float:
    """How long a delivery holds each event of its message: the POST's timeouts (connect
    and read) and room to record it."""
    return 2 * ctx.settings.notify_timeout + 30


# The delivery's statements, built once: on a connection they cost a fraction of the ORM
# Session's execution path, and they run for every event.
_N = Notification.__table__.c
_CLAIM = (update(Notification.__table__)
          .where(_N.id.in_(bindparam("ids", expanding=True)),
                 _N.status == NotificationStatus.PENDING,
                 _N.next_attempt_at <= bindparam("now"))
          # The message is taken: past this lease, the relay may publish the events again.
          .values(next_attempt_at=bindparam("lease_until"), relayed_until=None)
          .returning(_N.id, _N.url, _N.payload, _N.attempts, _N.job_id, _N.api_key_id))
_TRY = insert(NotificationAttempt.__table__).values(
    notification_id=bindparam("notification_id"), attempted_at=bindparam("now"),
    status_code=bindparam("status_code"), latency_ms=bindparam("latency_ms"),
    error=bindparam("error"))
# Only while our lease holds: past it, another delivery owns the row.
_MINE = (update(Notification.__table__)
         .where(_N.id == bindparam("notification_id"),
                _N.status == NotificationStatus.PENDING,
                _N.next_attempt_at == bindparam("lease_until"))
         .values(attempts=bindparam("tries"), last_status_code=bindparam("status_code"),
                 last_error=bindparam("error")))
_OUTCOMES = {"delivered": _MINE.values(status=NotificationStatus.DELIVERED,
                                       delivered_at=bindparam("now")),
             "retry": _MINE.values(next_attempt_at=bindparam("retry_at")),
             "gave_up": _MINE.values(status=NotificationStatus.GAVE_UP)}


def deliver_many(ctx: Context, notification_ids: Sequence[str]) -> list[str]:
    """POST each of these events in turn (one message carries several: Celery's cost per
    task is most of an event's); what happened to each: 'delivered', 'retry', 'gave_up',
    'skipped' (not pending, not due, or another worker holds it), or 'error' for one whose
    delivery could not be recorded (it is left to the relay).

    One claim and one transaction recording them all, not two per event: on PostgreSQL
    each commit waits for the disk. The claim's lease covers every POST of the message.
    """
    secret = ctx.settings.notify_secret
    if secret is None:
        log.warning("notifications %s not sent: DIALER_NOTIFY_SECRET is not set",
                    ", ".join(notification_ids))
        return ["skipped"] * len(notification_ids)
    now = utcnow()
    lease_until = now + timedelta(seconds=lease_s(ctx) * len(notification_ids))
    with ctx.database.transaction() as connection:
        claimed = {row.id: row for row in connection.execute(
            _CLAIM, {"ids": list(notification_ids), "now": now, "lease_until": lease_until})}
    records = [_post(ctx, secret, claimed[n], lease_until)
               for n in notification_ids if n in claimed]
    outcomes = dict(_record(ctx, records))
    return [outcomes.get(n, "skipped") for n in notification_ids]


def _post(ctx: Context, secret: bytes, claimed: Any, lease_until: datetime) -> dict[str, Any]:
    """Sign and POST one claimed event; what its record needs."""
    key = (secret if claimed.api_key_id is None
           else api_key_signing_key(secret, claimed.api_key_id))
    body = json.dumps(claimed.payload, separators=(",", ":")).encode()
    headers = signed_headers(key, claimed.id, int(time.time()), body)
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = ctx.notifier.post(claimed.url, body, headers, ctx.settings.notify_timeout)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
    now = utcnow()
    attempts = claimed.attempts + 1
    # No key may name a column of the notifications table the statements leave alone: Core
    # adds to an UPDATE's SET every column its parameters name.
    record: dict[str, Any] = {
        "notification_id": claimed.id, "job": claimed.job_id, "now": now,
        "lease_until": lease_until, "tries": attempts, "status_code": status_code,
        "latency_ms": round((time.monotonic() - started) * 1000), "error": error}
    if is_success(status_code):
        record["outcome"] = "delivered"
        return record
    if error is None:
        record["error"] = f"HTTP {status_code}"
    delay = (None if status_code == GONE
             else retry_delay(attempts, ctx.settings.notify_retry_delays))
    if delay is None:
        record["outcome"] = "gave_up"
    else:
        record["outcome"] = "retry"
        record["retry_at"] = now + timedelta(seconds=delay)
    return record


def _record(ctx: Context, records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Store each POST and its outcome, all in one transaction; should that fail, each in
    its own, so one event that cannot be recorded (its job erased meanwhile) holds up no
    other. (notification id, outcome) of each."""
    if not records:
        return []
    try:
        _store_records(ctx, records)
    except Exception:
        if len(records) == 1:
            log.exception("notification %s: its delivery could not be recorded; the relay "
                          "publishes it again", records[0]["notification_id"])
            return [(records[0]["notification_id"], "error")]
        return [done for record in records for done in _record(ctx, [record])]
    for r in records:
        log.log(logging.INFO if r["outcome"] == "delivered" else logging.WARNING,
                "notification %s of job %s: %s after try %d (%s, %d ms)",
                r["notification_id"], r["job"], r["outcome"], r["tries"],
                r["status_code"] if r["status_code"] is not None else r["error"],
                r["latency_ms"])
    return [(r["notification_id"], r["outcome"]) for r in records]


def _store_records(ctx: Context, records: list[dict[str, Any]]) -> None:
    with ctx.database.transaction() as connection:
        connection.execute(_TRY, records)
        for outcome, statement in _OUTCOMES.items():
            rows = [r for r in records if r["outcome"] == outcome]
            if rows:
                connection.execute(statement, rows)


def retry_given_up(ctx: Context, *, job_id: str | None = None) -> int:
    """Put given-up events (of one job, or all) back to pending, due now; how many."""
    now = utcnow()
    with ctx.database.session() as session:
        query = update(Notification).where(Notification.status == NotificationStatus.GAVE_UP)
        if job_id is not None:
            query = query.where(Notification.job_id == job_id)
        ids = list(session.scalars(query.values(
            status=NotificationStatus.PENDING, next_attempt_at=now, attempts=0,
            relayed_until=now + RELAY_LEASE)
            .returning(Notification.id)))
    publish(ctx, ids)
    return len(ids)


def for_job(session: Session, job_id: str) -> list[dict[str, Any]]:
    """A job's events, oldest first, each with its delivery attempts (for `job show`)."""
    return for_jobs(session, [job_id])[job_id]


def for_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """for_job of many jobs in a few statements (the API answers a batch with them)."""
    notifications: list[Notification] = []
    for chunk in in_chunks(list(job_ids)):
        notifications += session.scalars(
            select(Notification).where(Notification.job_id.in_(chunk))
            .order_by(Notification.created_at, Notification.id)).all()
    tries: dict[str, list[dict[str, Any]]] = {n.id: [] for n in notifications}
    for chunk in in_chunks(list(tries)):
        for attempt in session.scalars(
                select(NotificationAttempt)
                .where(NotificationAttempt.notification_id.in_(chunk))
                .order_by(NotificationAttempt.id)):
            tries[attempt.notification_id].append({
                "attempted_at": attempt.attempted_at.isoformat(),
                "status_code": attempt.status_code, "latency_ms": attempt.latency_ms,
                "error": attempt.error})
    events: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id in job_ids}
    for n in notifications:
        events[n.job_id].append({
            "id": n.id, "type": n.type, "status": n.status, "attempts": n.attempts,
            "next_attempt_at": (n.next_attempt_at.isoformat()
                                if n.status == NotificationStatus.PENDING else None),
            "delivered_at": n.delivered_at.isoformat() if n.delivered_at else None,
            "last_status_code": n.last_status_code, "deliveries": tries[n.id]})
    return events
