"""Campaigns: bulk import of contacts, pause / resume / cancel, and reports.

The import is one transaction of bulk inserts (not one ORM object per row): either the
campaign and every valid row are stored, or nothing is.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import logging
import multiprocessing
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from worker.domain import validation
from worker.domain.clock import utcnow
from worker.domain.eta import eta_seconds
from worker.domain.exports import OWN_COLUMNS, contact_column, safe_cell
from worker.domain.statuses import (
    FINAL_JOB_STATUSES,
    WAITING_JOB_STATUSES,
    AttemptStatus,
    CampaignStatus,
    JobStatus,
)
from worker.domain.windows import Window, next_open_for, parse_window, stored_window, zone
from worker.engine.campaign_end import CANCELED_OUTCOME, END_CHUNK, end_waiting_jobs
from worker.engine.context import Context
from worker.producer.dnc import listed_numbers
from worker.producer.files import csv_rows, read_text
from worker.producer.jobs import cancel_job, check_notify
from worker.store.models import Attempt, Campaign, Job

log = logging.getLogger(__name__)

# Columns that override the campaign's call options for their row (an extension to dial,
# a longer ring); the value is text, as a CSV cell is. Every other column is the job's metadata.
ROW_CALL_OPTIONS: dict[str, type] = {"send_digits": str, "timeout": int, "time_limit": int,
                                     "machine_detection": str}
RESERVED_COLUMNS = ("to", "timezone", *ROW_CALL_OPTIONS)
CAMPAIGN_PRIORITY = 1  # single calls (0) go first
# A contact ready to store: to, metadata, time zones, its own call options (None: the campaign's).
Contact = tuple[str, dict[str, Any], tuple[str, ...], dict[str, Any] | None]
PAUSE_DRAIN_S = 30.0  # how long pause waits for creates already being sent
MAX_REPORTED_ERRORS = 1000
CHECK_CHUNK = 5000  # rows per unit of work when numbers are checked in several processes
CHECK_PROCESSES = 2
PARALLEL_MIN_ROWS = 20_000  # below this, starting the processes costs more than it saves
IMPORT_CACHE_KIB = 65536  # SQLite's page cache while the jobs are inserted


@dataclass
class ImportResult:
    campaign_id: str | None
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    do_not_call: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["invalid"] = [{"line": line, "reason": reason} for line, reason in self.invalid]
        return data


def read_contacts(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; errors name the file and what is wrong."""
    text = read_text(path)
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    # Cells and a dict per row: DictReader's bookkeeping costs more than the dict.
    rows = csv_rows(text, path)
    columns = [c.strip().lower() for c in next(rows, (0, []))[1]]
    if "to" not in columns:
        raise ValueError(f"{path}: no 'to' column in the header ({', '.join(columns)})")
    padding = [""] * len(columns)
    for line, row in rows:
        if row:  # a blank line is no row (as DictReader has it); short rows get ""
            if len(row) < len(columns):
                row += padding[len(row):]
            yield line, dict(zip(columns, map(str.strip, row), strict=False))


