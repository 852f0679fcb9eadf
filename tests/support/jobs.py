"""Jobs put in a given state by the project's own code, for tests that start mid-life."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from harness.stack import VOICE_URL
from worker.engine.context import Context
from worker.engine.dialing import claim
from worker.producer.jobs import enqueue_call
from worker.store.models import Attempt


def dialing_job(ctx: Context, to: str, call_sid: str | None = None, **kwargs: Any) -> str:
    """A job claimed by the real claim code; with `call_sid`, its attempt holds that CallSid
    (as after the create's answer), else it stays `creating`."""
    job_id = enqueue_call(ctx, to, url=VOICE_URL, **kwargs)
    claimed = claim(ctx, job_id)
    assert claimed is not None
    if call_sid is not None:
        with ctx.database.session() as session:
            session.execute(update(Attempt).where(Attempt.id == claimed.attempt_id)
                            .values(call_sid=call_sid, status="queued"))
    return job_id
