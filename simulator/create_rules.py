"""What Twilio refuses on `POST .../Calls.json`: pure checks, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CALLBACK_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
METHODS = frozenset({"GET", "POST"})


class CreateError(Exception):
    """A Twilio error answer: code, message and HTTP status."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _first(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _valid_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "_" not in parts.netloc


def check_create(form: Mapping[str, Sequence[str]]) -> None:
    """Raise CreateError for the first thing Twilio would refuse, naming the parameter."""
    to, from_ = _first(form, "To"), _first(form, "From")
    if not to:
        raise CreateError(21201, "No 'To' number is specified")
    if not (E164.match(to) or to.startswith(("sip:", "client:"))):
        raise CreateError(21211, f"Invalid 'To' Phone Number: {to}")
    if not from_:
        raise CreateError(21213, "No 'From' number is specified")
    if not (E164.match(from_) or from_.startswith("client:")):
        raise CreateError(21212, f"Invalid 'From' Phone Number: {from_}")
    given = [n for n in ("Url", "Twiml", "ApplicationSid") if _first(form, n)]
    if not given:
        raise CreateError(21205, "Url, Twiml or ApplicationSid is required")
    url = _first(form, "Url")
    if url and not _valid_url(url):
        raise CreateError(21205, f"Url is not a valid URL: {url}")
    callback = _first(form, "StatusCallback")
    if callback and not _valid_url(callback):
        raise CreateError(21609, f"StatusCallback is not a valid URL: {callback}")
    for name in ("Method", "StatusCallbackMethod", "FallbackMethod"):
        value = _first(form, name)
        if value and value.upper() not in METHODS:
            raise CreateError(20001, f"{name} must be GET or POST, not {value!r}")
    events = set(form.get("StatusCallbackEvent", []))
    if events - CALLBACK_EVENTS:
        raise CreateError(20001, "StatusCallbackEvent must be among "
                          f"{', '.join(sorted(CALLBACK_EVENTS))}")
    for name, low, high in (("Timeout", 1, 600), ("TimeLimit", 1, 14400)):
        value = _first(form, name)
        if value is not None and not (value.isdigit() and low <= int(value) <= high):
            raise CreateError(20001, f"{name} must be a whole number of seconds, "
                              f"{low} to {high}: {value!r}")
    record = _first(form, "Record")
    if record is not None and record.lower() not in ("true", "false"):
        raise CreateError(20001, f"Record must be true or false: {record!r}")
