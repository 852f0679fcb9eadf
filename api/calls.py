"""/v1/calls: enqueue one call or a batch, look one up, search, cancel.

The producer validates; this module only renames JSON fields to the producer's argument
names (`from` -> from_, `scheduled_at` -> at) and its errors' field names back.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from api.auth import require
from api.bodies import (
    DIGITS,
    aware_time,
    json_body,
    json_object,
    query_params,
    reject_unknown,
)
from api.problems import Problem, invalid
from api.render import job_json, new_job_json, notification_json
from api.state import context
from worker.domain.statuses import JobStatus
from worker.domain.validation import check_at
from worker.producer.jobs import IdempotencyConflict, cancel_job, enqueue, get_jobs
from worker.producer.notifications import jobs_notifications
from worker.producer.redirect import NotLive, RedirectFailed, redirect_call
from worker.producer.reports import find_jobs

bp = Blueprint("calls", __name__)

# JSON name -> enqueue_call's argument name.
CALL_FIELDS = {
    "to": "to", "from": "from_", "url": "url", "twiml": "twiml",
    "application_sid": "application_sid",
    "idempotency_key": "idempotency_key", "max_attempts": "max_attempts",
    "retry_on": "retry_on", "retry_delays": "retry_delays", "campaign_id": "campaign_id",
    "metadata": "metadata", "call_options": "call_options", "scheduled_at": "at",
    "notify_url": "notify_url", "notify_each_attempt": "notify_each_attempt",
}
REDIRECT_FIELDS = ("url", "method", "twiml")
MAX_BATCH = 1000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
LIST_PARAMS = ("status", "campaign_id", "to", "created_after", "created_before",
               "updated_after", "updated_before", "limit", "cursor")


def _call_spec(item: Any, prefix: str = "") -> dict[str, Any]:
    call = json_object(item, prefix.rstrip(".") or "body")
    reject_unknown(call, CALL_FIELDS, prefix)
    return {CALL_FIELDS[name]: value for name, value in call.items()}


def _job(job_id: str) -> dict[str, Any]:
    """One call, with its result notifications (the listing leaves them out)."""
    found = _jobs([job_id])
    if job_id not in found:
        raise Problem(404, f"job_id: no job {job_id!r}")
    return found[job_id]


def _jobs(job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """_job of many calls in a few statements, by id (a batch's answer)."""
    jobs = get_jobs(context(), job_ids)
    events = jobs_notifications(context(), list(jobs))
    return {job_id: {**job_json(job), "notifications": [
        notification_json(n) for n in events[job_id]]} for job_id, job in jobs.items()}


def _enqueue(specs: list[dict[str, Any]], batch: bool) -> tuple[list[dict[str, Any]], int]:
    """The jobs in the request's order, and 201 if any is new, else 200 (all were stored)."""
    try:
        results = enqueue(context(), specs, batch=batch, api_key_id=g.api_key.id)
    except IdempotencyConflict as exc:
        raise invalid(exc, 409) from None
    except ValueError as exc:
        raise invalid(exc) from None
    # A job made by this request is shown as stored; one its key named before is read.
    made = {r.job_id: new_job_json(r.row) for r in results if r.row is not None}
    stored = list(dict.fromkeys(r.job_id for r in results if r.job_id not in made))
    jobs = {**(_jobs(stored) if stored else {}), **made}
    status = 201 if made else 200
    return [jobs[result.job_id] for result in results], status


@bp.post("/v1/calls")
@require("write")
def create_call() -> Response:
    spec = _call_spec(json_body())
    header = request.headers.get("Idempotency-Key")
    if header is not None:
        if spec.get("idempotency_key") not in (None, header):
            raise Problem(400, "idempotency_key: differs from the Idempotency-Key header")
        spec["idempotency_key"] = header
    [job], status = _enqueue([spec], batch=False)
    response = jsonify(job)
    response.status_code = status
    response.headers["Location"] = url_for("calls.show_call", job_id=job["id"])
    return response


@bp.post("/v1/calls:batch")
@require("write")
def create_calls() -> Response:
    body = json_object(json_body())
    reject_unknown(body, ("calls",))
    calls = body.get("calls")
    if not isinstance(calls, list) or not 1 <= len(calls) <= MAX_BATCH:
        raise Problem(400, f"calls: a list of 1 to {MAX_BATCH} calls is expected")
    specs = [_call_spec(item, f"calls[{index}].") for index, item in enumerate(calls)]
    jobs, status = _enqueue(specs, batch=True)
    response = jsonify({"calls": jobs})
    response.status_code = status
    return response


@bp.get("/v1/calls/<job_id>")
@require("read")
def show_call(job_id: str) -> Response:
    return jsonify(_job(job_id))


@bp.post("/v1/calls/<job_id>/cancel")
@require("write")
def cancel_call(job_id: str) -> Response:
    try:
        result = cancel_job(context(), job_id)
    except ValueError as exc:
        raise invalid(exc, 404) from None
    return jsonify({"canceled": result.canceled, "message": result.message,
                    "call": _job(job_id)})


@bp.post("/v1/calls/<job_id>/redirect")
@require("write")
def redirect_live_call(job_id: str) -> Response:
    """New instructions for the job's live call: 409 when it has none, 502 when Twilio
    refuses or cannot be reached (the problem carries Twilio's code)."""
    body = json_object(json_body())
    reject_unknown(body, REDIRECT_FIELDS)
    try:
        result = redirect_call(context(), job_id, **body)
    except NotLive as exc:
        raise invalid(exc, 409) from None
    except ValueError as exc:
        raise invalid(exc, 404 if "no job" in str(exc) else 400) from None
    except RedirectFailed as exc:
        raise Problem(502, str(exc), twilio_code=exc.code) from None
    return jsonify({"call_sid": result.call_sid, "call": _job(job_id)})


@bp.get("/v1/calls")
@require("read")
def list_calls() -> Response:
    params = query_params(LIST_PARAMS)
    status = params.get("status")
    if status is not None and status not in set(JobStatus):
        raise Problem(400, f"status: {status!r} is not one of {', '.join(JobStatus)}")
    filters: dict[str, Any] = {
        "status": status, "campaign_id": params.get("campaign_id"), "to": params.get("to"),
        **{name: aware_time(params, name) for name in
           ("created_after", "created_before", "updated_after", "updated_before")},
    }
    limit = _limit(params.get("limit"))
    cursor = params.get("cursor")
    after = decode_cursor(cursor) if cursor is not None else None
    try:
        jobs = find_jobs(context(), **filters, after=after, limit=limit)
        more = len(jobs) == limit and bool(
            find_jobs(context(), **filters, after=_key(jobs[-1]), limit=1))
    except ValueError as exc:
        raise invalid(exc) from None
    return jsonify({"data": [job_json(job) for job in jobs],
                    "next_cursor": encode_cursor(*_key(jobs[-1])) if more else None})


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise Problem(400, f"limit: a whole number from 1 to {MAX_LIMIT} is expected")
    return int(value)


def _key(job: Any) -> tuple[datetime, str]:
    return job.created_at, job.id


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """Opaque to clients: the keyset position after the page's last job."""
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        at = check_at(created, "cursor")
        if not isinstance(job_id, str) or at is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "cursor: not a cursor this API gave (take next_cursor as is)") from None
    return at, job_id