def create_campaign(
    ctx: Context,
    name: str,
    from_: str | None = None,
    *,
    contacts: Path | str | Iterable[Mapping[str, str]],
    url: str | None = None,
    twiml: str | None = None,
    application_sid: str | None = None,
    window: str | None = None,
    days: str | None = None,
    timezone: str = "UTC",
    max_attempts: int | None = None,
    retry_on: Iterable[str] | None = None,
    retry_delays: Iterable[int] | None = None,
    weight: int = 1,
    call_options: Mapping[str, Any] | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    notify_url: str | None = None,
    notify_each_attempt: bool = False,
    start_at: datetime | str | None = None,
    end_at: datetime | str | None = None,
    api_key_id: str | None = None,
) -> ImportResult:
    """Create a campaign and import its contacts (a CSV path, or rows as mappings).

    Invalid rows are reported and skipped (all refused with `strict`); a number repeated in
    the file is imported once; numbers on the do-not-call list are counted, not imported.
    Raises ValueError naming the field (or the file) for bad arguments; stores nothing then.
    `notify_url` and `notify_each_attempt` are its jobs' result notifications (see
    enqueue_call); without a notify_url, DIALER_NOTIFY_URL's. Nothing is dialed before
    `start_at`; at `end_at` the jobs still waiting end `canceled`, outcome `expired` (both
    aware datetimes or ISO 8601 text with an offset). `api_key_id`: the HTTP API's key that
    creates it, whose secret signs its jobs' events.
    """
    settings = ctx.settings
    notify_url, notify_each_attempt = check_notify(settings, notify_url, notify_each_attempt)
    notify_url = notify_url or settings.notify_url
    if notify_each_attempt and notify_url is None:
        raise ValueError("notify_each_attempt: needs a notify_url")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError("name: must be a non-empty name of at most 200 characters")
    voice = validation.check_voice_instructions(url, twiml, application_sid)
    parsed_window = parse_window(window, days)
    zone(timezone, "timezone")
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1000:
        raise ValueError(f"weight: must be a whole number from 1 to 1000, got {weight!r}")
    now = utcnow()
    starts, ends = validation.check_at(start_at, "start_at"), validation.check_at(end_at, "end_at")
    if ends is not None and ends <= max(now, starts or now):
        raise ValueError(f"end_at: {ends.isoformat()} is not after the start "
                         f"({max(now, starts or now).isoformat()})")
    campaign = {
        "id": uuid.uuid4().hex, "name": name.strip(),
        "from_": validation.normalize_from(from_ if from_ is not None else settings.default_from),
        **voice._asdict(), "call_options": validation.check_call_options(call_options),
        "max_attempts": validation.check_max_attempts(max_attempts, settings.max_attempts),
        "retry_on": validation.check_retry_on(retry_on, settings.retry_on),
        "retry_delays": validation.check_retry_delays(retry_delays, settings.retry_delays),
        "window_start": parsed_window.start.strftime("%H:%M"),
        "window_end": parsed_window.end.strftime("%H:%M") if parsed_window.end else None,
        "days": sorted(parsed_window.days), "timezone": timezone, "weight": weight,
        "status": CampaignStatus.ACTIVE, "vtime": 0.0, "created_at": now, "updated_at": now,
        "notify_url": notify_url, "notify_each_attempt": notify_each_attempt,
        "start_at": starts, "end_at": ends, "api_key_id": api_key_id,
    }
    rows = (read_contacts(Path(contacts)) if isinstance(contacts, (str, Path))
            else ((n + 2, dict(r)) for n, r in enumerate(contacts)))
    with ctx.database.session() as session:
        blocked = listed_numbers(session)
    rows = list(rows)  # an unreadable file fails here, before anything is stored
    result = ImportResult(campaign["id"], rows=len(rows))
    # The jobs are inserted as the processes check the next rows; the campaign goes last,
    # when its summary is known. One transaction: a refusal rolls every row back. On SQLite
    # it holds the write lock for the whole check; other writers wait on the busy timeout.
    with ctx.database.session() as session:
        store_jobs(session, campaign, _prepare_jobs(rows, campaign, parsed_window, blocked,
                                                     progress, result))
        if strict and result.invalid:
            line, reason = result.invalid[0]
            raise ValueError(f"contacts: {len(result.invalid)} invalid rows, nothing imported "
                             f"(first: line {line}: {reason})")
        campaign["import_summary"] = {k: v for k, v in result.to_json().items()
                                      if k != "invalid"}
        if not result.imported:
            campaign["status"] = CampaignStatus.DONE
        session.execute(insert(Campaign), [campaign])
    log.info("campaign %s: %d jobs imported, %d invalid, %d duplicates, %d on do-not-call",
             campaign["id"], result.imported, len(result.invalid), result.duplicates,
             result.do_not_call)
    return result


def _checked(pairs: list[tuple[object, str | None]], default: str,
             progress: Callable[[int], None] | None
             ) -> Iterator[tuple[str, tuple[str, ...]] | str]:
    """validation.recipients() of every (to, row zone), in order, a chunk at a time.

    Parsing and validating numbers with phonenumbers is most of an import's CPU time; a large
    file is shared out to a process per core, in fixed chunks whose results come back in
    file order, so the outcome is the same as checking it here.
    """
    chunks = [pairs[start:start + CHECK_CHUNK] for start in range(0, len(pairs), CHECK_CHUNK)]
    processes = min(CHECK_PROCESSES, os.cpu_count() or 1)
    with contextlib.ExitStack() as stack:
        if len(pairs) < PARALLEL_MIN_ROWS or processes < 2:
            results: Iterable[list[Any]] = (validation.recipients(c, default) for c in chunks)
        else:
            # fork: the children start at once with phonenumbers loaded, and only run pure
            # code on what they are sent; spawn and forkserver would start slower and re-run
            # the main module (an unguarded script that imports a file would recurse).
            pool = stack.enter_context(ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("fork")))
            results = pool.map(validation.recipients, chunks, itertools.repeat(default))
        for chunk in results:
            yield from chunk
            if progress is not None:
                progress(len(chunk))


