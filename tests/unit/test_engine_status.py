"""Status callbacks, in-process: the job is decided once, whatever order and however often
Twilio's callbacks arrive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from time_machine import TimeMachineFixture

from tests.unit.standins import TO, VOICE_URL, Dialed, FakeTwilio, InMemoryBroker
from worker.domain.clock import utcnow
from worker.engine.context import Context
from worker.engine.dialing import claim, dial, record_created
from worker.engine.dispatch import dispatch_due
from worker.engine.status import UnknownCall, handle_status
from worker.producer.jobs import enqueue_call, get_job
from worker.store.models import Event, Job


def job(ctx: Context, job_id: str) -> Job:
    found = get_job(ctx, job_id)
    assert found is not None
    return found


def answered_call(twilio: FakeTwilio, call_sid: str) -> list[dict[str, str]]:
    """The callbacks of a call answered and hung up after 12 seconds, in sending order."""
    return [twilio.report(call_sid, "initiated"), twilio.report(call_sid, "ringing"),
            twilio.report(call_sid, "in-progress"),
            twilio.report(call_sid, "completed", CallDuration="12")]


def test_callback_sequence_completes_the_job(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    results = [handle_status(engine_ctx, params)
               for params in answered_call(twilio, dialed.call_sid)]

    assert results == ["stored"] * 4
    stored = job(engine_ctx, dialed.job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, stored.outcome) == ("completed", "completed")
    assert (attempt.status, attempt.duration, attempt.last_sequence) == ("completed", 12, 3)
    assert attempt.ended_at is not None


def test_busy_with_retries_left_is_dialed_again_after_the_delay(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, retry_delays=[300])
    dial(engine_ctx, broker.take())
    (first,) = twilio.calls

    handle_status(engine_ctx, twilio.report(first, "busy"))

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.outcome) == ("scheduled", "busy")
    assert stored.next_attempt_at >= utcnow() + timedelta(seconds=299)
    assert dispatch_due(engine_ctx) == 0  # not due yet

    time_machine.shift(timedelta(seconds=331))  # the delay and its jitter (up to 10%)
    assert dispatch_due(engine_ctx) == 1
    dial(engine_ctx, broker.take())

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.attempts) == ("dialing", 2)
    assert [(a.ordinal, a.status) for a in stored.attempt_rows] == [(1, "busy"), (2, "queued")]
    assert len(twilio.calls) == 2


def test_busy_on_the_last_attempt_fails_the_job(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, max_attempts=1)
    dial(engine_ctx, broker.take())
    (call_sid,) = twilio.calls

    handle_status(engine_ctx, twilio.report(call_sid, "busy"))

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.outcome) == ("failed", "busy")


def test_repeated_callback_is_stored_once(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    ringing = twilio.report(dialed.call_sid, "ringing")

    assert handle_status(engine_ctx, ringing) == "stored"
    assert handle_status(engine_ctx, ringing, idempotency_token="redelivered") == "duplicate"

    with engine_ctx.database.session() as session:
        assert len(session.scalars(select(Event)).all()) == 1


def test_late_callback_does_not_move_the_call_back(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    initiated, ringing, answered, completed = answered_call(twilio, dialed.call_sid)

    for params in (completed, ringing, answered, initiated):
        handle_status(engine_ctx, params)

    stored = job(engine_ctx, dialed.job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, attempt.status, attempt.last_sequence) == ("completed", "completed",
                                                                      3)


def test_second_terminal_callback_does_not_decide_the_job_again(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "completed"))

    handle_status(engine_ctx, twilio.report(dialed.call_sid, "busy"))

    stored = job(engine_ctx, dialed.job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, stored.attempts, attempt.status) == ("completed", 1, "completed")


def test_callback_before_the_call_sid_is_stored_is_applied_when_it_is(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    claimed = claim(engine_ctx, broker.take())
    assert claimed is not None
    call = twilio.create_call(claimed.params)

    for params in answered_call(twilio, call.sid):  # faster than the create's answer
        with pytest.raises(UnknownCall):
            handle_status(engine_ctx, params)
    assert job(engine_ctx, job_id).status == "dialing"
    record_created(engine_ctx, claimed, call)

    stored = job(engine_ctx, job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, attempt.status, attempt.call_sid) == ("completed", "completed",
                                                                 call.sid)


def test_callback_with_an_unknown_call_status_is_ignored(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    params = twilio.report(dialed.call_sid, "ringing")
    params["CallStatus"] = "sleeping"

    assert handle_status(engine_ctx, params) == "invalid"
    (attempt,) = job(engine_ctx, dialed.job_id).attempt_rows
    assert attempt.status == "queued"
