"""The reconciler's decisions and the worker's late steps, against a real database (and the
simulator where Twilio's call list is read), with the clock passed in instead of waited for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from twilio.base.exceptions import TwilioRestException

from harness.stack import VOICE_URL
from tests.support.jobs import dialing_job
from worker.domain.clock import utcnow
from worker.domain.twilio_errors import longest_create_s
from worker.engine import dialing
from worker.engine.context import Context
from worker.engine.reconcile import (
    adopt_orphans,
    decide_stranded,
    release_unplaced,
    resolve,
    silent_attempts,
)
from worker.engine.status import UnknownCall, handle_status
from worker.producer.jobs import enqueue_call, get_job
from worker.store.models import Attempt, Job
from worker.wiring import default_context

TO = "+14155552301"
URI = "/2010-04-01/Accounts/AC/Calls.json"


def state(ctx: Context, job_id: str) -> tuple[Any, ...]:
    job = get_job(ctx, job_id)
    return job.status, job.attempts, [(a.ordinal, a.status) for a in job.attempt_rows]


def unresolved(ctx: Context, attempt_id: int) -> dict[str, Any]:
    """The row as the reconciler reads it (unresolved_attempts' columns)."""
    with ctx.database.session() as session:
        attempt = session.get_one(Attempt, attempt_id)
        job = session.get_one(Job, attempt.job_id)
        return {"id": attempt.id, "job_id": job.id, "status": attempt.status,
                "created_at": attempt.created_at, "updated_at": attempt.updated_at,
                "to": job.to, "from_": job.from_}


@pytest.mark.parametrize("late_step", ["release", "reject", "discard", "do-not-call", "unknown"])
def test_a_worker_whose_attempt_was_given_up_leaves_the_new_claim_alone(
        producer_env: dict[str, str], ctx: Context, late_step: str) -> None:
    """A stalled worker wakes after the reconciler released its attempt and the job was
    claimed again: whatever its create's fate, it must not touch the new claim."""
    job_id = enqueue_call(ctx, TO, url=VOICE_URL, max_attempts=3)
    stalled = dialing.claim(ctx, job_id)
    assert stalled is not None
    release_unplaced(ctx, unresolved(ctx, stalled.attempt_id))
    with ctx.database.session() as session:  # what the dispatcher does with a due job
        session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
    assert dialing.claim(ctx, job_id) is not None
    claimed_again = state(ctx, job_id)
    assert claimed_again == ("dialing", 1, [(1, "creating")])

    error = TwilioRestException(400 if late_step == "reject" else 500, URI, "late", code=21217)
    {"release": lambda: dialing.release(ctx, stalled, 0, "late"),
     "reject": lambda: dialing.reject(ctx, stalled, error),
     "discard": lambda: dialing.discard_attempt(ctx, stalled),
     "do-not-call": lambda: dialing.refuse_do_not_call(ctx, stalled),
     "unknown": lambda: dialing.mark_unknown(ctx, stalled, error)}[late_step]()
    assert state(ctx, job_id) == claimed_again


def test_a_dialing_job_whose_attempt_ended_is_decided(producer_env: dict[str, str],
                                                     ctx: Context) -> None:
    """Nothing known leaves this state; if anything does, the reconciler heals it, once the
    attempt has been settled for longer than the silence threshold."""
    job_id = dialing_job(ctx, TO, "CA" + "1" * 32, max_attempts=1)
    ended = utcnow()
    with ctx.database.session() as session:
        session.execute(update(Attempt).where(Attempt.job_id == job_id)
                        .values(status="busy", ended_at=ended, updated_at=ended))
    silence = timedelta(seconds=ctx.settings.reconcile_silence)

    assert decide_stranded(ctx, ended + silence / 2) == 0
    assert state(ctx, job_id) == ("dialing", 1, [(1, "busy")])
    assert decide_stranded(ctx, ended + silence * 2) == 1
    assert state(ctx, job_id) == ("failed", 1, [(1, "busy")])
    assert decide_stranded(ctx, ended + silence * 2) == 0


def test_a_call_not_heard_from_is_silent_once_past_the_silence_and_its_ring_timeout(
        producer_env: dict[str, str], ctx: Context) -> None:
    """No `ringing` callback is asked for by default: a call is not heard from until it is
    answered or ends, so the job's ring `timeout` (read from its JSON options, on both
    backends) bounds when its silence means a lost callback."""
    silence = ctx.settings.reconcile_silence
    ring_s = int(silence) + 100
    default_ring = "CA" + "4" * 32
    long_ring = "CA" + "5" * 32
    dialing_job(ctx, TO, default_ring)
    dialing_job(ctx, "+14155552302", long_ring, call_options={"timeout": ring_s})
    with ctx.database.session() as session:
        created = session.scalar(select(func.max(Attempt.created_at)))

    assert silent_attempts(ctx, created + timedelta(seconds=silence - 1)) == []
    assert silent_attempts(ctx, created + timedelta(seconds=silence + 1)) == [default_ring]
    assert sorted(silent_attempts(ctx, created + timedelta(seconds=ring_s + 1))) == sorted(
        [default_ring, long_ring])


def test_an_ambiguous_create_waits_its_grace_from_the_answer_then_is_dialed_again(
        make_stack: Any) -> None:
    """No call in Twilio's list: an `unknown` attempt is given up DIALER_UNKNOWN_GRACE after
    its ambiguous answer, however long ago it was claimed."""
    make_stack(DIALER_UNKNOWN_GRACE="30")
    ctx = default_context()
    job_id = enqueue_call(ctx, TO, url=VOICE_URL, max_attempts=3)
    claimed = dialing.claim(ctx, job_id)
    assert claimed is not None
    dialing.mark_unknown(ctx, claimed,
                         TwilioRestException(500, URI, "Internal Server Error", code=20500))
    attempt = unresolved(ctx, claimed.attempt_id)
    answered = attempt["updated_at"]

    resolve(ctx, attempt, answered + timedelta(seconds=29))
    assert state(ctx, job_id) == ("dialing", 1, [(1, "unknown")])
    resolve(ctx, attempt, answered + timedelta(seconds=30))
    assert state(ctx, job_id)[:2] == ("scheduled", 0)


def test_a_dead_workers_attempt_waits_for_its_last_possible_create_plus_the_grace(
        make_stack: Any) -> None:
    """A `creating` attempt of a killed worker: a live worker could have sent its create as
    late as longest_create_s() after the claim; Twilio then gets the grace to list it."""
    make_stack(DIALER_UNKNOWN_GRACE="30")
    ctx = default_context()
    job_id = dialing_job(ctx, TO, max_attempts=3)
    (attempt_row,) = get_job(ctx, job_id).attempt_rows
    attempt = unresolved(ctx, attempt_row.id)
    longest = longest_create_s(ctx.settings.max_pacing_wait, ctx.settings.twilio_timeout)
    last_create = attempt["created_at"] + timedelta(seconds=longest)

    resolve(ctx, attempt, last_create + timedelta(seconds=29))
    assert state(ctx, job_id) == ("dialing", 1, [(1, "creating")])
    resolve(ctx, attempt, last_create + timedelta(seconds=30))
    assert state(ctx, job_id)[:2] == ("scheduled", 0)


def test_callbacks_whose_broker_retry_was_lost_are_adopted_from_the_database(
        producer_env: dict[str, str], ctx: Context) -> None:
    """A callback that overtook the create's answer is stored as an orphan and retried
    through the broker; if Redis loses that retry, the reconciler applies the stored
    callback once the attempt holds the CallSid. Orphans of calls we never made stay."""
    ours, stranger = "CA" + "2" * 32, "CA" + "3" * 32
    job_id = dialing_job(ctx, TO, max_attempts=1)
    for call_sid in (ours, stranger):
        for sequence, call_status in enumerate(("ringing", "completed")):
            with pytest.raises(UnknownCall):
                handle_status(ctx, {"CallSid": call_sid, "CallStatus": call_status,
                                    "SequenceNumber": str(sequence), "CallDuration": "20"})
    assert adopt_orphans(ctx) == 0
    with ctx.database.session() as session:  # the create's answer, stored after the callbacks
        session.execute(update(Attempt).where(Attempt.job_id == job_id)
                        .values(call_sid=ours, status="queued"))
    assert state(ctx, job_id) == ("dialing", 1, [(1, "queued")])

    assert adopt_orphans(ctx) == 2
    assert state(ctx, job_id) == ("completed", 1, [(1, "completed")])
    assert adopt_orphans(ctx) == 0
