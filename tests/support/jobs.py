"""Jobs put in a given state by the project's own code, for tests that start mid-life."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from tests.support.stack import VOICE_URL


def dialing_job(to: str, call_sid: str | None = None, **kwargs: Any) -> str:
    """A job claimed by the real claim code; with `call_sid`, its attempt holds that CallSid
    (as after the create's answer), else it stays `creating`."""
    from worker import enqueue_call
    from worker.db import session_scope
    from worker.dialing import claim
    from worker.models import Attempt

    job_id = enqueue_call(to, url=VOICE_URL, **kwargs)
    claimed = claim(job_id)
    assert claimed is not None
    if call_sid is not None:
        with session_scope() as session:
            session.execute(update(Attempt).where(Attempt.id == claimed.attempt_id)
                            .values(call_sid=call_sid, status="queued"))
    return job_id
