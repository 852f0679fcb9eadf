"""The dialer's worker side: the producer API, the Celery app, and the layers under them.

Layers, each importing only those below it (docs/ARCHITECTURE.md; checked by import-linter):
cli > demo > api | tasks > wiring | celery_app > producer > engine > store | adapters >
settings > domain > logs.

Attributes load lazily (PEP 562): `import worker.settings`, which the webhook does, must pull
in neither Celery nor SQLAlchemy, and `celery -A worker` finds `app` here.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = ("enqueue_call", "enqueue_calls", "get_job", "cancel_job", "redirect_call",
        "create_campaign", "pause_campaign", "resume_campaign", "cancel_campaign",
        "campaign_status", "list_campaigns", "write_export", "add_do_not_call",
        "remove_do_not_call", "list_do_not_call", "erase_number")
_EXPORTS = {**dict.fromkeys(_API, "worker.api"), "app": "worker.celery_app",
            "IdempotencyConflict": "worker.producer.jobs",
            **dict.fromkeys(("NotLive", "RedirectFailed"), "worker.producer.redirect")}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
