"""`POST /twilio/status` and `GET /healthz`.

The checks run cheapest-and-safest first: size (413), a body we can decode (400), the
signature (403), the two fields the handler cannot do without (400); only then is
anything published. No database work here: the worker stores and decides, so a slow
database never makes Twilio wait or time out.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from webhook.publisher import BROKER_ERRORS, CONNECT_TIMEOUT_S, Publisher
from worker.domain.names import STATUS_CALLBACK_PATH
from worker.domain.statuses import CALL_STATUSES
from worker.settings import Settings

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__)

SETTINGS_KEY = "dialer.settings"
PUBLISHER_KEY = "dialer.publisher"

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
# RFC 3986 pchar plus "/": what a path may hold unescaped.
_PATH_SAFE = "/:@!$&'()*+,;="


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
    """The whole body, or 413 past `limit` (MAX_CONTENT_LENGTH).

    Werkzeug refuses a Content-Length past the limit, but a chunked body is silently cut
    at the limit: one more byte from the server's (terminated) stream tells them apart.
    """
    body = request.get_data(cache=True)
    if (len(body) >= limit and request.content_length is None
            and request.environ["wsgi.input"].read(1)):
        abort(413, description=f"body larger than {limit} bytes")
    return body


def _is_form_text(body: bytes) -> bool:
    """Twilio sends UTF-8 form data; anything else is a client error, not a crash."""
    try:
        parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError included, also for percent-escaped bytes
        return False
    return True


def _refuse(reason: str, url: str) -> None:
    # Neither the token, the signature nor the form (phone numbers) goes to the log.
    log.warning("refused a status callback from %s: %s (verified against %s)",
                request.remote_addr, reason, url.split("?", 1)[0])
    abort(403, description="invalid signature")


@bp.post(STATUS_CALLBACK_PATH)
def twilio_status() -> ResponseReturnValue:
    settings = _settings()
    body = _read_body(settings.webhook_max_body)
    if not _is_form_text(body):
        abort(400, description="body is not UTF-8 form data")
    form = request.form  # a MultiDict: a repeated key counts in the signature
    url = signed_url(settings)
    signature = request.headers.get("X-Twilio-Signature")
    if not settings.twilio_auth_token:
        _refuse("TWILIO_AUTH_TOKEN is not set", url)
    elif not signature:
        _refuse("no X-Twilio-Signature", url)
    elif not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        _refuse("X-Twilio-Signature does not match", url)

    call_sid, call_status = form.get("CallSid"), form.get("CallStatus")
    if not call_sid:
        abort(400, description="CallSid is missing")
    if not CALL_SID.fullmatch(call_sid):
        abort(400, description="CallSid is not a call SID (CA + 32 hex digits)")
    if not call_status:
        abort(400, description="CallStatus is missing")
    if call_status not in CALL_STATUSES:
        abort(400, description="CallStatus is not a known call status")

    try:
        _publisher().publish_status(form.to_dict(flat=True),
                                    request.headers.get("I-Twilio-Idempotency-Token"))
    except BROKER_ERRORS as exc:
        log.error("could not publish the status of %s: broker unreachable (%s)",
                  call_sid, type(exc).__name__)
        return jsonify(error="broker unavailable"), 503
    return "", 204


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
