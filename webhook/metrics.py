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

from worker.domain.names import STATUS_CALLBACK_PATH

# Why a callback was answered as it was; the status code says it exactly.
RESULTS = {204: "accepted", 400: "bad_request", 403: "bad_signature", 405: "bad_method",
           413: "too_large", 503: "broker_down"}

CALLBACKS = Counter("dialer_callbacks", "Status callbacks received, by result "
                    "(accepted, or the reason they were rejected)", ["result"])
LATENCY = Histogram("dialer_webhook_request_seconds", "Time to answer a status callback",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))


def _start() -> None:
    g.dialer_started = time.perf_counter()


def _count(response: Response) -> Response:
    if request.path == STATUS_CALLBACK_PATH and "dialer_started" in g:
        LATENCY.observe(time.perf_counter() - g.dialer_started)
        CALLBACKS.labels(RESULTS.get(response.status_code, str(response.status_code))).inc()
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
