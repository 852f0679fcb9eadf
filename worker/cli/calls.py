"""`dialer call`, `dialer job show|cancel`, `dialer jobs list`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

import click
from rich.console import Console
from rich.table import Column, Table

from worker import api
from worker.cli.call_options import call_option_flags
from worker.cli.errors import friendly_errors
from worker.domain.statuses import JobStatus
from worker.logs import mask
from worker.producer.redirect import RedirectFailed
from worker.producer.reports import job_as_dict
from worker.settings import parse_delays

console = Console()


@click.command()
@click.option("--to", "to", required=True, help="E.164 number, sip: or client: address.")
@click.option("--from", "from_", help="Caller ID (default: DIALER_DEFAULT_FROM).")
@click.option("--url", help="TwiML URL Twilio fetches when the call connects.")
@click.option("--twiml", help="Inline TwiML instead of --url.")
@click.option("--application-sid", help="A TwiML application (AP...) instead of --url.")
@click.option("--idempotency-key", help="The same key returns the same job.")
@click.option("--max-attempts", type=int, help="Attempts before giving up.")
@click.option("--retry-delays", help="Seconds before attempt 2, 3, ... e.g. 300,900.")
@click.option("--retry-on", help="Outcomes retried, e.g. busy,no-answer,failed.")
@click.option("--at", help="Not before this time: ISO 8601 with its offset, "
                           "e.g. 2026-12-02T09:00:00+01:00.")
@click.option("--notify-url", help="POST a signed event here when the call is final.")
@click.option("--notify-each-attempt", is_flag=True,
              help="Also POST an event after each attempt.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@friendly_errors
@call_option_flags
def call(to: str, from_: str | None, url: str | None, twiml: str | None,
         application_sid: str | None, idempotency_key: str | None, max_attempts: int | None,
         retry_delays: str | None, retry_on: str | None, at: str | None,
         notify_url: str | None, notify_each_attempt: bool, as_json: bool,
         call_options: dict[str, Any]) -> None:
    """Enqueue one call."""
    job_id = api.enqueue_call(
        to, from_, url=url, twiml=twiml, application_sid=application_sid,
        call_options=call_options, idempotency_key=idempotency_key,
        max_attempts=max_attempts,
        retry_delays=parse_delays(retry_delays, "--retry-delays") if retry_delays else None,
        retry_on=retry_on.split(",") if retry_on else None, at=at, notify_url=notify_url,
        notify_each_attempt=notify_each_attempt,
    )
    if as_json:
        click.echo(json.dumps(job_as_dict(api.get_job(job_id))))
    else:
        click.echo(job_id)


@click.group()
def job() -> None:
    """One job: show, cancel, redirect its live call."""


@job.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def job_show(job_id: str, as_json: bool) -> None:
    """A job with its attempts and their event timeline."""
    detail = api.job_detail(job_id)
    if detail is None:
        raise click.ClickException(f"job_id: no job {job_id!r}")
    if as_json:
        click.echo(json.dumps(detail))
    else:
        _print_job(detail)


def _print_job(detail: dict[str, Any]) -> None:
    console.print(f"[bold]{detail['id']}[/bold] to {mask(detail['to'])}: {detail['status']}"
                  f" after {detail['attempts']}/{detail['max_attempts']} attempts"
                  + (f", outcome {detail['outcome']}" if detail["outcome"] else ""))
    if detail["error_message"]:
        console.print(f"error {detail['error_code']}: {detail['error_message']}")
    if detail["status"] == JobStatus.SCHEDULED:
        console.print(f"next attempt at {detail['next_attempt_at']}")
    table = Table("#", "call sid", "status", "duration", "sip", "answered by", "timeline")
    recordings = Table("#", "recording sid", "status", "duration", Column("url", overflow="fold"))
    for a in detail["attempt_list"]:
        timeline = " → ".join(f"{e['status']}" for e in a["events"])
        table.add_row(str(a["number"]), a["call_sid"] or "-", a["status"],
                      str(a["duration"] or ""), str(a["sip_response_code"] or ""),
                      _answered_by(a), timeline)
        for r in a["recordings"]:
            recordings.add_row(str(a["number"]), r["sid"], r["status"],
                               "" if r["duration"] is None else f"{r['duration']} s",
                               r["url"] or "")
    console.print(table)
    if recordings.row_count:
        console.print(recordings)
    if detail["notifications"]:
        _print_notifications(detail["notifications"])


def _answered_by(attempt: dict[str, Any]) -> str:
    """Who answered, and how long asynchronous AMD took to tell."""
    answered_by, took = attempt["answered_by"] or "", attempt["machine_detection_duration_ms"]
    return f"{answered_by} ({took} ms)" if answered_by and took is not None else answered_by


def _print_notifications(notifications: list[dict[str, Any]]) -> None:
    table = Table("event", "type", "status", "tries", "next try", "deliveries")
    for n in notifications:
        deliveries = ", ".join(
            f"{d['status_code'] or d['error']} ({d['latency_ms']} ms)" for d in n["deliveries"])
        table.add_row(n["id"], n["type"], n["status"], str(n["attempts"]),
                      n["next_attempt_at"] or "-", deliveries)
    console.print(table)


@job.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def job_cancel(job_id: str, as_json: bool) -> None:
    """Cancel a job; a live call is ended through Twilio."""
    result = api.cancel_job(job_id)
    if as_json:
        click.echo(json.dumps(asdict(result)))
    else:
        click.echo(f"{job_id}: {result.message}")
    if not result.canceled:
        sys.exit(3)


@job.command("redirect")
@click.argument("job_id")
@click.option("--url", help="New TwiML URL for the live call.")
@click.option("--method", type=click.Choice(["GET", "POST"], case_sensitive=False),
              help="How Twilio requests --url (default POST).")
@click.option("--twiml", help="New TwiML for the live call, instead of --url.")
@friendly_errors
def job_redirect(job_id: str, url: str | None, method: str | None, twiml: str | None) -> None:
    """Give a job's live call new instructions; the call goes on with them."""
    try:
        result = api.redirect_call(job_id, url=url, twiml=twiml, method=method)
    except RedirectFailed as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{job_id}: call {result.call_sid} redirected")


@click.group()
def jobs() -> None:
    """Many jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def jobs_list(status: str | None, limit: int, as_json: bool) -> None:
    """Newest jobs first."""
    rows = api.list_jobs(status, limit)
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("id", "to", "status", "attempts", "outcome", "next attempt", "created")
    for row in rows:
        table.add_row(row["id"], row["to"], row["status"], str(row["attempts"]),
                      row["outcome"] or "", row["next_attempt_at"] or "", row["created_at"])
    console.print(table)
