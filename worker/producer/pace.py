"""The account's pace: calls per second for every worker, kept in Redis with its schedule."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from worker.adapters.pacing import check_pace
from worker.engine.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pace:
    account: float | None  # what every worker reserves at; None until a worker or set_pace
    initial: float  # DIALER_CALLS_PER_SECOND here: stored by the first reservation if unset


def show_pace(ctx: Context) -> Pace:
    return Pace(ctx.pacer.pace(), ctx.settings.calls_per_second)


def set_pace(ctx: Context, calls_per_second: float) -> Pace:
    """Every worker's next reservation is spaced at this pace; ValueError names the field."""
    ctx.pacer.set_pace(check_pace(calls_per_second))
    log.info("account pace set to %g calls/s", calls_per_second)
    return show_pace(ctx)
