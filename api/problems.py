"""RFC 9457 problem details: every error the API answers, in one shape, never a traceback."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response

PROBLEM_JSON = "application/problem+json"

# The producer functions name fields by their Python names; clients know the JSON ones.
_PYTHON_TO_JSON = {"from_": "from", "at": "scheduled_at"}
_FIELD = re.compile(r"^((?:calls\[\d+\]\.)?)(from_|at)(?=[:.\[])")


class Problem(Exception):
    """Raised anywhere in a request; the app's error handler answers it as problem JSON."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None,
                 **extensions: Any) -> None:
        """`extensions`: RFC 9457 extension members, e.g. the `twilio_code` of a refusal."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def json_field_names(message: str) -> str:
    """`calls[3].from_: ...` as the client wrote it: `calls[3].from: ...`."""
    return _FIELD.sub(lambda m: m[1] + _PYTHON_TO_JSON[m[2]], message)


def invalid(exc: ValueError, status: int = 400) -> Problem:
    """A producer's ValueError (it names the field) as a problem with the JSON field names."""
    return Problem(status, json_field_names(str(exc)))


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None,
                     extensions: Mapping[str, Any] | None = None) -> Response:
    title = HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            **(extensions or {})}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
