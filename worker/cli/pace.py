"""`dialer pace show|set`: the Twilio account's calls per second, shared by every worker."""

from __future__ import annotations

import click

from worker import api
from worker.cli.errors import friendly_errors
from worker.producer.pace import Pace


@click.group()
def pace() -> None:
    """The account's pace: every worker reads it at each reservation."""


def _describe(current: Pace) -> str:
    if current.account is None:
        return (f"not set: the first worker to dial stores its DIALER_CALLS_PER_SECOND "
                f"({current.initial:g} here)")
    return f"{current.account:g} calls/s for every worker (DIALER_CALLS_PER_SECOND here: " \
           f"{current.initial:g}, used only while none is set)"


@pace.command("show")
@friendly_errors
def pace_show() -> None:
    click.echo(_describe(api.show_pace()))


@pace.command("set")
@click.argument("calls_per_second", type=float)
@friendly_errors
def pace_set(calls_per_second: float) -> None:
    """Set the pace; workers apply it from their next reservation, with no restart."""
    click.echo(_describe(api.set_pace(calls_per_second)))
