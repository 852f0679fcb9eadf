"""The Celery app: `celery -A worker worker` and `celery -A worker beat` find it as `worker.app`.

Built from the settings once, at import: Celery's command line needs an app object to find.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
from celery.signals import after_setup_logger, after_setup_task_logger

from worker.adapters.broker import create_celery
from worker.domain.names import HANDLE_AMD_TASK, HANDLE_RECORDING_TASK, HANDLE_STATUS_TASK
from worker.logs import QuietTasks
from worker.logs import configure as configure_logs
from worker.settings import get_settings

settings = get_settings()
if settings.metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before prometheus_client is imported (by the tasks): it chooses its value store at
    # import, and only the multiprocess store sums the prefork children.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dialer-metrics-")
app = create_celery(settings, include=["worker.tasks"])


@after_setup_logger.connect
@after_setup_task_logger.connect
def _safe_logs(logger: logging.Logger, **_: Any) -> None:
    configure_logs(logger.handlers, settings.log_json)
    if logger.getEffectiveLevel() > logging.DEBUG:
        _quiet_callback_tasks()


# The loggers that write "Task ... received" (the consumer) and "... succeeded" (the trace).
_TASK_LIFECYCLE_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
_QUIET = QuietTasks(frozenset({HANDLE_STATUS_TASK, HANDLE_RECORDING_TASK, HANDLE_AMD_TASK}),
                    (LOG_RECEIVED, LOG_SUCCESS))


def _quiet_callback_tasks() -> None:
    for name in _TASK_LIFECYCLE_LOGGERS:
        logging.getLogger(name).addFilter(_QUIET)  # a filter already there is not added twice
