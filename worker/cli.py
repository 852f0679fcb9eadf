"""`dialer`: enqueue and inspect calls, migrate the database, run the simulator.

Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from worker.settings import SettingsError, parse_delays

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into one line and exit code 2 (1 for the database)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            click.echo(f"Error: database: {str(exc).splitlines()[0]}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group()
def main() -> None:
    """Queue-driven outbound dialer for Twilio."""


def _job_dict(job: Any) -> dict[str, Any]:
    from worker.views import job_as_dict

    return job_as_dict(job)


@main.command()
@click.option("--to", "to", required=True, help="E.164 number, sip: or client: address.")
@click.option("--from", "from_", help="Caller ID (default: DIALER_DEFAULT_FROM).")
@click.option("--url", help="TwiML URL Twilio fetches when the call connects.")
@click.option("--twiml", help="Inline TwiML instead of --url.")
@click.option("--idempotency-key", help="The same key returns the same job.")
@click.option("--max-attempts", type=int, help="Attempts before giving up.")
@click.option("--retry-delays", help="Seconds before attempt 2, 3, ... e.g. 300,900.")
@click.option("--retry-on", help="Outcomes retried, e.g. busy,no-answer,failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@friendly_errors
def call(to: str, from_: str | None, url: str | None, twiml: str | None,
         idempotency_key: str | None, max_attempts: int | None, retry_delays: str | None,
         retry_on: str | None, as_json: bool) -> None:
    """Enqueue one call."""
    from worker.producer import enqueue_call, get_job

    job_id = enqueue_call(
        to, from_, url=url, twiml=twiml, idempotency_key=idempotency_key,
        max_attempts=max_attempts,
        retry_delays=parse_delays(retry_delays, "--retry-delays") if retry_delays else None,
        retry_on=retry_on.split(",") if retry_on else None,
    )
    if as_json:
        click.echo(json.dumps(_job_dict(get_job(job_id))))
    else:
        click.echo(job_id)


@main.group()
def job() -> None:
    """One job: show or cancel."""


@job.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def job_show(job_id: str, as_json: bool) -> None:
    """A job with its attempts and their event timeline."""
    from worker.views import job_detail, print_job

    detail = job_detail(job_id)
    if detail is None:
        raise click.ClickException(f"job_id: no job {job_id!r}")
    if as_json:
        click.echo(json.dumps(detail))
    else:
        print_job(console, detail)


@job.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def job_cancel(job_id: str, as_json: bool) -> None:
    """Cancel a job; a live call is ended through Twilio."""
    from dataclasses import asdict

    from worker.producer import cancel_job

    result = cancel_job(job_id)
    if as_json:
        click.echo(json.dumps(asdict(result)))
    else:
        click.echo(f"{job_id}: {result.message}")
    if not result.canceled:
        sys.exit(3)


@main.group()
def jobs() -> None:
    """Many jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(
    ["scheduled", "queued", "dialing", "completed", "failed", "canceled"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def jobs_list(status: str | None, limit: int, as_json: bool) -> None:
    """Newest jobs first."""
    from worker.views import list_jobs

    rows = list_jobs(status, limit)
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("id", "to", "status", "attempts", "outcome", "next attempt", "created")
    for row in rows:
        table.add_row(row["id"], row["to"], row["status"], str(row["attempts"]),
                      row["outcome"] or "", row["next_attempt_at"] or "", row["created_at"])
    console.print(table)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply every migration (idempotent)."""
    from worker.db import get_engine, upgrade

    upgrade(get_engine())
    click.echo("database is up to date")


def _mount_subcommands() -> None:
    from simulator.cli import main as simulator_main
    from worker.cli_campaigns import campaign, dnc
    from worker.demo import demo

    main.add_command(simulator_main, "simulator")
    main.add_command(demo, "demo")
    main.add_command(campaign, "campaign")
    main.add_command(dnc, "dnc")


_mount_subcommands()

if __name__ == "__main__":
    main()
