"""One item of a periodic run at a time: the reconciler's and retention's steps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from worker.engine import metrics
from worker.engine.context import Context

log = logging.getLogger(__name__)
R = TypeVar("R")


def isolated(ctx: Context, step: str, key: object, handle: Callable[..., R],
             *args: Any) -> R | None:
    """handle(ctx, *args), or None when it raises: one job whose data breaks a step (a value
    out of range, a row no rule foresaw) is logged, counted and skipped, and the run goes on
    to the others, instead of every run failing on it and nothing else being done."""
    try:
        return handle(ctx, *args)
    except Exception:
        log.exception("%s failed for %s; skipped", step, key)
        metrics.SKIPPED.labels(step).inc()
        return None
