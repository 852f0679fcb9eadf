"""Enqueue, dispatch and dial, in-process: the real engine with the broker, Twilio and the
pace stood in for."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from time_machine import TimeMachineFixture
from twilio.base.exceptions import TwilioRestException

from tests.unit.standins import (
    CALLER_ID,
    TO,
    VOICE_URL,
    Dialed,
    FakeTwilio,
    InMemoryBroker,
    InstantPacer,
)
from worker.adapters.pacing import CHECKS_LEAD_S
from worker.domain.clock import utcnow
from worker.engine.context import Context
from worker.engine.dialing import claim, dial, record_created
from worker.engine.dispatch import dispatch_due
from worker.engine.outbox import publish_place_calls
from worker.engine.status import handle_status
from worker.producer.dnc import add_do_not_call
from worker.producer.jobs import cancel_job, enqueue_call, get_job
from worker.store.database import Database
from worker.store.models import Job


def job(ctx: Context, job_id: str) -> Job:
    found = get_job(ctx, job_id)
    assert found is not None
    return found


def test_enqueue_stores_a_queued_job_and_publishes_its_id(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    assert broker.drain() == [job_id]
    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.to, stored.from_, stored.attempts) == ("queued", TO,
                                                                         CALLER_ID, 0)


def test_broker_failure_leaves_the_job_for_the_dispatcher(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    broker.fail_next()

    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)  # no error reaches the producer

    assert broker.published == []
    assert job(engine_ctx, job_id).status == "scheduled"
    assert dispatch_due(engine_ctx) == 1
    assert broker.drain() == [job_id]
    assert job(engine_ctx, job_id).status == "queued"


def test_a_refused_publish_raises_nothing_when_the_jobs_cannot_be_handed_back(
        engine_ctx: Context, broker: InMemoryBroker, tmp_path: Path) -> None:
    # It runs after the jobs' transaction committed: the caller must not see them fail.
    unreachable = dataclasses.replace(
        engine_ctx, database=Database(f"sqlite:///{tmp_path / 'missing' / 'dialer.db'}"))
    broker.fail_next()
    publish_place_calls(unreachable, ["0" * 32])
    assert broker.published == []


def test_dispatcher_republishes_a_stale_queued_job_only_once_the_dial_queue_is_empty(
        engine_ctx: Context, broker: InMemoryBroker, time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    stale = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    broker.drain()  # the message is lost
    time_machine.shift(timedelta(seconds=engine_ctx.settings.queued_stale_after + 1))
    waiting = enqueue_call(engine_ctx, "+14155550124", url=VOICE_URL)

    assert dispatch_due(engine_ctx) == 0  # a message still waits: only a long queue
    assert broker.drain() == [waiting]
    assert dispatch_due(engine_ctx) == 1
    assert broker.drain() == [stale]


def test_dial_creates_the_call_with_the_documented_params(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, call_options={"timeout": 20})

    dial(engine_ctx, broker.take())

    assert twilio.creates == [{
        "to": TO, "from_": CALLER_ID, "url": VOICE_URL,
        "status_callback": "https://dialer.example.com/twilio/status",
        "status_callback_event": ["answered", "completed"],
        "status_callback_method": "POST", "timeout": 20}]
    stored = job(engine_ctx, job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, stored.attempts) == ("dialing", 1)
    assert (attempt.ordinal, attempt.status, attempt.call_sid) == (1, "queued", *twilio.calls)


@pytest.mark.parametrize("settings_overrides", [
    {"DIALER_STATUS_CALLBACK_EVENTS": "completed,ringing"}])
def test_dial_asks_for_the_configured_status_events(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    enqueue_call(engine_ctx, TO, url=VOICE_URL, call_options={"timeout": 20})

    dial(engine_ctx, broker.take())

    (params,) = twilio.creates
    assert params["status_callback_event"] == ["ringing", "completed"]


def test_the_first_request_to_twilio_is_paid_before_the_departure_gate(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio, pacer: InstantPacer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    warmed_at_departure = []
    depart = pacer.depart

    def recording_depart() -> float:
        warmed_at_departure.append(twilio.warmed)
        return depart()

    monkeypatch.setattr(pacer, "depart", recording_depart)
    enqueue_call(engine_ctx, TO, url=VOICE_URL)

    dial(engine_ctx, broker.take())

    assert warmed_at_departure == [True]
    assert len(twilio.creates) == 1


def test_the_last_checks_start_before_the_slot_and_the_gate_holds_the_create(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio, pacer: InstantPacer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    ctx = dataclasses.replace(engine_ctx, sleep=slept.append)
    monkeypatch.setattr(pacer, "reserve", lambda: 0.5)
    departures = iter([0.03, 0.0])
    monkeypatch.setattr(pacer, "depart", lambda: next(departures))
    enqueue_call(ctx, TO, url=VOICE_URL)

    dial(ctx, broker.take())

    assert slept == [pytest.approx(0.5 - CHECKS_LEAD_S), 0.03]
    assert len(twilio.creates) == 1


def test_an_application_job_creates_with_the_application_sid_alone(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    application_sid = "AP" + "ab" * 16
    job_id = enqueue_call(engine_ctx, TO, application_sid=application_sid)

    dial(engine_ctx, broker.take())

    (params,) = twilio.creates
    assert params["application_sid"] == application_sid
    assert "url" not in params and "twiml" not in params
    assert job(engine_ctx, job_id).application_sid == application_sid


def test_redelivered_dial_message_places_no_second_call(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    dial(engine_ctx, dialed.job_id)

    assert len(twilio.creates) == 1
    assert job(engine_ctx, dialed.job_id).attempts == 1


def test_permanent_create_error_fails_the_job_with_its_code(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    twilio.fail(TO, TwilioRestException(status=400, uri="/Calls", msg="bad", code=21217))
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    dial(engine_ctx, broker.take())

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.outcome, stored.error_code) == ("failed", "21217", 21217)
    assert [a.status for a in stored.attempt_rows] == ["rejected"]
    assert len(twilio.creates) == 1


def test_transient_create_error_is_retried_in_a_new_pacing_slot(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        pacer: InstantPacer) -> None:
    twilio.fail(TO, TwilioRestException(status=429, uri="/Calls", msg="slow down", code=20429))
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    dial(engine_ctx, broker.take())

    assert (len(twilio.creates), len(twilio.calls), pacer.reservations) == (2, 1, 2)
    assert job(engine_ctx, job_id).status == "dialing"


def test_pacing_backlog_gives_the_claim_back(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        pacer: InstantPacer) -> None:
    pacer.backlog = 30.0
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    dial(engine_ctx, broker.take())

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.attempts, stored.attempt_rows) == ("scheduled", 0, [])
    assert stored.next_attempt_at > utcnow() + timedelta(seconds=25)
    assert twilio.creates == []


def test_number_put_on_do_not_call_after_enqueue_is_not_dialed(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    add_do_not_call(engine_ctx, [TO])

    dial(engine_ctx, broker.take())

    stored = job(engine_ctx, job_id)
    assert (stored.status, stored.outcome, stored.attempts) == ("failed", "do-not-call", 0)
    assert twilio.creates == []


@pytest.mark.parametrize("settings_overrides", [{"DIALER_MAX_CALLS_PER_NUMBER": "1"}],
                         ids=["one-call-per-number"])
def test_frequency_cap_defers_a_second_call_to_the_same_number(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        dialed: Dialed) -> None:
    second = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    dial(engine_ctx, broker.take())

    stored = job(engine_ctx, second)
    assert (stored.status, stored.attempts) == ("scheduled", 0)
    assert stored.next_attempt_at > utcnow() + timedelta(hours=23)
    assert len(twilio.creates) == 1


def test_canceled_waiting_job_is_never_dialed(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    result = cancel_job(engine_ctx, job_id)
    dial(engine_ctx, broker.take())

    assert (result.canceled, result.message) == (True, "canceled before dialing")
    assert job(engine_ctx, job_id).status == "canceled"
    assert twilio.creates == []


def test_cancel_of_a_ringing_call_cancels_it(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "ringing"))

    result = cancel_job(engine_ctx, dialed.job_id)

    assert (result.canceled, result.message) == (True, "canceled; live call ended")
    assert twilio.ended == [(dialed.call_sid, "canceled")]
    assert job(engine_ctx, dialed.job_id).status == "canceled"


def test_cancel_of_a_call_never_heard_ringing_cancels_it(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    twilio.set_status(dialed.call_sid, "ringing")  # no `ringing` callback is asked for

    cancel_job(engine_ctx, dialed.job_id)

    assert twilio.ended == [(dialed.call_sid, "canceled")]
    assert twilio.calls[dialed.call_sid].status == "canceled"


def test_cancel_of_a_call_answered_before_its_callback_was_handled_hangs_it_up(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    twilio.set_status(dialed.call_sid, "in-progress")  # the attempt still reads `queued`

    result = cancel_job(engine_ctx, dialed.job_id)

    assert result.canceled
    assert twilio.ended == [(dialed.call_sid, "canceled"), (dialed.call_sid, "completed")]
    assert twilio.calls[dialed.call_sid].status == "completed"


def test_cancel_of_an_answered_call_hangs_it_up_and_the_job_stays_canceled(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed) -> None:
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "in-progress"))

    cancel_job(engine_ctx, dialed.job_id)
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "completed"))

    assert twilio.ended == [(dialed.call_sid, "completed")]
    stored = job(engine_ctx, dialed.job_id)
    (attempt,) = stored.attempt_rows
    assert (stored.status, attempt.status) == ("canceled", "completed")


def test_call_created_after_its_job_was_canceled_is_ended(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    claimed = claim(engine_ctx, broker.take())
    assert claimed is not None
    call = twilio.create_call(claimed.params)

    cancel_job(engine_ctx, job_id)  # while the create's answer is on its way
    record_created(engine_ctx, claimed, call)

    assert twilio.ended == [(call.sid, "canceled")]
    assert job(engine_ctx, job_id).status == "canceled"


def test_a_call_sid_already_stored_ends_that_call_and_redials_the_job_later(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        dialed: Dialed) -> None:
    twilio.next_sid = dialed.call_sid  # a stand-in restarted with its first life's seed
    second = enqueue_call(engine_ctx, "+14155550124", url=VOICE_URL)

    dial(engine_ctx, broker.take())

    assert twilio.ended == [(dialed.call_sid, "canceled")]
    again = job(engine_ctx, second)
    assert (again.status, again.attempts, again.attempt_rows) == ("scheduled", 0, [])
    assert again.next_attempt_at > utcnow() + timedelta(seconds=20)
    first = job(engine_ctx, dialed.job_id)
    assert first.status == "dialing"
    assert [a.call_sid for a in first.attempt_rows] == [dialed.call_sid]
