"""`dialer campaign create|pause|resume|cancel|status|watch|export|list`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from worker import api
from worker.cli.call_options import call_option_flags
from worker.cli.errors import friendly_errors
from worker.domain.statuses import CampaignStatus
from worker.settings import parse_delays

console = Console()


@click.group()
def campaign() -> None:
    """Bulk calls: import contacts, pause, resume, cancel, report."""


@campaign.command("create")
@click.option("--name", required=True)
@click.option("--from", "from_", help="Caller ID (default: DIALER_DEFAULT_FROM).")
@click.option("--url", help="TwiML URL Twilio fetches when a call connects.")
@click.option("--twiml", help="Inline TwiML instead of --url.")
@click.option("--application-sid", help="A TwiML application (AP...) instead of --url.")
@click.option("--window", help="Calling hours in the recipient's local time, e.g. 09:00-20:00.")
@click.option("--days", help="Days the window applies, e.g. mon-fri (default: every day).")
@click.option("--timezone", default="UTC", show_default=True,
              help="For numbers whose zone the row does not give and the number does not tell.")
@click.option("--max-attempts", type=int)
@click.option("--retry-delays", help="Seconds before attempt 2, 3, ... e.g. 600,3600.")
@click.option("--retry-on", help="Outcomes retried, e.g. busy,no-answer,failed.")
@click.option("--weight", type=int, default=1, show_default=True,
              help="Share of the pace relative to other active campaigns.")
@click.option("--strict", is_flag=True, help="Refuse the whole file if any row is invalid.")
@click.option("--start-at", help="Dial nothing before this time: ISO 8601 with its offset.")
@click.option("--end-at", help="Jobs still waiting then end `expired`: ISO 8601 with its offset.")
@click.option("--json", "as_json", is_flag=True)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@friendly_errors
@call_option_flags
def campaign_create(name: str, from_: str | None, url: str | None, twiml: str | None,
                    application_sid: str | None, call_options: dict[str, Any],
                    window: str | None, days: str | None, timezone: str,
                    max_attempts: int | None, retry_delays: str | None, retry_on: str | None,
                    weight: int, strict: bool, start_at: str | None, end_at: str | None,
                    as_json: bool, file: Path) -> None:
    """Create a campaign from a CSV file (a `to` column; optional `timezone`, `name`;
    every other column is kept with the job)."""
    kwargs: dict[str, Any] = dict(
        url=url, twiml=twiml, application_sid=application_sid, call_options=call_options,
        window=window, days=days, timezone=timezone,
        max_attempts=max_attempts, weight=weight, strict=strict, start_at=start_at,
        end_at=end_at,
        retry_delays=parse_delays(retry_delays, "--retry-delays") if retry_delays else None,
        retry_on=retry_on.split(",") if retry_on else None)
    if not console.is_terminal or as_json:
        result = api.create_campaign(name, from_, contacts=file, **kwargs)
    else:
        total = max(0, sum(1 for _ in file.open("rb")) - 1) if file.exists() else None
        with Progress("importing", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("rows", total=total)
            result = api.create_campaign(name, from_, contacts=file,
                                         progress=lambda n: progress.advance(task, n), **kwargs)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    click.echo(f"campaign {result.campaign_id}: {result.imported} imported of {result.rows} "
               f"rows; {len(result.invalid)} invalid, {result.duplicates} repeated, "
               f"{result.do_not_call} on the do-not-call list")
    for line, reason in result.invalid[:50]:
        click.echo(f"  line {line}: {reason}", err=True)
    if len(result.invalid) > 50:
        click.echo(f"  ... and {len(result.invalid) - 50} more (see --json)", err=True)


@campaign.command("pause")
@click.argument("campaign_id")
@friendly_errors
def campaign_pause(campaign_id: str) -> None:
    """Stop dialing; returns once no create is in flight."""
    api.pause_campaign(campaign_id)
    click.echo(f"campaign {campaign_id}: paused")


@campaign.command("resume")
@click.argument("campaign_id")
@friendly_errors
def campaign_resume(campaign_id: str) -> None:
    """Continue a paused campaign."""
    api.resume_campaign(campaign_id)
    click.echo(f"campaign {campaign_id}: resumed")


@campaign.command("cancel")
@click.argument("campaign_id")
@friendly_errors
def campaign_cancel(campaign_id: str) -> None:
    """Cancel pending jobs and end live calls."""
    counts = api.cancel_campaign(campaign_id)
    click.echo(f"campaign {campaign_id}: canceled {json.dumps(counts)}")


def _status_table(status: dict[str, Any]) -> Table:
    table = Table(title=f"{status['name']} ({status['id']}) · {status['status']}",
                  show_header=False, title_justify="left")
    table.add_row("window", status["window"])
    for bound in ("start_at", "end_at"):
        if status[bound]:
            table.add_row(bound.replace("_", " "), status[bound])
    table.add_row("jobs", str(status["jobs"]))
    for state, count in sorted(status["by_state"].items()):
        table.add_row(f"  {state}", str(count))
    for outcome, count in sorted(status["by_outcome"].items()):
        table.add_row(f"  outcome {outcome}", str(count))
    table.add_row("attempts", str(status["attempts"]))
    table.add_row("answer rate", "-" if status["answer_rate"] is None
                  else f"{status['answer_rate']:.0%}")
    table.add_row("average talk", "-" if status["average_talk_s"] is None
                  else f"{status['average_talk_s']} s")
    table.add_row("calls/min (last 5 min)", str(status["calls_per_minute"]))
    table.add_row("ETA", "-" if status["eta_s"] is None else f"{status['eta_s']} s")
    return table


@campaign.command("status")
@click.argument("campaign_id")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def campaign_status(campaign_id: str, as_json: bool) -> None:
    """Totals by state and outcome, answer rate, talk time, pace and ETA."""
    status = api.campaign_status(campaign_id)
    if as_json:
        click.echo(json.dumps(status))
    else:
        console.print(_status_table(status))


@campaign.command("watch")
@click.argument("campaign_id")
@click.option("--interval", type=click.FloatRange(min=0.2), default=1.0, show_default=True)
@friendly_errors
def campaign_watch(campaign_id: str, interval: float) -> None:
    """A live progress display until the campaign is done, paused or canceled."""
    status = api.campaign_status(campaign_id)
    with Live(_status_table(status), console=console, refresh_per_second=4) as live:
        while status["status"] == CampaignStatus.ACTIVE:
            time.sleep(interval)
            status = api.campaign_status(campaign_id)
            live.update(_status_table(status))


@campaign.command("export")
@click.argument("campaign_id")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Default: standard output.")
@friendly_errors
def campaign_export(campaign_id: str, output: Path | None) -> None:
    """One CSV row per recipient: state, attempts, last outcome, talk time, then the contact's
    columns as contact.<column>; formula-like cells are written as text."""
    if output is None:
        api.write_export(campaign_id, sys.stdout)
        return
    with output.open("w", newline="") as out:
        count = api.write_export(campaign_id, out)
    click.echo(f"{count} rows written to {output}", err=True)


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def campaign_list(as_json: bool) -> None:
    """Newest campaigns first."""
    rows = api.list_campaigns()
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table("id", "name", "status", "weight", "jobs", "final", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], row["status"], str(row["weight"]),
                      str(row["jobs"]), str(row["final"]), row["created_at"])
    console.print(table)
