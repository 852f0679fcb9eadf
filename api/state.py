"""Where the app keeps the dialer's context, for the views to reach it."""

from __future__ import annotations

from flask import current_app

from worker.engine.context import Context

CONTEXT_KEY = "dialer.context"


def context() -> Context:
    return current_app.extensions[CONTEXT_KEY]
