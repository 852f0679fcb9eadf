"""DIALER_RETENTION_DAYS: final jobs older than it lose their numbers and contact details,
in batches, each job on its own; recent and unfinished jobs, and every count, stay."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from time_machine import TimeMachineFixture

from tests.support.privacy import columns_holding
from tests.unit.standins import VOICE_URL, FakeTwilio, InMemoryBroker
from worker.adapters.broker import create_celery
from worker.domain.clock import utcnow
from worker.domain.names import APPLY_RETENTION_TASK
from worker.domain.privacy import REDACTED
from worker.engine import metrics, retention
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.engine.status import handle_status
from worker.producer.campaigns import campaign_status, create_campaign
from worker.producer.jobs import cancel_job, enqueue_call, get_job
from worker.settings import Settings, SettingsError
from worker.store.models import Attempt, Event, Notification

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HOOK = "https://producer.example.com/hooks/calls"
DAYS = 30


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"DIALER_NOTIFY_SECRET": SECRET, "DIALER_RETENTION_DAYS": str(DAYS)}


def completed(ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio, to: str) -> str:
    job_id = enqueue_call(ctx, to, url=VOICE_URL, notify_url=HOOK, metadata={"name": "Ann"})
    broker.drain()
    dial(ctx, job_id)
    (call_sid,) = [sid for sid, call in twilio.calls.items() if call.to == to]
    for status in ("ringing", "in-progress", "completed"):
        handle_status(ctx, twilio.report(call_sid, status, Called=to, ToCity="SF"))
    return job_id


def test_old_final_jobs_lose_their_numbers_and_nothing_else_does(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(retention, "BATCH", 2)  # several batches with a handful of jobs
    start = utcnow()
    time_machine.move_to(start - timedelta(days=DAYS + 1), tick=False)
    old = [completed(engine_ctx, broker, twilio, f"+1415555011{i}") for i in range(3)]
    canceled = enqueue_call(engine_ctx, "+14155550120", url=VOICE_URL,
                            at=start + timedelta(days=1))
    cancel_job(engine_ctx, canceled)
    waiting = enqueue_call(engine_ctx, "+14155550121", url=VOICE_URL,
                           at=start + timedelta(days=1))
    campaign = create_campaign(engine_ctx, "old", url=VOICE_URL,
                               contacts=[{"to": "+14155550122", "plan": "gold"}])
    orphan = twilio.report(next(iter(twilio.calls)), "completed") | {"CallSid": "CA" + "0" * 32}
    handle_status_orphan(engine_ctx, orphan)
    time_machine.move_to(start - timedelta(days=DAYS - 1), tick=False)
    recent = completed(engine_ctx, broker, twilio, "+14155550130")
    time_machine.move_to(start, tick=False)
    before = campaign_status(engine_ctx, campaign.campaign_id)

    result = retention.apply_retention(engine_ctx)

    assert result == {"jobs": 4, "events": 9, "notifications": 3, "orphan_events": 1,
                      "skipped": 0}
    for number in ("+14155550110", "+14155550111", "+14155550112", "+14155550120"):
        assert columns_holding(engine_ctx.database, number) == [], number
    job = get_job(engine_ctx, old[0])
    assert (job.to, job.status, job.outcome, job.attempts) == (
        REDACTED, "completed", "completed", 1)
    assert job.metadata_ == {"name": REDACTED}
    assert job.updated_at < start - timedelta(days=DAYS)
    # Recent, and not final however old: left as they are.
    assert get_job(engine_ctx, recent).to == "+14155550130"
    assert get_job(engine_ctx, waiting).to == "+14155550121"
    assert "jobs.metadata" in columns_holding(engine_ctx.database, "gold")
    assert campaign_status(engine_ctx, campaign.campaign_id)["by_state"] == before["by_state"]
    with engine_ctx.database.session() as session:
        kept = session.execute(select(Event.call_status, Event.sequence_number, Event.payload)
                               .where(Event.payload.is_not(None))).all()
        assert session.scalar(select(func.count()).select_from(Notification)) == 4
    assert {(s, p["CallStatus"], p["SequenceNumber"]) for s, _, p in kept} >= {
        ("ringing", "ringing", "0"), ("completed", "completed", "2")}
    # Idempotent: a second run finds nothing left to do.
    assert retention.apply_retention(engine_ctx)["jobs"] == 0


def handle_status_orphan(ctx: Context, params: dict[str, str]) -> None:
    """A callback for a call no attempt holds: stored, then UnknownCall."""
    with pytest.raises(Exception, match=params["CallSid"]):
        handle_status(ctx, params)


def test_a_job_whose_redaction_raises_is_skipped_and_counted(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture):
    start = utcnow()
    time_machine.move_to(start - timedelta(days=DAYS + 1), tick=False)
    jobs = [completed(engine_ctx, broker, twilio, f"+1415555014{i}") for i in range(3)]
    # A row nothing of the dialer writes (by hand, or by an older version): a payload that
    # is no object, which no redaction can read.
    poisoned = jobs[1]
    with engine_ctx.database.session() as session:
        session.execute(update(Notification).where(Notification.job_id == poisoned)
                        .values(payload=["not", "an", "object"]))
    time_machine.move_to(start, tick=False)
    skipped = metrics.SKIPPED.labels("retention")._value.get()

    result = retention.apply_retention(engine_ctx)

    assert (result["jobs"], result["skipped"]) == (2, 1)
    assert metrics.SKIPPED.labels("retention")._value.get() == skipped + 1
    assert [get_job(engine_ctx, j).to for j in jobs] == [REDACTED, "+14155550141", REDACTED]
    # Its savepoint rolled back: its callbacks, redacted ahead of the notification that
    # raised, are whole again, not half-redacted.
    assert get_job(engine_ctx, poisoned).metadata_ == {"name": "Ann"}
    with engine_ctx.database.session() as session:
        payloads = session.scalars(select(Event.payload).join(Attempt).where(
            Attempt.job_id == poisoned)).all()
    assert [p["To"] for p in payloads] == ["+14155550141"] * 3
    assert retention.apply_retention(engine_ctx)["skipped"] == 1


@pytest.mark.parametrize("settings_overrides", [{}])
def test_unset_keeps_everything(engine_ctx: Context, broker: InMemoryBroker,
                                twilio: FakeTwilio, time_machine: TimeMachineFixture):
    start = utcnow()
    time_machine.move_to(start - timedelta(days=3650), tick=False)
    job_id = enqueue_call(engine_ctx, "+14155550150", url=VOICE_URL)
    cancel_job(engine_ctx, job_id)
    time_machine.move_to(start, tick=False)
    assert engine_ctx.settings.retention_days == 0
    assert retention.apply_retention(engine_ctx)["jobs"] == 0
    assert get_job(engine_ctx, job_id).to == "+14155550150"


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "36501"])
def test_a_bad_retention_setting_names_the_variable(value: str):
    with pytest.raises(SettingsError, match=r"^DIALER_RETENTION_DAYS"):
        Settings.from_env({"DIALER_RETENTION_DAYS": value})


def test_beat_runs_the_retention_task():
    settings = Settings.from_env({"DIALER_RETENTION_INTERVAL": "600"})
    schedule = create_celery(settings, set_as_current=False).conf.beat_schedule
    assert schedule["apply-retention"] == {"task": APPLY_RETENTION_TASK, "schedule": 600.0}
