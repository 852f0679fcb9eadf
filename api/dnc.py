"""/v1/do-not-call: add numbers (JSON or a CSV upload), check one, remove one."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.auth import require
from api.bodies import json_body, json_object, reject_unknown
from api.problems import Problem, invalid
from api.state import context
from worker.domain.validation import normalize_to
from worker.producer.dnc import (
    add_do_not_call,
    is_on_do_not_call,
    numbers_in_csv,
    remove_do_not_call,
)

bp = Blueprint("do_not_call", __name__)

MAX_NUMBERS = 100_000


def _numbers() -> list[str]:
    if request.mimetype == "text/csv":
        try:
            numbers = numbers_in_csv(request.get_data().decode("utf-8-sig"), "body")
        except UnicodeDecodeError as exc:
            raise Problem(400, f"body: not a UTF-8 CSV ({exc})") from None
        except ValueError as exc:
            raise Problem(400, str(exc)) from None
    else:
        body = json_object(json_body())
        reject_unknown(body, ("numbers",))
        numbers = body.get("numbers")
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise Problem(400, "numbers: a list of phone numbers is expected")
    if not 1 <= len(numbers) <= MAX_NUMBERS:
        raise Problem(400, f"numbers: 1 to {MAX_NUMBERS} numbers are expected")
    return numbers


def _number(number: str) -> str:
    try:
        return normalize_to(number, "number")
    except ValueError as exc:
        raise invalid(exc) from None


@bp.post("/v1/do-not-call")
@require("write")
def add_numbers() -> Response:
    numbers = _numbers()
    try:
        added = add_do_not_call(context(), numbers)
    except ValueError as exc:
        raise invalid(exc) from None
    return jsonify({"added": added, "received": len(numbers)})


@bp.get("/v1/do-not-call/<number>")
@require("read")
def check_number(number: str) -> Response:
    normalized = _number(number)
    return jsonify({"number": normalized, "listed": is_on_do_not_call(context(), normalized)})


@bp.delete("/v1/do-not-call/<number>")
@require("write")
def remove_number(number: str) -> Response:
    normalized = _number(number)
    removed = remove_do_not_call(context(), [normalized])
    return jsonify({"number": normalized, "removed": removed > 0})
