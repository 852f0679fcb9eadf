"""The reconciler, in-process: an ambiguous create, a lost callback or a dead worker ends
with the job decided or dialed again, never with a second call for one attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import update
from time_machine import TimeMachineFixture

from tests.unit.standins import TO, VOICE_URL, Dialed, FakeTwilio, InMemoryBroker
from worker.domain.clock import utcnow
from worker.domain.twilio_errors import longest_create_s
from worker.engine import metrics
from worker.engine.context import Context
from worker.engine.dialing import claim, dial
from worker.engine.dispatch import dispatch_due
from worker.engine.reconcile import reconcile
from worker.engine.status import UnknownCall, handle_status
from worker.producer.jobs import enqueue_call, get_job
from worker.store.models import Attempt, Event, Job


def job(ctx: Context, job_id: str) -> Job:
    found = get_job(ctx, job_id)
    assert found is not None
    return found


def ambiguous_dial(ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio, *,
                   created: bool) -> str:
    """A job whose create timed out reading the answer; with `created`, Twilio made the call."""
    twilio.fail(TO, requests.ReadTimeout("read timed out"), created=created)
    job_id = enqueue_call(ctx, TO, url=VOICE_URL)
    dial(ctx, broker.take())
    return job_id


def test_ambiguous_create_is_not_retried(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = ambiguous_dial(engine_ctx, broker, twilio, created=True)

    stored = job(engine_ctx, job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, attempt.status, attempt.call_sid) == ("dialing", "unknown", None)
    assert attempt.error_message == "ReadTimeout: read timed out"
    assert len(twilio.creates) == 1


def test_reconcile_adopts_the_call_an_ambiguous_create_made(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = ambiguous_dial(engine_ctx, broker, twilio, created=True)
    (call_sid,) = twilio.calls
    twilio.set_status(call_sid, "completed", duration=7)

    assert reconcile(engine_ctx)["unresolved"] == 1

    stored = job(engine_ctx, job_id)
    (attempt,) = stored.attempt_rows
    assert (attempt.call_sid, attempt.status, attempt.duration) == (call_sid, "completed", 7)
    assert stored.status == "completed"
    assert len(twilio.creates) == 1


def test_reconcile_redials_an_ambiguous_create_with_no_call_after_the_grace(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = ambiguous_dial(engine_ctx, broker, twilio, created=False)

    reconcile(engine_ctx)  # Twilio may not list the call yet: wait
    assert [a.status for a in job(engine_ctx, job_id).attempt_rows] == ["unknown"]

    time_machine.shift(timedelta(seconds=engine_ctx.settings.unknown_grace + 1))
    reconcile(engine_ctx)

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.attempts, stored.attempt_rows) == ("scheduled", 0, [])
    assert dispatch_due(engine_ctx) == 1
    dial(engine_ctx, broker.take())
    assert (len(twilio.creates), len(twilio.calls)) == (2, 1)
    assert job(engine_ctx, job_id).status == "dialing"


def test_reconcile_finds_the_call_of_a_worker_that_died_during_its_create(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    claimed = claim(engine_ctx, broker.take())
    assert claimed is not None
    call = twilio.create_call(claimed.params)  # and the worker dies before recording it

    reconcile(engine_ctx)  # a live worker may still be creating: wait
    assert [a.status for a in job(engine_ctx, job_id).attempt_rows] == ["creating"]

    settings = engine_ctx.settings
    time_machine.shift(longest_create_s(settings.max_pacing_wait, settings.twilio_timeout) + 1)
    reconcile(engine_ctx)

    (attempt,) = job(engine_ctx, job_id).attempt_rows
    assert (attempt.call_sid, attempt.status) == (call.sid, "queued")


def test_reconcile_reports_a_silent_call_from_twilio(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    twilio.set_status(dialed.call_sid, "no-answer")  # and every callback was lost

    reconcile(engine_ctx)
    assert job(engine_ctx, dialed.job_id).status == "dialing"  # not silent for long yet

    time_machine.shift(timedelta(seconds=engine_ctx.settings.reconcile_silence + 1))
    assert reconcile(engine_ctx)["refreshed"] == 1

    stored = job(engine_ctx, dialed.job_id)
    assert (stored.status, stored.outcome) == ("scheduled", "no-answer")


def test_a_call_not_heard_from_is_fetched_only_once_its_ring_timeout_has_passed(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    # No `ringing` callback is asked for: a call rings in silence until answered or ended.
    time_machine.move_to(utcnow())
    ring_s = int(engine_ctx.settings.reconcile_silence) + 120
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, call_options={"timeout": ring_s})
    dial(engine_ctx, broker.take())
    (call_sid,) = twilio.calls
    twilio.set_status(call_sid, "ringing")

    time_machine.shift(timedelta(seconds=engine_ctx.settings.reconcile_silence + 1))
    assert reconcile(engine_ctx)["refreshed"] == 0  # still ringing, as far as anyone knows

    twilio.set_status(call_sid, "no-answer")  # and its only callback was lost
    time_machine.shift(timedelta(seconds=ring_s - engine_ctx.settings.reconcile_silence))
    assert reconcile(engine_ctx)["refreshed"] == 1
    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.outcome) == ("scheduled", "no-answer")


def test_a_call_heard_from_is_fetched_after_the_silence_whatever_its_ring_timeout(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, call_options={"timeout": 600})
    dial(engine_ctx, broker.take())
    (call_sid,) = twilio.calls
    handle_status(engine_ctx, twilio.report(call_sid, "in-progress"))
    twilio.set_status(call_sid, "completed", duration=30)  # and its callback was lost

    time_machine.shift(timedelta(seconds=engine_ctx.settings.reconcile_silence + 1))
    assert reconcile(engine_ctx)["refreshed"] == 1
    assert job(engine_ctx, job_id).status == "completed"


def test_reconcile_applies_a_callback_stored_before_its_call_sid(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    # The race this undoes: the callback's transaction found no attempt with the CallSid
    # and stored the event as an orphan while the worker's transaction recorded the CallSid
    # and found no orphan to adopt. Both commits together make this state.
    with engine_ctx.database.session() as session:
        session.execute(update(Attempt).values(call_sid=None))
    with pytest.raises(UnknownCall):
        handle_status(engine_ctx, twilio.report(dialed.call_sid, "completed"))
    with engine_ctx.database.session() as session:
        session.execute(update(Attempt).values(call_sid=dialed.call_sid))

    assert reconcile(engine_ctx)["orphans"] == 1

    assert job(engine_ctx, dialed.job_id).status == "completed"
    with engine_ctx.database.session() as session:
        assert session.get_one(Event, 1).attempt_id is not None


def test_a_job_that_breaks_the_reconciler_is_skipped_and_the_others_recover(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    numbers = ["+14155550131", "+14155550132", "+14155550133", "+14155550134"]
    job_ids = [enqueue_call(engine_ctx, to, url=VOICE_URL) for to in numbers]
    for _ in job_ids:
        dial(engine_ctx, broker.take())
    # A row no enqueue accepts any more (written by hand, or by an older version): its
    # retry time is out of datetime's range, so deciding it raises OverflowError.
    poisoned = job_ids[1]
    with engine_ctx.database.session() as session:
        session.execute(update(Job).where(Job.id == poisoned)
                        .values(retry_delays=[10**12], max_attempts=3))
    for call_sid in twilio.calls:
        twilio.set_status(call_sid, "busy")  # and every callback was lost
    time_machine.shift(timedelta(seconds=engine_ctx.settings.reconcile_silence + 1))
    skipped = metrics.SKIPPED.labels("refresh")._value.get()

    assert reconcile(engine_ctx)["refreshed"] == len(numbers)

    assert metrics.SKIPPED.labels("refresh")._value.get() == skipped + 1
    for job_id in job_ids:
        expected = ("dialing", None) if job_id == poisoned else ("scheduled", "busy")
        stored = job(engine_ctx, job_id)
        assert (stored.status, stored.outcome) == expected, job_id
