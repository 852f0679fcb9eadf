"""A campaign told when to start and when to end, and an ETA that counts the schedule: the
producer and the dispatcher in-process with stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from time_machine import TimeMachineFixture

from tests.unit.standins import TO, VOICE_URL, FakeTwilio, InMemoryBroker
from worker.domain.statuses import EXPIRED, CampaignStatus, JobStatus
from worker.engine import metrics
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.engine.dispatch import dispatch_due
from worker.producer.campaigns import campaign_status, create_campaign, export_rows

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OTHER = "+14155550177"


@pytest.fixture
def clock(time_machine: TimeMachineFixture) -> TimeMachineFixture:
    time_machine.move_to(NOW, tick=False)
    return time_machine


def states(ctx: Context, campaign_id: str) -> dict[str, tuple[str, str]]:
    return {row["to"]: (row["state"], row["last_outcome"])
            for row in export_rows(ctx, campaign_id)}


def test_nothing_is_dialed_before_the_start(engine_ctx: Context, broker: InMemoryBroker,
                                            twilio: FakeTwilio,
                                            clock: TimeMachineFixture) -> None:
    start = NOW + timedelta(days=6, hours=-3)  # next Monday 09:00 UTC
    result = create_campaign(engine_ctx, "monday", contacts=[{"to": TO}], url=VOICE_URL,
                             start_at=start)
    assert result.campaign_id
    assert dispatch_due(engine_ctx) == 0
    status = campaign_status(engine_ctx, result.campaign_id)
    assert status["start_at"] == start.isoformat()
    assert status["eta_s"] == (start - NOW).total_seconds() + 1  # one call at 1 call/s
    clock.move_to(start, tick=False)
    assert dispatch_due(engine_ctx) == 1
    dial(engine_ctx, broker.take())
    assert [params["to"] for params in twilio.creates] == [TO]


def test_jobs_still_waiting_at_the_end_expire_and_the_campaign_is_done(
        engine_ctx: Context, broker: InMemoryBroker, clock: TimeMachineFixture) -> None:
    end = NOW + timedelta(hours=1)
    result = create_campaign(engine_ctx, "short", contacts=[{"to": TO}, {"to": OTHER}],
                             url=VOICE_URL, window="09:00-10:00", end_at=end)
    assert result.campaign_id and result.imported == 2
    assert dispatch_due(engine_ctx) == 0  # 12:00 UTC: outside the window until tomorrow
    assert campaign_status(engine_ctx, result.campaign_id)["eta_s"] == 3600  # capped by end
    clock.move_to(end, tick=False)
    dispatch_due(engine_ctx)
    assert states(engine_ctx, result.campaign_id) == {TO: (JobStatus.CANCELED, EXPIRED),
                                                      OTHER: (JobStatus.CANCELED, EXPIRED)}
    assert campaign_status(engine_ctx, result.campaign_id)["status"] == CampaignStatus.DONE


def test_a_job_claimed_as_the_campaign_ends_is_not_dialed(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        clock: TimeMachineFixture) -> None:
    end = NOW + timedelta(minutes=5)
    result = create_campaign(engine_ctx, "race", contacts=[{"to": TO}], url=VOICE_URL,
                             end_at=end)
    assert result.campaign_id and dispatch_due(engine_ctx) == 1
    clock.move_to(end, tick=False)
    dial(engine_ctx, broker.take())
    assert twilio.creates == []
    dispatch_due(engine_ctx)
    assert states(engine_ctx, result.campaign_id) == {TO: (JobStatus.CANCELED, EXPIRED)}


@pytest.mark.parametrize(("start_at", "end_at", "field"), [
    ("2099-01-01T09:00:00", None, "start_at"),
    (None, "tomorrow", "end_at"),
    (None, NOW - timedelta(minutes=1), "end_at"),
    (NOW + timedelta(days=2), NOW + timedelta(days=1), "end_at"),
])
def test_bad_bounds_name_the_field_and_store_nothing(
        engine_ctx: Context, clock: TimeMachineFixture, start_at: object, end_at: object,
        field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        create_campaign(engine_ctx, "bad", contacts=[{"to": TO}], url=VOICE_URL,
                        start_at=start_at, end_at=end_at)  # type: ignore[arg-type]
    with engine_ctx.database.session() as session:
        assert session.execute(text("SELECT count(*) FROM campaigns")).scalar() == 0


def test_a_campaign_or_job_with_broken_stored_data_does_not_stop_the_others(
        engine_ctx: Context, broker: InMemoryBroker, clock: TimeMachineFixture) -> None:
    zones = create_campaign(engine_ctx, "zones", url=VOICE_URL, contacts=[
        {"to": TO}, {"to": OTHER}]).campaign_id
    window = create_campaign(engine_ctx, "window", url=VOICE_URL,
                             contacts=[{"to": "+14155550178"}]).campaign_id
    healthy = create_campaign(engine_ctx, "healthy", url=VOICE_URL,
                              contacts=[{"to": "+14155550179"}]).campaign_id
    # Rows no import writes (edited by hand, or by an older version).
    with engine_ctx.database.session() as session:
        session.execute(text("UPDATE jobs SET timezones = '[\"Mars/Olympus_Mons\"]' "
                             "WHERE \"to\" = :to"), {"to": OTHER})
        session.execute(text("UPDATE campaigns SET window_start = '25:99' WHERE id = :id"),
                        {"id": window})
    skipped = metrics.SKIPPED.labels("dispatch")._value.get()

    assert dispatch_due(engine_ctx) == 2

    assert sorted(broker.drain()) == sorted(
        row["job_id"] for c in (zones, healthy) for row in export_rows(engine_ctx, c)
        if row["to"] != OTHER)
    assert states(engine_ctx, zones)[OTHER] == ("failed", "unknown-timezone")
    assert states(engine_ctx, window) == {"+14155550178": ("scheduled", "")}
    assert metrics.SKIPPED.labels("dispatch")._value.get() == skipped + 2
