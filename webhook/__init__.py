"""The Flask receiver for Twilio's status, recording and AMD callbacks: verify, publish by
name, answer.

`flask --app webhook run` and `gunicorn "webhook:create_app()"` both find `create_app`.
This package imports `worker.settings`, `worker.logs` and the pure `worker.domain`
vocabulary, nothing else of ours, so the request path never touches SQLAlchemy, the models
or the worker's Celery app.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from webhook import metrics
from webhook.publisher import Publisher
from webhook.views import PUBLISHER_KEY, SETTINGS_KEY, bp
from worker.logs import configure_server_logs
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; with no settings, read them from the environment (and `.env`)."""
    settings = settings or get_settings()
    app = Flask(__name__, static_folder=None)
    # Werkzeug answers 413 past this, for a Content-Length and for a chunked body alike.
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_body
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[PUBLISHER_KEY] = Publisher(settings.redis_url)
    if settings.trusted_proxies > 0:
        # Only then are X-Forwarded-* believed; each names how many proxies append to it.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n
        )
    if not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: every status callback will be refused (403)")
    app.register_blueprint(bp)
    metrics.install(app)
    configure_server_logs(settings.log_json)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    return app


def _json(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json")


def _http_error(error: HTTPException) -> Response:
    """A short JSON body for every 4xx, keeping headers such as a 405's Allow."""
    if error.code is not None and error.code >= 500:
        return _server_error(error)
    response = error.get_response()
    response.set_data(json.dumps({"error": error.description or error.name}))
    response.mimetype = "application/json"
    return response


def _server_error(error: HTTPException) -> Response:
    """Never a traceback in the response; Flask has already logged it (app.log_exception)."""
    original = getattr(error, "original_exception", None)
    if original is not None:
        log.error("unhandled %s answered with a generic 500", type(original).__name__)
    return _json(error.code or 500, "internal error")
