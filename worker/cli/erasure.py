"""`dialer erase NUMBER...`: remove numbers from every job, callback and notification."""

from __future__ import annotations

import json

import click

from worker import api
from worker.cli.errors import friendly_errors


@click.command("erase")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--do-not-call", is_flag=True, help="Also put the numbers on the do-not-call list.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def erase(numbers: tuple[str, ...], do_not_call: bool, as_json: bool) -> None:
    """Erase the numbers everywhere: waiting jobs canceled, live calls ended, every job's
    number and contact details redacted (the jobs and their outcomes stay, counted)."""
    result = api.erase_number(numbers, do_not_call=do_not_call)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in result.items()))
    if result["jobs_left"]:
        click.echo(f"{result['jobs_left']} jobs were enqueued for these numbers meanwhile: "
                   "erase again", err=True)
