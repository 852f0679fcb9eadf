"""`POST /twilio/status`, `/twilio/recording`, `/twilio/amd`, and `GET /healthz`.

Every callback takes one path: the checks run cheapest-and-safest first: size (413), a body
we can decode (400), the signature (403), the fields its handler cannot do without (400);
only then is it published, by task name. No database work here: the worker stores and
decides, so a slow database never makes Twilio wait or time out.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from webhook.publisher import BROKER_ERRORS, CONNECT_TIMEOUT_S, Publisher
from worker.domain.names import (
    AMD_CALLBACK_PATH,
    HANDLE_AMD_TASK,
    HANDLE_RECORDING_TASK,
    HANDLE_STATUS_TASK,
    RECORDING_CALLBACK_PATH,
    STATUS_CALLBACK_PATH,
)
from worker.domain.recordings import ANSWERED_BY, RECORDING_STATUSES
from worker.domain.statuses import CALL_STATUSES
from worker.settings import Settings

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__)

SETTINGS_KEY = "dialer.settings"
PUBLISHER_KEY = "dialer.publisher"

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
# RFC 3986 pchar plus "/": what a path may hold unescaped.
_PATH_SAFE = "/:@!$&'()*+,;="
FORM_TYPE = "application/x-www-form-urlencoded"


def _settings() -> Settings:
    return current_app.extensions[SETTINGS_KEY]  # type: ignore[no-any-return]


def _publisher() -> Publisher:
    return current_app.extensions[PUBLISHER_KEY]  # type: ignore[no-any-return]


def _raw_target(environ: dict[str, Any]) -> str:
    """Path and query as the client sent them, relative to where the app is mounted.

    Twilio signs the URL it called, byte for byte; `request.url` is rebuilt from decoded
    parts and may re-encode them differently.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if not raw.startswith("/"):  # absolute-form request target: keep path and query
            parts = urlsplit(raw)
            raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # The server's own mount point (gunicorn's SCRIPT_NAME) is part of DIALER_PUBLIC_URL.
        orig = environ.get("werkzeug.proxy_fix.orig", environ)
        mount = quote(orig.get("SCRIPT_NAME") or "", safe=_PATH_SAFE).rstrip("/")
        return raw[len(mount):] if mount and raw.startswith(mount + "/") else raw
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    return path + (f"?{query}" if query else "")


def signed_url(settings: Settings) -> str:
    """The URL Twilio must have signed.

    Directly exposed: DIALER_PUBLIC_URL + raw path, the same base the worker puts in
    StatusCallback. Behind trusted proxies (ProxyFix has rewritten scheme, host and
    prefix from X-Forwarded-*): the URL the proxy says the client called.
    """
    if settings.trusted_proxies > 0:
        prefix = quote(request.script_root, safe=_PATH_SAFE)
        base = f"{request.scheme}://{request.host}{prefix}"
    else:
        base = settings.public_url
    return base + _raw_target(request.environ)


def _read_body(limit: int) -> bytes:
    """The whole body, 413 past `limit` (MAX_CONTENT_LENGTH), or 400 if it cannot be read.

    Werkzeug refuses a Content-Length past the limit, but a chunked body is silently cut
    at the limit: one more byte from the server's (terminated) stream tells them apart.
    """
    try:
        body = request.get_data(cache=True)
        past_limit = (len(body) >= limit and request.content_length is None
                      and request.environ["wsgi.input"].read(1))
    except HTTPException:
        raise
    except Exception as exc:
        # WSGI names no error for a body the server cannot decode (a broken chunk size or
        # terminator): werkzeug turns the OSError of its own server into a 400, but
        # gunicorn's ParseException is no OSError and would be a 500 with a traceback.
        # Whatever the server raises here, the client sent it: a 400.
        log.warning("unreadable request body from %s: %s", request.remote_addr,
                    type(exc).__name__)
        abort(400, description="body could not be read (malformed chunked encoding)")
    if past_limit:
        abort(413, description=f"body larger than {limit} bytes")
    return body


class Form(MultiDict[str, str]):
    """A callback's fields, repeated keys kept (each value counts in the signature).

    RequestValidator reads a field's values with `getall` (the multidict API) and only on
    AttributeError with `getlist`; with `getall` here, no field costs a caught exception
    (a third of the signature check's CPU).
    """

    getall = MultiDict.getlist


