"""The dialer with its global pace swapped for what users do instead, for bench/pacing.py.

    NAIVE_LIMITER=rate_limit NAIVE_RATE_LIMIT=1/s celery -A bench.naive_dialer worker ...
    NAIVE_LIMITER=none celery -A bench.naive_dialer worker ...

This is the project's own Celery app and tasks (claim, preflight, create, record, status
handling: every step and cost the same), with one change: the tasks get the worker's
context with its Redis pacer replaced by one that never waits. With `rate_limit`,
Celery's built-in `rate_limit` is set on place_call instead; Celery enforces it in each
worker instance's consumer, not across instances, so two instances may dial at twice
the rate. With `none`, nothing limits the creates. The comparison therefore measures the
limiter and nothing else.
"""

from __future__ import annotations

import dataclasses
import os

from worker import tasks
from worker.celery_app import app
from worker.settings import get_settings
from worker.wiring import build_context, set_default_context

__all__ = ["app"]

LIMITERS = ("rate_limit", "none")


class Unpaced:
    """A pacer that grants every slot at once: the dialer without its global pace."""

    def reserve(self) -> float:
        return 0.0

    def depart(self) -> float:
        return 0.0


def _install() -> None:
    """Before the worker forks, so every prefork child dials without the pace."""
    limiter = os.environ.get("NAIVE_LIMITER", "rate_limit")
    if limiter not in LIMITERS:
        raise RuntimeError(f"NAIVE_LIMITER must be one of {', '.join(LIMITERS)}, "
                           f"got {limiter!r}")
    set_default_context(dataclasses.replace(build_context(get_settings()), pacer=Unpaced()))
    if limiter == "rate_limit":
        # The consumer reads the task's rate_limit when it starts and builds its token bucket.
        tasks.place_call.rate_limit = os.environ.get("NAIVE_RATE_LIMIT", "1/s")


_install()
