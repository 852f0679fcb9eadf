"""/v1/erasures: remove numbers from every job, callback and notification, at a person's
request (erase_number)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.auth import require
from api.bodies import json_body, json_object, reject_unknown
from api.problems import Problem, invalid
from api.state import context
from worker.producer.erasure import MAX_NUMBERS, erase_number

bp = Blueprint("erasures", __name__)


@bp.post("/v1/erasures")
@require("write")
def erase() -> Response:
    body = json_object(json_body())
    reject_unknown(body, ("numbers", "do_not_call"))
    numbers = body.get("numbers")
    if (not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers)
            or not 1 <= len(numbers) <= MAX_NUMBERS):
        raise Problem(400, f"numbers: a list of 1 to {MAX_NUMBERS} phone numbers is expected")
    try:
        return jsonify(erase_number(context(), numbers,
                                    do_not_call=body.get("do_not_call", False)))
    except ValueError as exc:
        raise invalid(exc) from None
