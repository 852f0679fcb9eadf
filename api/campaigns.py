"""/v1/campaigns: create one from contacts (JSON rows or a CSV upload), read its progress,
pause, resume or cancel it, export its results as CSV."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from api.auth import require
from api.bodies import DIGITS, json_body, json_object, reject_unknown
from api.problems import Problem, invalid
from api.state import context
from worker.domain.statuses import CampaignStatus
from worker.producer.campaigns import (
    campaign_status,
    cancel_campaign,
    create_campaign,
    pause_campaign,
    resume_campaign,
    write_export,
)

bp = Blueprint("campaigns", __name__)

# JSON name -> create_campaign's argument name.
CAMPAIGN_FIELDS = {
    "name": "name", "from": "from_", "url": "url", "twiml": "twiml",
    "application_sid": "application_sid", "window": "window",
    "days": "days", "timezone": "timezone", "max_attempts": "max_attempts",
    "retry_on": "retry_on", "retry_delays": "retry_delays", "weight": "weight",
    "call_options": "call_options", "strict": "strict", "contacts": "contacts",
    "notify_url": "notify_url", "notify_each_attempt": "notify_each_attempt",
    "start_at": "start_at", "end_at": "end_at",
}
# A multipart form's fields are text: how each one that is not a string is read.
_INTEGER_FORM_FIELDS = ("max_attempts", "weight")
_LIST_FORM_FIELDS = ("retry_on", "retry_delays")


@contextmanager
def _campaign_errors() -> Iterator[None]:
    """Unknown id: 404; a campaign in the wrong state for the action: 409."""
    try:
        yield
    except ValueError as exc:
        raise invalid(exc, 404 if "no campaign" in str(exc) else 409) from None


def _json_arguments() -> dict[str, Any]:
    body = json_object(json_body())
    reject_unknown(body, CAMPAIGN_FIELDS)
    contacts = body.get("contacts")
    if not isinstance(contacts, list) or not contacts:
        raise Problem(400, "contacts: a non-empty list of rows (objects with a 'to') is expected")
    for index, row in enumerate(contacts):
        json_object(row, f"contacts[{index}]")
        for column, value in row.items():
            if not isinstance(value, str):
                raise Problem(400, f"contacts[{index}].{column}: must be a string")
    # null is "not given": create_campaign's own defaults apply.
    return {CAMPAIGN_FIELDS[name]: value for name, value in body.items() if value is not None}


def _form_arguments() -> dict[str, Any]:
    """multipart/form-data: a `contacts` CSV file, every other field as form text."""
    reject_unknown([*request.form.keys(), *request.files.keys()], CAMPAIGN_FIELDS)
    upload = request.files.get("contacts")
    if upload is None or "contacts" in request.form:
        raise Problem(400, "contacts: a CSV file part named 'contacts' is expected")
    arguments: dict[str, Any] = {"contacts": upload.read()}
    for name, value in request.form.items():
        arguments[CAMPAIGN_FIELDS[name]] = _form_value(name, value)
    return arguments


def _form_value(name: str, value: str) -> Any:
    if name in _INTEGER_FORM_FIELDS:
        if not DIGITS.fullmatch(value.strip()):
            raise Problem(400, f"{name}: must be a whole number, got {value!r}")
        return int(value)
    if name in _LIST_FORM_FIELDS:
        items = [item.strip() for item in value.split(",") if item.strip()]
        if name == "retry_delays":
            if not all(DIGITS.fullmatch(item) for item in items):
                raise Problem(400, f"{name}: comma-separated whole seconds, got {value!r}")
            return [int(item) for item in items]
        return items
    if name in ("strict", "notify_each_attempt"):
        if value.lower() not in ("true", "false"):
            raise Problem(400, f"{name}: true or false, got {value!r}")
        return value.lower() == "true"
    if name == "call_options":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise Problem(400, "call_options: must be a JSON object") from None
    return value


def _create(arguments: dict[str, Any]) -> dict[str, Any]:
    """create_campaign; an uploaded CSV goes through a file, as `dialer campaign create`
    reads one, and errors about that file name `contacts`."""
    if "name" not in arguments:
        raise Problem(400, "name: required")
    csv_bytes = arguments.get("contacts")
    if not isinstance(csv_bytes, bytes):
        return _created(arguments)
    with tempfile.TemporaryDirectory(prefix="dialer-api-") as workdir:
        path = Path(workdir) / "contacts.csv"
        path.write_bytes(csv_bytes)
        try:
            return _created({**arguments, "contacts": path})
        except Problem as problem:
            problem.detail = problem.detail.replace(str(path), "contacts")
            raise


def _created(arguments: dict[str, Any]) -> dict[str, Any]:
    name = arguments.pop("name")
    try:
        return create_campaign(context(), name, **arguments,
                               api_key_id=g.api_key.id).to_json()
    except ValueError as exc:
        raise invalid(exc) from None


@bp.post("/v1/campaigns")
@require("write")
def create() -> Response:
    if request.mimetype == "multipart/form-data":
        arguments = _form_arguments()
    else:
        arguments = _json_arguments()
    result = _create(arguments)
    response = jsonify(result)
    response.status_code = 201
    response.headers["Location"] = url_for("campaigns.show", campaign_id=result["campaign_id"])
    return response


@bp.get("/v1/campaigns/<campaign_id>")
@require("read")
def show(campaign_id: str) -> Response:
    with _campaign_errors():
        return jsonify(campaign_status(context(), campaign_id))


@bp.post("/v1/campaigns/<campaign_id>/pause")
@require("write")
def pause(campaign_id: str) -> Response:
    with _campaign_errors():
        in_flight = pause_campaign(context(), campaign_id)
    return jsonify({"id": campaign_id, "status": CampaignStatus.PAUSED, "in_flight": in_flight})


@bp.post("/v1/campaigns/<campaign_id>/resume")
@require("write")
def resume(campaign_id: str) -> Response:
    with _campaign_errors():
        resume_campaign(context(), campaign_id)
    return jsonify({"id": campaign_id, "status": CampaignStatus.ACTIVE})


@bp.post("/v1/campaigns/<campaign_id>/cancel")
@require("write")
def cancel(campaign_id: str) -> Response:
    with _campaign_errors():
        counts = cancel_campaign(context(), campaign_id)
    return jsonify({"id": campaign_id, "status": CampaignStatus.CANCELED, **counts})


@bp.get("/v1/campaigns/<campaign_id>/export")
@require("read")
def export(campaign_id: str) -> Response:
    out = io.StringIO()
    with _campaign_errors():
        write_export(context(), campaign_id, out)
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'})
