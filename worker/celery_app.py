"""The Celery app: `celery -A worker worker` and `celery -A worker beat` find it as `worker.app`."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_process_init,
    worker_ready,
)
from kombu import Queue

from worker.settings import EVENTS_QUEUE, HANDLE_STATUS_TASK, get_settings

PLACE_CALL_TASK = "dialer.place_call"
DISPATCH_DUE_TASK = "dialer.dispatch_due"
RECONCILE_TASK = "dialer.reconcile"
DIAL_QUEUE = "dial"

settings = get_settings()
if settings.metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before prometheus_client is imported (by the tasks): it chooses its value store at
    # import, and only the multiprocess store sums the prefork children.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dialer-metrics-")
app = Celery("dialer", broker=settings.redis_url, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    timezone="UTC",
    enable_utc=True,
    task_queues=(Queue(DIAL_QUEUE), Queue(EVENTS_QUEUE), Queue("default")),
    task_default_queue="default",
    task_routes={
        PLACE_CALL_TASK: {"queue": DIAL_QUEUE},
        HANDLE_STATUS_TASK: {"queue": EVENTS_QUEUE},
    },
    # A dial message is acknowledged only once handled, one at a time per
    # process, and put back if the process dies: the claim makes a redelivery harmless.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": settings.visibility_timeout},
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "dispatch-due": {"task": DISPATCH_DUE_TASK, "schedule": settings.dispatch_interval},
        "reconcile": {"task": RECONCILE_TASK, "schedule": settings.reconcile_interval},
    },
)


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    from worker.db import dispose_after_fork

    dispose_after_fork()


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    if settings.metrics_port:
        from worker.metrics import start_server

        start_server(settings.metrics_port)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _safe_logs(logger: logging.Logger, **_: Any) -> None:
    from worker.logs import configure

    configure(logger.handlers, settings.log_json)
