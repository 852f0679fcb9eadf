"""`enqueue` says of each call whether it made the job, refuses bad input by field (with the
item's index in a batch) and stores nothing then; enqueue_call and enqueue_calls answer as it
does. The do-not-call check for one number."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.standins import TO, VOICE_URL, InMemoryBroker
from worker.engine.context import Context
from worker.producer.dnc import add_do_not_call, is_on_do_not_call, remove_do_not_call
from worker.producer.jobs import (
    Enqueued,
    IdempotencyConflict,
    enqueue,
    enqueue_call,
    enqueue_calls,
    get_job,
)
from worker.producer.reports import find_jobs

OTHER = "+14155550177"


def test_a_new_call_is_created_and_published(engine_ctx: Context,
                                             broker: InMemoryBroker) -> None:
    (enqueued,) = enqueue(engine_ctx, [{"to": TO, "url": VOICE_URL, "metadata": {"o": 1}}],
                          batch=False)
    assert enqueued.created and broker.drain() == [enqueued.job_id]
    job = get_job(engine_ctx, enqueued.job_id)
    assert job is not None and (job.to, job.metadata_) == (TO, {"o": 1})


def test_a_stored_key_with_the_same_call_is_not_created_again(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    call = {"to": TO, "url": VOICE_URL, "idempotency_key": "k1"}
    first = enqueue_call(engine_ctx, **call)
    assert enqueue(engine_ctx, [call], batch=False) == [Enqueued(first, created=False)]
    assert enqueue(engine_ctx, [call, {"to": OTHER, "url": VOICE_URL}])[0] == Enqueued(
        first, created=False)
    assert broker.drain()[0] == first and len(find_jobs(engine_ctx)) == 2


def test_a_key_repeated_in_a_batch_makes_one_job(engine_ctx: Context,
                                                 broker: InMemoryBroker) -> None:
    call = {"to": TO, "url": VOICE_URL, "idempotency_key": "k1"}
    made, again = enqueue(engine_ctx, [call, call])
    assert (made.created, again) == (True, Enqueued(made.job_id, created=False))
    assert broker.drain() == [made.job_id]


def test_the_three_entry_points_are_one_path(engine_ctx: Context) -> None:
    call = {"to": TO, "url": VOICE_URL, "idempotency_key": "k1"}
    (made,) = enqueue(engine_ctx, [call])
    assert enqueue_call(engine_ctx, **call) == made.job_id
    assert enqueue_calls(engine_ctx, [call]) == [made.job_id]
    for entry in (lambda c: enqueue(engine_ctx, [c]), lambda c: enqueue_calls(engine_ctx, [c]),
                  lambda c: enqueue_call(engine_ctx, **c)):
        with pytest.raises(IdempotencyConflict):
            entry({**call, "to": OTHER})


@pytest.mark.parametrize(("call", "message"), [
    ({"to": "12345", "url": VOICE_URL}, "to: "),
    ({"url": VOICE_URL}, "to: "),
    ({"to": TO}, "url/twiml/application_sid: "),
    ({"to": TO, "url": VOICE_URL, "colour": "red"}, "colour: not an argument"),
    ({"to": TO, "url": VOICE_URL, "at": "tomorrow"}, "at: "),
    ({"to": TO, "url": VOICE_URL, "max_attempts": 0}, "max_attempts: "),
    ({"to": TO, "from_": "nope", "url": VOICE_URL}, "from_: "),
])
def test_one_call_is_refused_by_its_field_alone(
        engine_ctx: Context, broker: InMemoryBroker, call: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        enqueue(engine_ctx, [call], batch=False)
    assert str(excinfo.value).startswith(message), str(excinfo.value)
    with pytest.raises(ValueError) as excinfo:
        enqueue(engine_ctx, [{"to": TO, "url": VOICE_URL}, call])
    assert str(excinfo.value).startswith("calls[1]." + message), str(excinfo.value)
    assert find_jobs(engine_ctx) == [] and broker.drain() == []


def test_a_number_on_the_do_not_call_list_refuses_the_whole_batch(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    add_do_not_call(engine_ctx, [OTHER])
    with pytest.raises(ValueError, match=r"^calls\[2\]\.to: \+14155550177 is on the do-not"):
        enqueue(engine_ctx, [{"to": TO, "url": VOICE_URL}] * 2 + [{"to": OTHER,
                                                                  "url": VOICE_URL}])
    with pytest.raises(ValueError, match=r"^to: \+14155550177 is on the do-not"):
        enqueue(engine_ctx, [{"to": OTHER, "url": VOICE_URL}], batch=False)
    assert find_jobs(engine_ctx) == [] and broker.drain() == []


def test_a_number_listed_after_its_first_call_is_refused_from_then_on(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    first = enqueue_call(engine_ctx, OTHER, url=VOICE_URL)
    add_do_not_call(engine_ctx, [OTHER])
    with pytest.raises(ValueError, match=r"^to: \+14155550177 is on the do-not-call list$"):
        enqueue_call(engine_ctx, OTHER, url=VOICE_URL)
    assert [job.id for job in find_jobs(engine_ctx)] == [first] and broker.drain() == [first]


def test_a_listed_number_is_refused_even_when_its_key_names_a_stored_job(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    call = {"to": TO, "url": VOICE_URL, "idempotency_key": "k1"}
    first = enqueue_call(engine_ctx, **call)
    add_do_not_call(engine_ctx, [TO])
    with pytest.raises(ValueError, match=r"^to: \+14155550123 is on the do-not-call list$"):
        enqueue_call(engine_ctx, **call)
    assert [job.id for job in find_jobs(engine_ctx)] == [first] and broker.drain() == [first]


def test_a_reused_key_names_the_item(engine_ctx: Context) -> None:
    enqueue_call(engine_ctx, TO, url=VOICE_URL, idempotency_key="k1")
    changed = {"to": OTHER, "url": VOICE_URL, "idempotency_key": "k1"}
    with pytest.raises(IdempotencyConflict, match=r"^calls\[1\]\.idempotency_key: 'k1'"):
        enqueue(engine_ctx, [{"to": TO, "url": VOICE_URL}, changed])
    with pytest.raises(IdempotencyConflict, match=r"^idempotency_key: 'k1'"):
        enqueue(engine_ctx, [changed], batch=False)
    assert len(find_jobs(engine_ctx)) == 1


@pytest.mark.parametrize(("calls", "batch", "message"), [
    (["+14155550123"], True, "calls[0]: a mapping"),
    (["+14155550123"], False, "calls: a mapping"),
    ([], False, "calls: one call is expected"),
    ([{"to": TO, "url": VOICE_URL}] * 2, False, "calls: one call is expected"),
])
def test_the_shape_of_the_calls_is_checked(engine_ctx: Context, calls: list[Any], batch: bool,
                                           message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        enqueue(engine_ctx, calls, batch=batch)
    assert str(excinfo.value).startswith(message), str(excinfo.value)
    assert find_jobs(engine_ctx) == []


def test_an_empty_batch_stores_nothing(engine_ctx: Context, broker: InMemoryBroker) -> None:
    assert enqueue(engine_ctx, []) == [] and enqueue(engine_ctx, iter([])) == []
    assert broker.drain() == []


def test_a_number_is_looked_up_normalised(engine_ctx: Context) -> None:
    assert not is_on_do_not_call(engine_ctx, TO)
    add_do_not_call(engine_ctx, ["+1 (415) 555-0123"])
    assert is_on_do_not_call(engine_ctx, TO)
    assert is_on_do_not_call(engine_ctx, " +1 415 555 0123 ")
    assert not is_on_do_not_call(engine_ctx, OTHER)
    remove_do_not_call(engine_ctx, [TO])
    assert not is_on_do_not_call(engine_ctx, TO)


@pytest.mark.parametrize("number", ["12345", "", None, "sip:nohost"])
def test_a_bad_number_names_the_field(engine_ctx: Context, number: object) -> None:
    with pytest.raises(ValueError, match=r"^number: "):
        is_on_do_not_call(engine_ctx, number)  # type: ignore[arg-type]