def row_call_options(row: Mapping[str, Any], campaign_options: dict[str, Any]
                     ) -> dict[str, Any] | None:
    """The campaign's call options with the row's own (ROW_CALL_OPTIONS columns not left
    empty), checked together; None when the row gives none. ValueError names the column.

    A CSV cell is text; a JSON row may give a number as a number."""
    if row.keys().isdisjoint(ROW_CALL_OPTIONS):  # most files have none of these columns
        return None
    options = dict(campaign_options)
    for name, kind in ROW_CALL_OPTIONS.items():
        value = row.get(name)
        if isinstance(value, str):
            value = value.strip()
            if kind is int and value:
                if not value.isascii() or not value.isdigit():
                    raise ValueError(f"{name}: must be a whole number, got {row[name]!r}")
                value = int(value)
        if value not in (None, ""):
            options[name] = value
    if options == campaign_options:
        return None
    try:
        return validation.check_call_options(options)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("call_options.")) from None


def _prepare_jobs(rows: list[tuple[int, dict[str, str]]], campaign: dict[str, Any],
                  window: Window, blocked: set[str], progress: Callable[[int], None] | None,
                  result: ImportResult) -> Iterator[Contact]:
    """The checked rows as (to, metadata, zones, call options or None for the campaign's), in
    file order, as the checks come back; what is left out goes into `result`, complete once
    the rows are all taken."""
    seen: set[str] = set()
    imported = 0
    now = utcnow()
    opens: dict[tuple[str, ...], bool] = {}
    checked = _checked([(row.get("to", ""), row.get("timezone") or None) for _, row in rows],
                       campaign["timezone"], progress)
    for (line, row), outcome in zip(rows, checked, strict=True):
        if isinstance(outcome, str):
            result.invalid.append((line, outcome))
            continue
        try:
            options = row_call_options(row, campaign["call_options"])
        except ValueError as exc:
            result.invalid.append((line, str(exc)))
            continue
        to, zones = outcome
        if zones not in opens:
            opens[zones] = next_open_for(window, zones, campaign["timezone"], now) is not None
        if not opens[zones]:
            result.invalid.append((line, f"to: the window is never open in all of "
                                         f"{to}'s time zones ({', '.join(zones[:5])}...)"))
            continue
        if to in seen:
            result.duplicates += 1
            continue
        seen.add(to)
        if to in blocked:
            result.do_not_call += 1
            continue
        imported += 1
        yield to, {k: v for k, v in row.items() if k not in RESERVED_COLUMNS}, zones, options
    result.imported = imported
    del result.invalid[MAX_REPORTED_ERRORS:]


JOB_COLUMNS = ("id", "idempotency_key", "campaign_id", "to", "from", "url", "twiml",
               "application_sid", "call_options", "max_attempts", "retry_on", "retry_delays",
               "priority", "status", "next_attempt_at", "queued_at", "attempts", "metadata",
               "timezones", "api_key_id", "created_at", "updated_at")


