"""Single calls: enqueue, look up, cancel. `worker.api` binds these to the context built from
the environment: `from worker import enqueue_call, enqueue_calls, get_job, cancel_job`."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, Select, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from worker.domain import validation
from worker.domain.clock import utcnow
from worker.domain.lifecycle import is_terminal
from worker.domain.statuses import FINAL_JOB_STATUSES, WAITING_JOB_STATUSES, JobStatus
from worker.engine import notifications
from worker.engine.calls import end_live_call
from worker.engine.context import Context
from worker.engine.outbox import publish_place_calls
from worker.logs import mask
from worker.settings import Settings
from worker.store.database import in_chunks, insert_unless_stored, table_row
from worker.store.models import WITH_ATTEMPTS, DoNotCall, Job

log = logging.getLogger(__name__)


def enqueue_call(
    ctx: Context,
    to: str,
    from_: str | None = None,
    *,
    url: str | None = None,
    twiml: str | None = None,
    application_sid: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
    retry_on: Iterable[str] | None = None,
    retry_delays: Iterable[int] | None = None,
    campaign_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    call_options: Mapping[str, Any] | None = None,
    at: datetime | str | None = None,
    notify_url: str | None = None,
    notify_each_attempt: bool = False,
) -> str:
    """Store a call job and return its id.

    Exactly one of `url`, `twiml` or `application_sid` says what the call does.
    `at` (an aware datetime, or ISO 8601 text with its offset) is the earliest the call is
    placed; the pace, the calling window and the do-not-call list still apply then.
    `notify_url` receives a signed call.finished event when the job is final (and a
    call.attempt_ended after each attempt with `notify_each_attempt`); without it, the
    job's campaign's, else DIALER_NOTIFY_URL. The
    same idempotency_key with the same call returns the first job; with a different call it
    raises IdempotencyConflict. Raises ValueError naming the field for bad input, and then
    stores nothing.
    """
    # Taken first, so it holds exactly the arguments by name, as enqueue gets them.
    arguments = dict(locals())
    del arguments["ctx"]
    (enqueued,) = enqueue(ctx, [arguments], batch=False)
    return enqueued.job_id


_ARGUMENTS = frozenset(inspect.signature(enqueue_call).parameters) - {"ctx"}


def enqueue_calls(ctx: Context, calls: Iterable[Mapping[str, Any]]) -> list[str]:
    """Many jobs in one transaction and one broker connection, for producers enqueueing in bulk.

    Each item holds enqueue_call's arguments by name (`to` is required). All or nothing: a
    bad item raises ValueError naming it and its field (`calls[3].to: ...`), and nothing is
    stored. Returns the job ids in the items' order; an item whose idempotency_key is
    already stored, or repeated earlier in the batch, gets that job's id, as one
    enqueue_call after another would.
    """
    return [enqueued.job_id for enqueued in enqueue(ctx, calls)]


@dataclass(frozen=True)
class Enqueued:
    """A call's job, and whether this enqueue made it (False: its idempotency key named a
    job stored before, or earlier in the same batch)."""

    job_id: str
    created: bool
    # The new job's row as stored (attribute names, as the Job model's): what a caller
    # shows of a job it just made, without reading it back.
    row: Mapping[str, Any] | None = None


def enqueue(ctx: Context, calls: Iterable[Mapping[str, Any]], *, batch: bool = True,
            api_key_id: str | None = None) -> list[Enqueued]:
    """enqueue_call and enqueue_calls in one: each mapping holds enqueue_call's keyword
    arguments by name; all or nothing.

    A ValueError names the field, prefixed with the item (`calls[3].to: ...`) when `batch`;
    without `batch` exactly one call is expected and the field stands alone (`to: ...`).
    `api_key_id`: the HTTP API's key that sends them, whose secret signs their events.
    """
    calls = list(calls)
    if not batch and len(calls) != 1:
        raise ValueError(f"calls: one call is expected without batch, got {len(calls)}")

    def where(index: int) -> str:
        return f"calls[{index}]." if batch else ""

    rows = []
    for index, spec in enumerate(calls):
        if not isinstance(spec, Mapping):
            item = f"calls[{index}]" if batch else "calls"
            raise ValueError(f"{item}: a mapping of enqueue_call's arguments is expected")
        unknown = sorted(set(spec) - _ARGUMENTS)
        if unknown:
            raise ValueError(f"{where(index)}{unknown[0]}: not an argument of enqueue_call")
        try:
            rows.append({**_job_row(ctx.settings, spec), "api_key_id": api_key_id})
        except ValueError as exc:
            raise ValueError(f"{where(index)}{exc}") from None
    return _store(ctx, rows, where) if rows else []


class IdempotencyConflict(ValueError):
    """An idempotency key already names a different call."""


# The checked fields that make two requests the same call (with `at`, which is no column).
REQUEST_FIELDS = ("to", "from_", "url", "twiml", "max_attempts", "retry_on", "retry_delays",
                  "campaign_id", "metadata_", "call_options")


def _job_row(settings: Settings, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The jobs row for one call, every field checked; ValueError names the first bad one."""
    voice = validation.check_voice_instructions(spec.get("url"), spec.get("twiml"),
                                                spec.get("application_sid"))
    from_ = spec.get("from_")
    now = utcnow()
    at = validation.check_at(spec.get("at"))
    row = {
        "id": uuid.uuid4().hex,
        "to": validation.normalize_to(spec.get("to")),
        "from_": validation.normalize_from(from_ if from_ is not None else settings.default_from),
        **voice._asdict(),
        "idempotency_key": validation.check_idempotency_key(spec.get("idempotency_key")),
        "max_attempts": validation.check_max_attempts(spec.get("max_attempts"),
                                                      settings.max_attempts),
        "retry_on": validation.check_retry_on(spec.get("retry_on"), settings.retry_on),
        "retry_delays": validation.check_retry_delays(spec.get("retry_delays"),
                                                      settings.retry_delays),
        "campaign_id": spec.get("campaign_id"),
        "metadata_": validation.check_metadata(spec.get("metadata")),
        "call_options": validation.check_call_options(spec.get("call_options")),
        **_notify_fields(settings, spec),
        "status": JobStatus.QUEUED,
        "next_attempt_at": now,
        "queued_at": now,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    if at is not None and at > now:
        row.update(status=JobStatus.SCHEDULED, next_attempt_at=at, queued_at=None)
    row["request_hash"] = None if row["idempotency_key"] is None else _request_hash(row, at, spec)
    return row


def check_notify(settings: Settings, url: object, each_attempt: object) -> tuple[str | None, bool]:
    """A notify_url and notify_each_attempt as given; ValueError names the field."""
    if not isinstance(each_attempt, bool):
        raise ValueError(f"notify_each_attempt: must be true or false, got {each_attempt!r}")
    if url is None:
        return None, each_attempt
    url = validation.check_url(url, "notify_url")
    if settings.notify_secret is None:
        raise ValueError("notify_url: DIALER_NOTIFY_SECRET is not set")
    return url, each_attempt


def _notify_fields(settings: Settings, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The job's own choice; without one, DIALER_NOTIFY_URL, unless a campaign's applies."""
    url, each = check_notify(settings, spec.get("notify_url"),
                             spec.get("notify_each_attempt", False))
    if url is None and spec.get("campaign_id") is None:
        url = settings.notify_url
        if each and url is None:
            raise ValueError("notify_each_attempt: needs a notify_url")
    return {"notify_url": url, "notify_each_attempt": each}


def _request_hash(row: Mapping[str, Any], at: datetime | None,
                  given: Mapping[str, Any]) -> str:
    request = {name: row[name] for name in REQUEST_FIELDS}
    request["at"] = at.isoformat() if at else None
    # Only when the request names them (checked, as stored): a request without them has
    # the same fingerprint whatever DIALER_NOTIFY_URL says, and as a job stored before
    # application_sid existed.
    for name in ("notify_url", "notify_each_attempt", "application_sid"):
        if given.get(name):
            request[name] = row[name]
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _store(ctx: Context, rows: list[dict[str, Any]],
           where: Callable[[int], str]) -> list[Enqueued]:
    """Insert the rows' new jobs, publish them, and return every row's job in order."""
    if len(rows) == 1 and _insert_one(ctx, rows[0]):
        enqueued, new = [Enqueued(rows[0]["id"], created=True, row=rows[0])], rows
    else:
        enqueued, new = _insert_checked(ctx, rows, where)
    publish_place_calls(ctx, [row["id"] for row in new if row["status"] == JobStatus.QUEUED])
    for row in new:
        log.info("job %s enqueued to %s", row["id"], mask(row["to"]))
    return enqueued


def _insert_one(ctx: Context, row: dict[str, Any]) -> bool:
    """One call's job in one statement, the do-not-call check and the key's uniqueness in
    it; False, with nothing stored, when either refuses: _insert_checked then says why (or
    stores it, if the number or the key's job has gone meanwhile)."""
    values = table_row(Job, row)
    with ctx.database.autocommit() as connection:
        statement = _insert_unless_listed(connection.dialect.name, tuple(values))
        return connection.execute(statement, values).rowcount == 1


def _insert_checked(ctx: Context, rows: list[dict[str, Any]],
                    where: Callable[[int], str]) -> tuple[list[Enqueued], list[dict[str, Any]]]:
    """_insert_new, once more when a concurrent producer stored one of the keys after it
    looked: the unique constraint decided, so the second look finds it. Without keys an
    IntegrityError is a real error."""
    try:
        return _insert_new(ctx, rows, where)
    except IntegrityError:
        if not any(row["idempotency_key"] for row in rows):
            raise
        return _insert_new(ctx, rows, where)


def _insert_new(ctx: Context, rows: list[dict[str, Any]],
                where: Callable[[int], str]) -> tuple[list[Enqueued], list[dict[str, Any]]]:
    """One transaction: the do-not-call check, the idempotency lookup, one INSERT of the rest."""
    with ctx.database.transaction() as connection:
        listed = _lookup(connection, _LISTED, {r["to"] for r in rows})
        for index, row in enumerate(rows):
            if row["to"] in listed:
                raise ValueError(f"{where(index)}to: {row['to']} is on the do-not-call list")
        keys = {r["idempotency_key"] for r in rows if r["idempotency_key"]}
        stored = _lookup(connection, _KEYS_STORED, keys)
        enqueued, new = [], []
        for index, row in enumerate(rows):
            key = row["idempotency_key"]
            if key is None or key not in stored:
                new.append(row)
                enqueued.append(Enqueued(row["id"], created=True, row=row))
                if key is not None:
                    stored[key] = (row["id"], row["request_hash"])
                continue
            job_id, fingerprint = stored[key]
            # A job stored without a fingerprint: its key alone decides.
            if fingerprint not in (None, row["request_hash"]):
                raise IdempotencyConflict(
                    f"{where(index)}idempotency_key: {key!r} is job {job_id}, "
                    "enqueued with different arguments")
            enqueued.append(Enqueued(job_id, created=False))
        if new:
            # Core executemany: SQLAlchemy batches it into multi-row INSERTs, with none of
            # the ORM's per-object bookkeeping. In key order: two producers inserting the
            # same keys then wait on each other's index entries in one order, never in a
            # cycle (PostgreSQL would end the cycle by failing one batch as a deadlock).
            connection.execute(_INSERT_JOBS,
                               [table_row(Job, row) for row in sorted(new, key=_insert_order)])
    return enqueued, new


def _insert_order(row: Mapping[str, Any]) -> tuple[bool, str]:
    return row["idempotency_key"] is None, row["idempotency_key"] or ""


# Built once: an enqueue runs them for every call (keys bound as an expanding IN list).
_INSERT_JOBS = insert(Job.__table__)
_LISTED = select(DoNotCall.number).where(
    DoNotCall.number.in_(bindparam("wanted", expanding=True)))
_KEYS_STORED = select(Job.idempotency_key, Job.id, Job.request_hash).where(
    Job.idempotency_key.in_(bindparam("wanted", expanding=True)))


@cache
def _insert_unless_listed(dialect_name: str, keys: tuple[str, ...]) -> Insert:
    """INSERT INTO jobs (keys) SELECT <the row> WHERE its number is not on the do-not-call
    list, ON CONFLICT (idempotency_key) DO NOTHING: one round trip, no row when either
    refuses. Built once per backend and row shape (a new job's row has one)."""
    table = Job.__table__
    to = bindparam("to", type_=table.c.to.type)
    columns = [table.c[key] for key in keys]
    values = select(*[to if key == "to" else bindparam(key, type_=table.c[key].type)
                      for key in keys])
    listed = select(DoNotCall.number).where(DoNotCall.number == to).exists()
    # rowcount is kept only for UPDATE and DELETE unless asked for.
    return (insert_unless_stored(dialect_name, Job, ("idempotency_key",))
            .from_select(columns, values.where(~listed))
            .execution_options(preserve_rowcount=True))


def _lookup(connection: Connection, statement: Select[Any],
            wanted: set[str]) -> dict[str, tuple[Any, ...]]:
    """{key: (other columns...)} of what `statement` finds for the keys in wanted, a chunk of
    keys per execution; no statement at all for none."""
    found: dict[str, tuple[Any, ...]] = {}
    for chunk in in_chunks(sorted(wanted)):
        found.update((found_key, tuple(values)) for found_key, *values in
                     connection.execute(statement, {"wanted": list(chunk)}))
    return found


def get_job(ctx: Context, job_id: str) -> Job | None:
    """The job with its attempts loaded, detached from any session, or None."""
    return get_jobs(ctx, [job_id]).get(job_id)


def get_jobs(ctx: Context, job_ids: Sequence[str]) -> dict[str, Job]:
    """get_job of many jobs, by id, in one transaction; an unknown id is left out."""
    found: dict[str, Job] = {}
    with ctx.database.session() as session:
        for chunk in in_chunks(list(job_ids)):
            found.update((job.id, job) for job in session.scalars(
                select(Job).where(Job.id.in_(chunk)).options(WITH_ATTEMPTS)))
    return found


@dataclass(frozen=True)
class CancelResult:
    job_id: str
    canceled: bool
    status: str
    message: str


def cancel_job(ctx: Context, job_id: str) -> CancelResult:
    """Cancel a job: never dialed if it was waiting; its live call ended if it was dialing.

    A final job stays as it is; the result says so. An unknown id raises ValueError.
    """
    now = utcnow()
    with ctx.database.session() as session:
        notifications.publish_after_commit(ctx, session)
        job = session.get(Job, job_id)
        if job is None:
            raise ValueError(f"job_id: no job {job_id!r}")
        if job.status in FINAL_JOB_STATUSES:
            return CancelResult(job_id, False, job.status, f"job is already {job.status}")
        not_final = (*WAITING_JOB_STATUSES, JobStatus.DIALING)
        won = session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(not_final))
            .values(status=JobStatus.CANCELED, outcome="canceled", updated_at=now)).rowcount
        live = [a for a in job.attempt_rows if a.call_sid and not is_terminal(a.status)]
        if won:
            notifications.job_finished(session, [job_id])
    if not won:
        return cancel_job(ctx, job_id)  # it changed under us; report what it is now
    for attempt in live:
        end_live_call(ctx, attempt.call_sid, attempt.status)
    return CancelResult(job_id, True, JobStatus.CANCELED,
                        "canceled; live call ended" if live else "canceled before dialing")
