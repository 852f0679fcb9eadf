"""A Celery app configured as the dialer's, whose one task does nothing: bench/ceiling.py's
baseline, what the worker costs per message before any work of ours.

    celery -A bench.noop_app worker -Q dial,events,default,notify -c 4 ...

The app is worker.adapters.broker.create_celery's (broker, acks_late, prefetch, queues,
serializer), and its log lines are formatted as the dialer worker's (numbers masked), so
receiving, running, acknowledging and logging a message cost what they cost there.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

from worker.adapters.broker import create_celery
from worker.logs import configure as configure_logs
from worker.settings import get_settings

__all__ = ["NOOP_TASK", "app"]

NOOP_TASK = "bench.noop"

settings = get_settings()
app = create_celery(settings)


@app.task(name=NOOP_TASK)
def noop(*args: Any) -> None:
    """Takes a message's arguments and does nothing with them."""


@after_setup_logger.connect
@after_setup_task_logger.connect
def _safe_logs(logger: logging.Logger, **_: Any) -> None:
    configure_logs(logger.handlers, settings.log_json)
