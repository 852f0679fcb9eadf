"""The Celery app: `celery -A worker worker` and `celery -A worker beat` find it as `worker.app`.

Built from the settings once, at import: Celery's command line needs an app object to find.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

from worker.adapters.broker import create_celery
from worker.adapters.celery_logs import quiet_callback_tasks
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
        quiet_callback_tasks()
