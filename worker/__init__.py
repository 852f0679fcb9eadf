"""The dialer's worker side: producer API, Celery app and tasks.

Attributes load lazily (PEP 562) so that `import worker.settings`, which the
webhook does, pulls in neither Celery tasks nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "enqueue_call": "worker.producer",
    "enqueue_calls": "worker.producer",
    "get_job": "worker.producer",
    "cancel_job": "worker.producer",
    "app": "worker.celery_app",
    "create_campaign": "worker.campaigns",
    "pause_campaign": "worker.campaigns",
    "resume_campaign": "worker.campaigns",
    "cancel_campaign": "worker.campaigns",
    "campaign_status": "worker.campaigns",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
