"""Searching jobs: every filter, newest first, pages that neither repeat nor skip a job, and
the indexes that serve the filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from time_machine import TimeMachineFixture

from tests.unit.standins import TO, VOICE_URL, InMemoryBroker
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.producer.jobs import cancel_job, enqueue_call, enqueue_calls
from worker.producer.reports import find_jobs
from worker.store.models import Job

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OTHER = "+14155550177"


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


@pytest.fixture
def clock(time_machine: TimeMachineFixture) -> Iterator[TimeMachineFixture]:
    time_machine.move_to(T0, tick=False)
    yield time_machine


def at_minute(clock: TimeMachineFixture, minute: int) -> None:
    clock.move_to(T0 + timedelta(minutes=minute), tick=False)


def test_newest_first_and_ties_by_id(engine_ctx: Context, clock: TimeMachineFixture) -> None:
    first = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    at_minute(clock, 1)
    # One batch: the same created_at for all three.
    batch = enqueue_calls(engine_ctx, [{"to": TO, "url": VOICE_URL}] * 3)
    at_minute(clock, 2)
    last = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    assert ids(find_jobs(engine_ctx)) == [last, *sorted(batch, reverse=True), first]


def test_pages_after_the_last_job_cover_everything_once(
        engine_ctx: Context, clock: TimeMachineFixture) -> None:
    for minute in range(4):
        at_minute(clock, minute)
        enqueue_calls(engine_ctx, [{"to": TO, "url": VOICE_URL}] * 3)
    everything = ids(find_jobs(engine_ctx, limit=1000))
    assert len(everything) == 12
    pages: list[list[str]] = []
    after = None
    while True:
        page = find_jobs(engine_ctx, after=after, limit=5)
        if not page:
            break
        pages.append(ids(page))
        after = (page[-1].created_at, page[-1].id)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for page in pages for i in page] == everything


def test_a_job_enqueued_while_paging_does_not_shift_the_pages(
        engine_ctx: Context, clock: TimeMachineFixture) -> None:
    older = [enqueue_call(engine_ctx, TO, url=VOICE_URL)]
    at_minute(clock, 1)
    older.append(enqueue_call(engine_ctx, TO, url=VOICE_URL))
    (first,) = find_jobs(engine_ctx, limit=1)
    at_minute(clock, 2)
    enqueue_call(engine_ctx, TO, url=VOICE_URL)
    assert ids(find_jobs(engine_ctx, after=(first.created_at, first.id))) == [older[0]]


def test_filters_by_status_campaign_and_number(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    plain = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    campaign = enqueue_call(engine_ctx, OTHER, url=VOICE_URL, campaign_id="c1")
    canceled = enqueue_call(engine_ctx, OTHER, url=VOICE_URL)
    cancel_job(engine_ctx, canceled)
    assert ids(find_jobs(engine_ctx, status="canceled")) == [canceled]
    assert set(ids(find_jobs(engine_ctx, status="queued"))) == {plain, campaign}
    assert ids(find_jobs(engine_ctx, campaign_id="c1")) == [campaign]
    assert ids(find_jobs(engine_ctx, campaign_id="c2")) == []
    assert ids(find_jobs(engine_ctx, to="+1 (415) 555-0123")) == [plain]
    assert set(ids(find_jobs(engine_ctx, to=OTHER))) == {campaign, canceled}
    assert ids(find_jobs(engine_ctx, to=OTHER, status="queued", campaign_id="c1")) == [campaign]


def test_time_bounds_include_the_after_instant_and_exclude_the_before_one(
        engine_ctx: Context, clock: TimeMachineFixture) -> None:
    made = []
    for minute in range(3):
        at_minute(clock, minute)
        made.append(enqueue_call(engine_ctx, TO, url=VOICE_URL))
    one = T0 + timedelta(minutes=1)
    assert ids(find_jobs(engine_ctx, created_after=one)) == [made[2], made[1]]
    assert ids(find_jobs(engine_ctx, created_before=one)) == [made[0]]
    assert ids(find_jobs(engine_ctx, created_after=one, created_before=one)) == []
    # Any offset names the same instant.
    one_in_paris = one.astimezone(ZoneInfo("Europe/Paris"))
    assert ids(find_jobs(engine_ctx, created_after=one_in_paris,
                         created_before=one_in_paris + timedelta(seconds=1))) == [made[1]]

    at_minute(clock, 10)
    cancel_job(engine_ctx, made[0])
    ten = T0 + timedelta(minutes=10)
    assert ids(find_jobs(engine_ctx, updated_after=ten)) == [made[0]]
    assert ids(find_jobs(engine_ctx, updated_before=ten)) == [made[2], made[1]]


def test_attempts_come_loaded(engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    dial(engine_ctx, broker.take())
    enqueue_call(engine_ctx, OTHER, url=VOICE_URL)
    found = {job.id: job for job in find_jobs(engine_ctx)}
    # Detached from its session: reading an unloaded relationship would raise here.
    assert [a.ordinal for a in found[job_id].attempt_rows] == [1]
    assert found[job_id].attempt_rows[0].call_sid is not None
    assert [a for job in found.values() if job.id != job_id for a in job.attempt_rows] == []


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": True}, "limit"),
    ({"limit": "5"}, "limit"), ({"status": "bogus"}, "status"), ({"to": "12345"}, "to"),
    ({"to": ""}, "to"), ({"created_after": datetime(2026, 12, 1)}, "created_after"),
    ({"created_before": "2026-12-01T00:00:00Z"}, "created_before"),
    ({"updated_after": datetime(2026, 12, 1)}, "updated_after"),
    ({"updated_before": 0}, "updated_before"),
    ({"after": (datetime(2026, 12, 1), "x")}, "after"), ({"after": (T0,)}, "after"),
    ({"after": (T0, 7)}, "after"), ({"after": "x"}, "after"),
])
def test_bad_input_names_the_field(engine_ctx: Context, kwargs: dict[str, Any],
                                   field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        find_jobs(engine_ctx, **kwargs)


def test_the_limit_bounds_are_accepted(engine_ctx: Context) -> None:
    enqueue_calls(engine_ctx, [{"to": TO, "url": VOICE_URL}] * 2)
    assert len(find_jobs(engine_ctx, limit=1)) == 1
    assert len(find_jobs(engine_ctx, limit=1000)) == 2


def query_plan(ctx: Context, **kwargs: Any) -> str:
    """SQLite's plan for the jobs query find_jobs sends."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM jobs" in statement:
            sent.append((statement, parameters))

    engine = ctx.database.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        find_jobs(ctx, **kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    ((statement, parameters),) = sent
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(("kwargs", "index"), [
    ({"to": TO}, "ix_jobs_to"),
    ({"status": "queued"}, "ix_jobs_status_next_attempt_at"),
    ({"campaign_id": "c1"}, "ix_jobs_campaign"),
    ({"campaign_id": "c1", "status": "queued"}, "ix_jobs_campaign_status_next"),
    # A number has the fewest jobs: its index wins over the others'.
    ({"to": TO, "status": "queued"}, "ix_jobs_to"),
    ({"to": TO, "campaign_id": "c1", "status": "queued"}, "ix_jobs_to"),
    ({"to": TO, "created_after": T0, "after": (T0, "f" * 32)}, "ix_jobs_to"),
])
def test_the_filters_are_served_by_an_index(engine_ctx: Context, kwargs: dict[str, Any],
                                            index: str) -> None:
    enqueue_calls(engine_ctx, [{"to": TO, "url": VOICE_URL}] * 3)
    plan = query_plan(engine_ctx, **kwargs)
    assert f"USING INDEX {index}" in plan, plan
    assert "SCAN jobs\n" not in plan + "\n", plan