def store_jobs(session: Session, campaign: dict[str, Any], jobs: Iterable[Contact]) -> None:
    """Insert the jobs through the driver, as `jobs` yields them: executemany on SQLite,
    COPY on PostgreSQL.

    The rows are what an insert() would store: JSON as the engine's serializer (json.dumps,
    make_engine sets no other) writes it, timestamps through their column type. But what
    every job shares is encoded once, each zone list once, and SQLAlchemy's per-row
    parameter handling (most of the cost of an insert() of 100,000 rows) is skipped.
    """
    connection = session.connection()
    dialect = connection.dialect
    stamp = Job.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    now = stamp(utcnow()) if stamp else utcnow()
    first = max(utcnow(), campaign["start_at"] or utcnow())
    due = stamp(first) if stamp else first
    zone_lists: dict[tuple[str, ...], str] = {}
    head = (None, campaign["id"])
    voice = (campaign["from_"], campaign["url"], campaign["twiml"], campaign["application_sid"])
    shared_options = json.dumps(campaign["call_options"])
    policy = (campaign["max_attempts"], json.dumps(campaign["retry_on"]),
              json.dumps(campaign["retry_delays"]), CAMPAIGN_PRIORITY,
              JobStatus.SCHEDULED.value, due, None, 0)
    values = (
        (uuid.uuid4().hex, *head, to, *voice,
         shared_options if options is None else json.dumps(options), *policy, json.dumps(meta),
         zone_lists.get(zones) or zone_lists.setdefault(zones, json.dumps(list(zones))),
         campaign["api_key_id"], now, now)
        for to, meta, zones, options in jobs)
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in JOB_COLUMNS)
    if dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(f"COPY jobs ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    else:
        # A page cache that holds the new rows and index pages for the import: SQLite's
        # default (2 MiB) spills them to the WAL and reads them back mid-transaction.
        cache_size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")  # -: KiB
        # The driver's own cursor: its executemany takes the rows as they are checked (and
        # none at all), where SQLAlchemy's wants them in a list first.
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO jobs ({names}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",
                values)
        finally:
            cursor.close()
            connection.exec_driver_sql(f"PRAGMA cache_size={cache_size}")


def _campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise ValueError(f"campaign_id: no campaign {campaign_id!r}")
    return campaign


def pause_campaign(ctx: Context, campaign_id: str) -> int:
    """Stop the campaign's calls. When this returns, no create of the campaign is on its way
    to Twilio (the ones being sent are waited for, up to PAUSE_DRAIN_S) and none will be
    until `resume_campaign`. Returns how many calls were being sent when it was called."""
    with ctx.database.session() as session:
        campaign = _campaign(session, campaign_id)
        if campaign.status != CampaignStatus.ACTIVE:
            raise ValueError(f"campaign_id: campaign is {campaign.status}, not active")
        session.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(status=CampaignStatus.PAUSED, updated_at=utcnow()))
        # Published but not claimed: back to waiting; a worker that gets the message
        # finds nothing to claim.
        session.execute(update(Job).where(Job.campaign_id == campaign_id,
                                          Job.status == JobStatus.QUEUED)
                        .values(status=JobStatus.SCHEDULED, queued_at=None))
    in_flight = _creating(ctx, campaign_id)
    deadline = time.monotonic() + PAUSE_DRAIN_S
    while _creating(ctx, campaign_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    return in_flight


def _creating(ctx: Context, campaign_id: str) -> int:
    with ctx.database.session() as session:
        return session.scalar(
            select(func.count()).select_from(Attempt).join(Job)
            .where(Job.campaign_id == campaign_id,
                   Attempt.status == AttemptStatus.CREATING)) or 0


def resume_campaign(ctx: Context, campaign_id: str) -> None:
    with ctx.database.session() as session:
        campaign = _campaign(session, campaign_id)
        if campaign.status != CampaignStatus.PAUSED:
            raise ValueError(f"campaign_id: campaign is {campaign.status}, not paused")
        session.execute(update(Campaign).where(Campaign.id == campaign_id,
                                               Campaign.status == CampaignStatus.PAUSED)
                        .values(status=CampaignStatus.ACTIVE, updated_at=utcnow()))


def cancel_campaign(ctx: Context, campaign_id: str, chunk: int = END_CHUNK) -> dict[str, int]:
    """Pending jobs end `canceled`, `chunk` of them (with their events) per transaction;
    live calls are ended through Twilio. A cancel stopped midway is finished by calling it
    again (or by the dispatcher, a minute after): only a campaign canceled with nothing left
    waiting, or done, is refused."""
    with ctx.database.session() as session:
        campaign = _campaign(session, campaign_id)
        waiting = session.scalar(select(exists().where(
            Job.campaign_id == campaign_id, Job.status.in_(WAITING_JOB_STATUSES))))
        if campaign.status == CampaignStatus.DONE or (
                campaign.status == CampaignStatus.CANCELED and not waiting):
            raise ValueError(f"campaign_id: campaign is already {campaign.status}")
        # Canceled first: the dispatcher takes no job of it from here on.
        session.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(status=CampaignStatus.CANCELED, updated_at=utcnow()))
    pending = end_waiting_jobs(ctx, campaign_id, CANCELED_OUTCOME, chunk)
    with ctx.database.session() as session:
        dialing = list(session.scalars(select(Job.id).where(
            Job.campaign_id == campaign_id, Job.status == JobStatus.DIALING)))
    ended = sum(cancel_job(ctx, job_id).canceled for job_id in dialing)
    return {"canceled_pending": pending, "canceled_live": ended}


