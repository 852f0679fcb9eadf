"""Phone numbers masked in every log line; JSON lines when asked."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS

from worker.adapters.celery_logs import CALLBACK_TASK_LINES
from worker.logs import JsonFormatter, configure, mask, mask_numbers


@pytest.mark.parametrize(("text", "expected"), [
    ("calling +14155550123 now", "calling ***0123 now"),
    ("+447911123456,+33612345678", "***3456,***5678"),
    ("order +1234 is short", "order +1234 is short"),  # too short to be a number
    ("no numbers here: 20429", "no numbers here: 20429"),
    # As the API's paths and query strings carry them, URL-encoded, into access logs.
    ("GET /v1/do-not-call/%2B14155550123 HTTP/1.1", "GET /v1/do-not-call/***0123 HTTP/1.1"),
    ("GET /v1/calls?to=%2b14155550123&limit=5", "GET /v1/calls?to=***0123&limit=5"),
])
def test_numbers_in_text_keep_only_their_last_four_digits(text: str, expected: str) -> None:
    assert mask_numbers(text) == expected


def test_mask_keeps_the_scheme_of_sip_and_client_addresses() -> None:
    assert mask("sip:alice@example.com") == "sip:***"
    assert mask("client:agent") == "client:***"
    assert mask("+14155550123") == "***0123"
    assert mask(None) == "-"


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "levelno": 20,
                                    "msg": message, "args": args})
    record.__dict__.update(extra)
    return record


def test_text_lines_mask_numbers_in_arguments_and_tracebacks_in_the_handlers_format() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    configure([handler], json_lines=False)
    configure([handler], json_lines=False)  # again, as Celery may: wrapped once
    try:
        raise ValueError("cannot call +14155550123")
    except ValueError:
        record = _record("job %s to %s", "abc", "+14155550123")
        record.exc_info = sys.exc_info()
    line = handler.format(record)
    assert line.startswith("[INFO] job abc to ***0123\n")
    assert "ValueError: cannot call ***0123" in line
    assert "4155550123" not in line


def test_json_lines_carry_the_message_masked_and_extra_fields() -> None:
    line = JsonFormatter().format(_record("to %s", "+14155550123", job_id="j1",
                                          data={"kwargs": {"To": "+14155550123"}}))
    data = json.loads(line)
    assert data["message"] == "to ***0123"
    assert data["job_id"] == "j1"
    assert data["data"] == {"kwargs": {"To": "***0123"}}
    assert data["level"] == "INFO" and data["logger"] == "t" and "time" in data


def _celery_line(fmt: str, task: str, level: int = logging.INFO) -> logging.LogRecord:
    """A record as Celery makes one: its format and one dict of context."""
    return logging.LogRecord("celery.app.trace", level, __file__, 1, fmt,
                             ({"id": "a1", "name": task, "return_value": "'stored'",
                               "runtime": 0.01, "args": "()", "kwargs": "{}", "eta": None,
                               "exc": "UnknownCall()"},), None)


def test_the_callback_tasks_received_and_succeeded_lines_are_dropped_and_no_other() -> None:
    quiet = CALLBACK_TASK_LINES
    assert not quiet.filter(_celery_line(LOG_RECEIVED, "dialer.handle_status"))
    assert not quiet.filter(_celery_line(LOG_SUCCESS, "dialer.handle_recording"))
    assert not quiet.filter(_celery_line(LOG_SUCCESS, "dialer.handle_amd"))
    # Other tasks' lines (the fault tests read place_call's), and a callback's retry,
    # failure or warning, stay.
    assert quiet.filter(_celery_line(LOG_RECEIVED, "dialer.place_call"))
    assert quiet.filter(_celery_line(LOG_SUCCESS, "dialer.reconcile"))
    assert quiet.filter(_celery_line(LOG_RETRY, "dialer.handle_status"))
    assert quiet.filter(_celery_line(LOG_SUCCESS, "dialer.handle_status", logging.WARNING))
