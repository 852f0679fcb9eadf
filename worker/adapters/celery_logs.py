"""Which of Celery's own log lines the worker keeps: not the received and succeeded lines
of Twilio's callback tasks (worker.logs.QuietTasks says why)."""

from __future__ import annotations

import logging

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from worker.domain.names import HANDLE_AMD_TASK, HANDLE_RECORDING_TASK, HANDLE_STATUS_TASK
from worker.logs import QuietTasks

# The loggers that write "Task ... received" (the consumer) and "... succeeded" (the trace).
TASK_LIFECYCLE_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
CALLBACK_TASK_LINES = QuietTasks(
    frozenset({HANDLE_STATUS_TASK, HANDLE_RECORDING_TASK, HANDLE_AMD_TASK}),
    (LOG_RECEIVED, LOG_SUCCESS))


def quiet_callback_tasks() -> None:
    for name in TASK_LIFECYCLE_LOGGERS:
        logging.getLogger(name).addFilter(CALLBACK_TASK_LINES)  # never added twice