def _form(body: bytes) -> Form | None:
    """The body's fields, or None when it is not UTF-8 form data (a client error, not a
    crash: Twilio sends UTF-8). Parsed once, here, into the pairs werkzeug's `request.form`
    holds: from a form content type only, as werkzeug reads them."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError included, also for percent-escaped bytes
        return None
    return Form(pairs if request.mimetype == FORM_TYPE else ())


@dataclass(frozen=True)
class Field:
    """A field a callback's handler cannot do without, and what a valid value is."""

    name: str
    valid: Callable[[str], object]
    expected: str


@dataclass(frozen=True)
class Callback:
    """One kind of Twilio callback: the task that handles it, the fields it needs, and the
    fields shown in the published message's headers."""

    name: str
    task: str
    fields: tuple[Field, ...]
    summary: tuple[str, ...]


CALL_SID_FIELD = Field("CallSid", CALL_SID.fullmatch, "a call SID (CA + 32 hex digits)")
CALLBACKS = {
    STATUS_CALLBACK_PATH: Callback(
        "status", HANDLE_STATUS_TASK,
        (CALL_SID_FIELD, Field("CallStatus", CALL_STATUSES.__contains__, "a known call status")),
        ("CallSid", "CallStatus", "SequenceNumber")),
    RECORDING_CALLBACK_PATH: Callback(
        "recording", HANDLE_RECORDING_TASK,
        (CALL_SID_FIELD,
         Field("RecordingSid", RECORDING_SID.fullmatch, "a recording SID (RE + 32 hex digits)"),
         Field("RecordingStatus", RECORDING_STATUSES.__contains__,
               "a known recording status")),
        ("CallSid", "RecordingSid", "RecordingStatus")),
    AMD_CALLBACK_PATH: Callback(
        "amd", HANDLE_AMD_TASK,
        (CALL_SID_FIELD, Field("AnsweredBy", ANSWERED_BY.__contains__, "a known AMD result")),
        ("CallSid", "AnsweredBy", "MachineDetectionDuration")),
}


def _signed_for(url: str, form: Form, signature: str, token: str) -> bool:
    """Whether `signature` is Twilio's for exactly `url` and `form`.

    RequestValidator.validate also accepts the signature of the URL with its default port
    added or its port removed, so a signature made for https://host/ would pass at
    https://host:8443/. Only the URL itself counts here: its signature is computed with
    Twilio's own helper and compared in constant time.
    """
    expected = RequestValidator(token).compute_signature(url, form)
    return hmac.compare_digest(expected.encode(), signature.encode())


def _refuse(kind: Callback, reason: str, url: str) -> None:
    # Neither the token, the signature nor the form (phone numbers) goes to the log.
    log.warning("refused a callback (%s) from %s: %s (verified against %s)", kind.name,
                request.remote_addr, reason, url.split("?", 1)[0])
    abort(403, description="invalid signature")


def _receive(kind: Callback) -> ResponseReturnValue:
    """Verify one callback, check the fields its handler needs, publish it: 204."""
    settings = _settings()
    form = _form(_read_body(settings.webhook_max_body))
    if form is None:
        abort(400, description="body is not UTF-8 form data")
    url = signed_url(settings)
    signature = request.headers.get("X-Twilio-Signature")
    if not settings.twilio_auth_token:
        _refuse(kind, "TWILIO_AUTH_TOKEN is not set", url)
    elif not signature:
        _refuse(kind, "no X-Twilio-Signature", url)
    elif not _signed_for(url, form, signature, settings.twilio_auth_token):
        _refuse(kind, "X-Twilio-Signature does not match", url)

    for field in kind.fields:
        value = form.get(field.name)
        if not value:
            abort(400, description=f"{field.name} is missing")
        if not field.valid(value):
            abort(400, description=f"{field.name} is not {field.expected}")

    try:
        _publisher().publish(kind.task, form.to_dict(flat=True),
                             request.headers.get("I-Twilio-Idempotency-Token"), kind.summary)
    except BROKER_ERRORS as exc:
        log.error("could not publish a callback (%s) of %s: broker unreachable (%s)",
                  kind.name, form.get("CallSid"), type(exc).__name__)
        return jsonify(error="broker unavailable"), 503
    return "", 204


for _path, _kind in CALLBACKS.items():
    bp.add_url_rule(_path, f"twilio_{_kind.name}", partial(_receive, _kind), methods=["POST"])


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Ready when the broker answers: without it every callback would be a 503."""
    client = redis.Redis.from_url(_settings().redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                  socket_timeout=CONNECT_TIMEOUT_S)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return jsonify(broker="unreachable"), 503
    finally:
        client.close()
    return jsonify(broker="ok"), 200
