"""Request bodies and query strings read strictly: a wrong media type is 415, malformed JSON
400, and a field the API does not know is named in a 400 rather than silently ignored."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import request

from api.problems import Problem
from worker.domain.validation import check_at

_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")
# str.isdigit() also takes "²" and other digits int() refuses: ASCII digits only.
DIGITS = re.compile(r"[0-9]+")


def json_body() -> Any:
    """The parsed JSON body; past Settings.api_max_body Werkzeug answers 413 on reading it."""
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, f"Content-Type: application/json is expected, got {mimetype!r}"
                      if mimetype else "Content-Type: application/json is expected")
    data = request.get_data()
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Problem(400, f"body: malformed JSON ({exc})") from None


def json_object(value: Any, where: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Problem(400, f"{where}: a JSON object is expected")
    return value


def reject_unknown(fields: Iterable[str], known: Iterable[str], prefix: str = "") -> None:
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise Problem(400, "; ".join(f"{prefix}{name}: unknown field" for name in unknown))


def query_params(known: Iterable[str]) -> Mapping[str, str]:
    """The query string, each parameter at most once and every one known."""
    reject_unknown(request.args.keys(), known)
    for name, values in request.args.lists():
        if len(values) > 1:
            raise Problem(400, f"{name}: given more than once")
    return request.args


def aware_time(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date and time with its offset, or None when the parameter is absent."""
    value = params.get(name)
    if value is None:
        return None
    # An unencoded "+01:00" arrives as " 01:00" (a query string's "+" is a space).
    value = _SPACED_OFFSET.sub(r"+\1", value)
    try:
        return check_at(value, name)
    except ValueError as exc:
        raise Problem(400, str(exc)) from None
