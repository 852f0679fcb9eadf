"""Enqueueing for later, and idempotency keys that name one call only: the producer
in-process with the broker, Twilio and the pace stood in for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from time_machine import TimeMachineFixture

from tests.unit.standins import TO, VOICE_URL, FakeTwilio, InMemoryBroker
from worker.domain.clock import utcnow
from worker.domain.statuses import JobStatus
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.engine.dispatch import dispatch_due
from worker.producer.jobs import IdempotencyConflict, enqueue_call, enqueue_calls, get_job
from worker.store.models import Job


def stored(ctx: Context, job_id: str) -> Job:
    job = get_job(ctx, job_id)
    assert job is not None
    return job


def test_a_call_for_later_waits_unpublished_until_its_time(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), tick=False)
    at = datetime(2026, 12, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, at=at)
    job = stored(engine_ctx, job_id)
    assert (job.status, job.next_attempt_at) == (JobStatus.SCHEDULED, at)
    assert broker.drain() == []
    time_machine.move_to(at - timedelta(seconds=1), tick=False)
    assert dispatch_due(engine_ctx) == 0
    time_machine.move_to(at, tick=False)
    assert dispatch_due(engine_ctx) == 1
    dial(engine_ctx, broker.take())
    assert len(twilio.calls) == 1


def test_a_time_already_past_is_dialed_now(engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, at=utcnow() - timedelta(hours=1))
    assert stored(engine_ctx, job_id).status == JobStatus.QUEUED
    assert broker.drain() == [job_id]


def test_the_time_may_be_iso_text_with_its_offset(engine_ctx: Context) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, at="2099-01-02T09:00:00-05:00")
    assert stored(engine_ctx, job_id).next_attempt_at == datetime(2099, 1, 2, 14, tzinfo=UTC)


@pytest.mark.parametrize("at", [datetime(2099, 1, 2, 9, 0), "2099-01-02T09:00:00",
                                "tomorrow", 1767345600])
def test_a_time_without_offset_or_not_a_time_is_refused_naming_the_field(
        engine_ctx: Context, broker: InMemoryBroker, at: object) -> None:
    with pytest.raises(ValueError, match=r"^at: "):
        enqueue_call(engine_ctx, TO, url=VOICE_URL, at=at)  # type: ignore[arg-type]
    assert broker.drain() == []


def test_the_same_key_and_call_return_the_first_job(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    first = enqueue_call(engine_ctx, TO, url=VOICE_URL, idempotency_key="k1",
                         metadata={"order": 7})
    again = enqueue_call(engine_ctx, " " + TO, url=VOICE_URL, idempotency_key="k1",
                         metadata={"order": 7})
    assert again == first
    assert broker.drain() == [first]


@pytest.mark.parametrize("change", [{"to": "+14155550199"}, {"url": "https://example.com/b"},
                                    {"metadata": {"order": 8}}, {"max_attempts": 1},
                                    {"at": "2099-01-01T00:00:00Z"}])
def test_the_same_key_with_another_call_is_a_conflict_that_stores_nothing(
        engine_ctx: Context, broker: InMemoryBroker, change: dict[str, object]) -> None:
    call: dict[str, object] = {"to": TO, "url": VOICE_URL, "idempotency_key": "k1",
                               "metadata": {"order": 7}}
    first = enqueue_call(engine_ctx, **call)  # type: ignore[arg-type]
    with pytest.raises(IdempotencyConflict, match=rf"^idempotency_key: 'k1' is job {first}"):
        enqueue_call(engine_ctx, **(call | change))  # type: ignore[arg-type]
    assert broker.drain() == [first]


def test_a_batch_reusing_a_key_for_another_call_is_refused_whole(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    calls = [{"to": TO, "url": VOICE_URL, "idempotency_key": "k1"},
             {"to": "+14155550177", "url": VOICE_URL},
             {"to": "+14155550199", "url": VOICE_URL, "idempotency_key": "k1"}]
    with pytest.raises(IdempotencyConflict, match=r"^calls\[2\]\.idempotency_key: "):
        enqueue_calls(engine_ctx, calls)
    assert broker.drain() == []
    # Nothing of the refused batch was stored: the same calls without the conflict are new.
    ids = enqueue_calls(engine_ctx, calls[:2])
    assert broker.drain() == ids and len(set(ids)) == 2
