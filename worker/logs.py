"""Logging: phone numbers never appear whole in a log line, and JSON lines on request.

Callers mask numbers themselves (`mask`); the handlers' formatters are the safety net for
what they did not write (a library's message, an exception and its traceback, a task's
arguments). Standard library only, so the webhook can use it without pulling in the worker.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# E.164 as it appears in text, its + written or URL-encoded (%2B, as the API's paths and
# query strings carry it): + and 8 to 15 digits; kept: the last four.
_NUMBER = re.compile(r"(?:\+|%2[Bb])\d{4,11}(\d{4})\b")
_STANDARD = set(vars(logging.makeLogRecord({})))


def mask(address: str | None) -> str:
    """'+14155550123' -> '***0123'; SIP and client addresses keep only their scheme."""
    if not address:
        return "-"
    if address.startswith(("sip:", "client:")):
        return address.split(":", 1)[0] + ":***"
    return "***" + address[-4:]


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(r"***\1", text)


class MaskedText(logging.Formatter):
    """A handler's own formatter, its whole output masked: the traceback too, which a
    filter on the message cannot reach."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_numbers(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        # Extra fields too: Celery puts a task's arguments (numbers included) there.
        data.update({k: v for k, v in vars(record).items()
                     if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return mask_numbers(json.dumps(data, default=str))


class QuietTasks(logging.Filter):
    """Drops the INFO lines in `formats` (Celery's "received" and "succeeded") of the tasks
    in `names`.

    Twilio's callbacks are the worker's most frequent tasks, two or more per call: their two
    lines each would be most of the worker's log and about 4 % of its CPU. Their retries,
    failures and warnings still log, the webhook's metrics count them, and a worker run at
    DEBUG keeps every line (the filter is installed only above it).
    """

    def __init__(self, names: frozenset[str], formats: tuple[str, ...]) -> None:
        super().__init__()
        self.names = names
        self.formats = formats

    def filter(self, record: logging.LogRecord) -> bool:
        # Celery logs these with one dict of context as the argument: record.args is it.
        context = record.args
        return not (record.levelno == logging.INFO and record.msg in self.formats
                    and isinstance(context, dict) and context.get("name") in self.names)


def configure(handlers: list[logging.Handler], json_lines: bool) -> None:
    """Mask numbers in everything the handlers write; JSON lines if asked."""
    for handler in handlers:
        if json_lines:
            handler.setFormatter(JsonFormatter())
        elif not isinstance(handler.formatter, MaskedText):
            handler.setFormatter(MaskedText(handler.formatter or logging.Formatter()))


def configure_server_logs(json_lines: bool) -> None:
    """For a web app under gunicorn or Flask's server: numbers masked in every line they
    write, JSON lines if asked, and a handler on the root logger if none is there."""
    handlers = [h for name in ("", "gunicorn.error", "gunicorn.access")
                for h in logging.getLogger(name).handlers]
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        handlers.append(handler)
    configure(handlers, json_lines)
