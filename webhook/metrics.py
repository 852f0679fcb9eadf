"""The webhook's Prometheus metrics at `GET /metrics`.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (an empty directory)
so the figures are summed over the workers; without it each worker reports its own.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from webhook.views import CALLBACKS as KINDS

# Why a callback was answered as it was; the status code says it exactly.
RESULTS = {204: "accepted", 400: "bad_request", 403: "bad_signature", 405: "bad_method",
           413: "too_large", 503: "broker_down"}

CALLBACKS = Counter("dialer_callbacks", "Twilio callbacks received, by kind (status, "
                    "recording, amd) and result (accepted, or the reason they were rejected)",
                    ["callback", "result"])
LATENCY = Histogram("dialer_webhook_request_seconds", "Time to answer a Twilio callback",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))


def _start() -> None:
    g.dialer_started = time.perf_counter()


def _count(response: Response) -> Response:
    kind = KINDS.get(request.path)
    if kind is not None and "dialer_started" in g:
        LATENCY.observe(time.perf_counter() - g.dialer_started)
        CALLBACKS.labels(kind.name,
                         RESULTS.get(response.status_code, str(response.status_code))).inc()
    return response


def _metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def install(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
