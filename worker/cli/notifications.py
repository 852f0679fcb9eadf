"""`dialer notifications retry`: deliver given-up result notifications again."""

from __future__ import annotations

import click

from worker import api
from worker.cli.errors import friendly_errors


@click.group()
def notifications() -> None:
    """Result notifications to producers' notify_url."""


@notifications.command("retry")
@click.option("--job", "job_id", help="The given-up events of this job.")
@click.option("--all-given-up", is_flag=True, help="Every given-up event.")
@friendly_errors
def notifications_retry(job_id: str | None, all_given_up: bool) -> None:
    """Put given-up events back to pending, due now."""
    count = api.retry_notifications(job_id=job_id, all_given_up=all_given_up)
    click.echo(f"{count} notification(s) to be delivered again")