def campaign_status(ctx: Context, campaign_id: str, recent_minutes: int = 5) -> dict[str, Any]:
    now = utcnow()
    with ctx.database.session() as session:
        campaign = _campaign(session, campaign_id)
        states = dict(session.execute(select(Job.status, func.count()).where(
            Job.campaign_id == campaign_id).group_by(Job.status)).all())
        outcomes = dict(session.execute(select(Job.outcome, func.count()).where(
            Job.campaign_id == campaign_id, Job.outcome.is_not(None))
            .group_by(Job.outcome)).all())
        attempts = session.execute(
            select(Attempt.status, Attempt.duration, Attempt.created_at).join(Job)
            .where(Job.campaign_id == campaign_id)).all()
        waiting = session.execute(select(Job.timezones, Job.next_attempt_at).where(
            Job.campaign_id == campaign_id, Job.status.in_(WAITING_JOB_STATUSES))).all()
        window = stored_window(campaign.window_start, campaign.window_end, campaign.days)
        info = {"id": campaign.id, "name": campaign.name, "status": campaign.status,
                "weight": campaign.weight, "window": f"{window} (recipient's local time)",
                "start_at": _iso(campaign.start_at), "end_at": _iso(campaign.end_at),
                "created_at": campaign.created_at.isoformat(),
                "import": campaign.import_summary}
    placed = [a for a in attempts if a.status not in (AttemptStatus.CREATING,
                                                      AttemptStatus.REJECTED)]
    answered = [a for a in placed if a.status == AttemptStatus.COMPLETED]
    recent = [a for a in placed if a.created_at >= now - timedelta(minutes=recent_minutes)]
    per_minute = len(recent) / recent_minutes
    pending = sum(n for s, n in states.items() if s not in FINAL_JOB_STATUSES)
    talk = [a.duration for a in answered if a.duration is not None]
    latest_due: dict[tuple[str, ...], datetime] = {}
    for zones, due in waiting:
        key = tuple(zones or [campaign.timezone])
        latest_due[key] = max(due, latest_due.get(key, due))
    # Nothing dialed lately (not started, paused, between windows): at best the whole pace.
    pace = per_minute or ctx.settings.calls_per_second * 60
    left_s = eta_seconds(now, pending, latest_due, window, campaign.timezone, pace)
    if left_s is not None and campaign.end_at is not None:
        left_s = min(left_s, max(0, round((campaign.end_at - now).total_seconds())))
    return {**info, "jobs": sum(states.values()), "by_state": states, "by_outcome": outcomes,
            "attempts": len(placed),
            "answer_rate": round(len(answered) / len(placed), 3) if placed else None,
            "average_talk_s": round(sum(talk) / len(talk), 1) if talk else None,
            "calls_per_minute": round(per_minute, 2), "pending": pending,
            "eta_s": left_s}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def list_campaigns(ctx: Context) -> list[dict[str, Any]]:
    with ctx.database.session() as session:
        rows = session.execute(
            select(Campaign.id, Campaign.name, Campaign.status, Campaign.weight,
                   Campaign.created_at).order_by(Campaign.created_at.desc())).all()
        counts = Counter({(c, s): n for c, s, n in session.execute(
            select(Job.campaign_id, Job.status, func.count())
            .where(Job.campaign_id.is_not(None)).group_by(Job.campaign_id, Job.status))})
    return [{"id": r.id, "name": r.name, "status": r.status, "weight": r.weight,
             "created_at": r.created_at.isoformat(),
             "jobs": sum(n for (c, _), n in counts.items() if c == r.id),
             "final": sum(n for (c, s), n in counts.items()
                          if c == r.id and s in FINAL_JOB_STATUSES)} for r in rows]


def export_rows(ctx: Context, campaign_id: str) -> Iterator[dict[str, Any]]:
    """One row per recipient: final state, attempts, last outcome, talk time, the last
    attempt's answer and recording, then the contact's columns as `contact.<column>`, so a
    contact column named like one of the export's own can never take its place."""
    with ctx.database.session() as session:
        _campaign(session, campaign_id)
        jobs = session.scalars(select(Job).where(Job.campaign_id == campaign_id)
                               .options(selectinload(Job.attempt_rows))
                               .order_by(Job.created_at, Job.id)).all()
    for job in jobs:
        last = job.attempt_rows[-1] if job.attempt_rows else None
        yield {"to": job.to, "state": job.status, "attempts": job.attempts,
               "last_outcome": job.outcome or (last.status if last else ""),
               "talk_time_s": sum(a.duration or 0 for a in job.attempt_rows
                                  if a.status == AttemptStatus.COMPLETED),
               # The last attempt's AMD result and completed recording.
               "answered_by": last.answered_by if last else None,
               "recording_url": last.recording_url if last else None,
               "recording_duration": last.recording_duration if last else None,
               "job_id": job.id,
               **{contact_column(name): value for name, value in job.metadata_.items()}}


def write_export(ctx: Context, campaign_id: str, out: io.TextIOBase | Any) -> int:
    """export_rows as CSV, every cell that would start a spreadsheet formula made text."""
    rows = list(export_rows(ctx, campaign_id))
    columns = list(OWN_COLUMNS)
    for row in rows:
        columns += [c for c in row if c not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows({name: safe_cell(value) for name, value in row.items()} for row in rows)
    return len(rows)
