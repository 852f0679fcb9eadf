"""The producer API over HTTP: other services enqueue calls, search and cancel them, run
campaigns, keep the do-not-call list and erase numbers, with a bearer API key.

`gunicorn "api:create_app()"` (or `dialer api`) finds `create_app`. The views call the
producer functions (`worker.producer`) with the context built from the environment; they
validate, this package translates JSON names and answers errors as RFC 9457 problems.
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from api import calls, campaigns, dnc, erasures
from api.problems import Problem, problem_response
from api.state import CONTEXT_KEY
from worker.engine.context import Context
from worker.logs import configure_server_logs
from worker.wiring import default_context

log = logging.getLogger(__name__)

__all__ = ["create_app"]

OPENAPI = resources.files(__name__).joinpath("openapi.json")


def create_app(ctx: Context | None = None) -> Flask:
    """Build the app; with no context, the one the environment (and `.env`) gives."""
    ctx = ctx or default_context()
    settings = ctx.settings
    app = Flask(__name__, static_folder=None)
    # Werkzeug answers 413 past this, for a Content-Length and for a chunked body alike.
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[CONTEXT_KEY] = ctx
    if settings.trusted_proxies > 0:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n
        )
    spec = OPENAPI.read_text()
    json.loads(spec)  # a broken document fails at start, not on the first request for it

    @app.get("/v1/openapi.json")
    def openapi() -> Response:
        return Response(spec, mimetype="application/json")

    app.register_blueprint(calls.bp)
    app.register_blueprint(dnc.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(erasures.bp)
    configure_server_logs(settings.log_json)
    app.register_error_handler(Problem, _problem)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _problem(problem: Problem) -> Response:
    return problem_response(problem.status, problem.detail, problem.headers,
                            problem.extensions)


def _http_error(error: HTTPException) -> Response:
    """Werkzeug's errors (404, 405, 413...) as problems, keeping headers such as Allow."""
    status = error.code or 500
    if status >= 500:
        return _unexpected(error)
    headers = {name: value for name, value in error.get_headers()
               if name.lower() != "content-type"}
    detail = error.description or error.name
    if status == 413:
        detail = f"body: larger than the {current_app.config['MAX_CONTENT_LENGTH']} bytes accepted"
    return problem_response(status, detail, headers)


def _unexpected(error: Exception) -> Response:
    """A generic 500, the exception in the log and never in the response."""
    log.error("unhandled %s answered with a generic 500", type(error).__name__,
              exc_info=error)
    return problem_response(500, "internal error")
