"""Result notifications, in-process: one event per final job on every path that ends a job,
signed as Standard Webhooks specifies (checked with the reference library), delivered by a
claim that two workers cannot both win, retried on a schedule, and given up after it."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy import event as sql_event
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from time_machine import TimeMachineFixture
from twilio.base.exceptions import TwilioRestException

from tests.unit.standins import (
    TO,
    VOICE_URL,
    FakeTwilio,
    InMemoryBroker,
    RecordingNotifier,
)
from worker.domain.clock import utcnow
from worker.domain.notifications import RETRY_DELAYS_S, RETRY_JITTER, retry_delay, signature
from worker.engine import notifications
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.engine.dispatch import dispatch_due
from worker.engine.reconcile import decide_stranded
from worker.engine.status import handle_status
from worker.producer import api_keys
from worker.producer.api_keys import create_api_key
from worker.producer.campaigns import cancel_campaign, create_campaign
from worker.producer.dnc import add_do_not_call
from worker.producer.jobs import cancel_job, enqueue, enqueue_call
from worker.producer.notifications import job_notifications, retry_notifications
from worker.settings import Settings, SettingsError
from worker.store.database import Database
from worker.store.models import Job, Notification, NotificationAttempt

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HOOK = "https://producer.example.com/hooks/dialer"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"DIALER_NOTIFY_SECRET": SECRET}


def events(ctx: Context, job_id: str | None = None) -> list[Notification]:
    with ctx.database.session() as session:
        query = select(Notification).order_by(Notification.created_at, Notification.id)
        if job_id is not None:
            query = query.where(Notification.job_id == job_id)
        return list(session.scalars(query))


def dial_one(ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> str:
    dial(ctx, broker.take())
    return list(twilio.calls)[-1]


def deliver_all(ctx: Context, broker: InMemoryBroker) -> list[str]:
    return [outcome for _ in range(len(broker.notifications))
            for outcome in notifications.deliver_many(ctx, [broker.notifications.popleft()])]


# --- events: once per final job, on every path -------------------------------------------

def test_completed_job_gets_one_finished_event_published_after_commit(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK,
                          idempotency_key="order-7", metadata={"order": 7})
    call_sid = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(call_sid, "in-progress"))
    params = twilio.report(call_sid, "completed", CallDuration="12")
    handle_status(engine_ctx, params)
    handle_status(engine_ctx, params)  # a repeated callback makes no second event

    (event,) = events(engine_ctx, job_id)
    assert list(broker.notifications) == [event.id]
    assert (event.type, event.url, event.status) == ("call.finished", HOOK, "pending")
    payload = event.payload
    assert (payload["id"], payload["type"]) == (event.id, "call.finished")
    data = payload["data"]
    assert {k: data[k] for k in ("job_id", "idempotency_key", "status", "outcome", "to",
                                 "campaign_id", "metadata", "error_code")} == {
        "job_id": job_id, "idempotency_key": "order-7", "status": "completed",
        "outcome": "completed", "to": TO, "campaign_id": None, "metadata": {"order": 7},
        "error_code": None}
    (attempt,) = data["attempts"]
    assert (attempt["ordinal"], attempt["call_sid"], attempt["status"],
            attempt["duration"]) == (1, call_sid, "completed", 12)


def test_a_job_without_notify_url_makes_no_event(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    enqueue_call(engine_ctx, TO, url=VOICE_URL)
    call_sid = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(call_sid, "completed"))
    assert events(engine_ctx) == []
    assert not broker.notifications


def test_each_attempt_busy_then_answered(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK,
                          notify_each_attempt=True, retry_delays=[60])
    first = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(first, "busy"))
    time_machine.shift(timedelta(seconds=120))
    dispatch_due(engine_ctx)
    second = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(second, "completed", CallDuration="5"))

    made = events(engine_ctx, job_id)
    assert [(e.type, e.payload["data"]["status"]) for e in made] == [
        ("call.attempt_ended", "scheduled"), ("call.attempt_ended", "completed"),
        ("call.finished", "completed")]
    assert [e.payload["data"]["attempt"]["status"] for e in made[:2]] == ["busy", "completed"]
    assert [a["status"] for a in made[2].payload["data"]["attempts"]] == ["busy", "completed"]


def test_each_attempt_events_for_a_refused_create_and_a_call_ended_by_cancel(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    twilio.fail(TO, TwilioRestException(status=400, uri="/Calls", msg="bad", code=21217))
    refused = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK,
                           notify_each_attempt=True)
    dial(engine_ctx, broker.take())
    assert [(e.type, e.payload["data"]["status"]) for e in events(engine_ctx, refused)] == [
        ("call.attempt_ended", "failed"), ("call.finished", "failed")]

    canceled = enqueue_call(engine_ctx, "+14155550177", url=VOICE_URL, notify_url=HOOK,
                            notify_each_attempt=True)
    call_sid = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(call_sid, "ringing"))
    cancel_job(engine_ctx, canceled)
    handle_status(engine_ctx, twilio.report(call_sid, "canceled"))
    made = events(engine_ctx, canceled)
    assert [(e.type, e.payload["data"]["status"]) for e in made] == [
        ("call.finished", "canceled"), ("call.attempt_ended", "canceled")]
    assert made[1].payload["data"]["attempt"]["status"] == "canceled"
    handle_status(engine_ctx, twilio.report(call_sid, "canceled"))  # a repeat: no new event
    assert len(events(engine_ctx, canceled)) == 2


def test_rejected_create_fails_the_job_with_an_event(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio) -> None:
    twilio.fail(TO, TwilioRestException(status=400, uri="/Calls", msg="bad", code=21217))
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    dial(engine_ctx, broker.take())
    (event,) = events(engine_ctx, job_id)
    assert (event.payload["data"]["status"], event.payload["data"]["error_code"]) == (
        "failed", 21217)
    assert list(broker.notifications) == [event.id]


def test_do_not_call_after_enqueue_fails_the_job_with_an_event(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    add_do_not_call(engine_ctx, [TO])
    dial(engine_ctx, broker.take())
    (event,) = events(engine_ctx, job_id)
    assert event.payload["data"]["outcome"] == "do-not-call"


def test_cancel_makes_one_event(engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    assert cancel_job(engine_ctx, job_id).canceled
    assert not cancel_job(engine_ctx, job_id).canceled
    (event,) = events(engine_ctx, job_id)
    assert event.payload["data"]["status"] == "canceled"
    assert list(broker.notifications) == [event.id]


def test_campaign_default_and_bulk_cancel(engine_ctx: Context, broker: InMemoryBroker) -> None:
    result = create_campaign(engine_ctx, "spring", contacts=[
        {"to": "+14155550101"}, {"to": "+14155550102"}], url=VOICE_URL, notify_url=HOOK)
    assert result.campaign_id is not None
    cancel_campaign(engine_ctx, result.campaign_id)
    made = events(engine_ctx)
    assert sorted(e.payload["data"]["to"] for e in made) == ["+14155550101", "+14155550102"]
    assert {(e.url, e.payload["data"]["campaign_id"]) for e in made} == {
        (HOOK, result.campaign_id)}
    assert sorted(broker.notifications) == sorted(e.id for e in made)


def test_outside_window_failure_makes_an_event(engine_ctx: Context) -> None:
    result = create_campaign(engine_ctx, "narrow", contacts=[{"to": TO}], url=VOICE_URL,
                             window="09:00-10:00", notify_url=HOOK)
    with engine_ctx.database.session() as session:
        # Zones 25 hours apart: a one-hour window is never open in both at once.
        session.execute(update(Job).values(timezones=["Pacific/Kiritimati",
                                                      "Pacific/Pago_Pago"]))
    dispatch_due(engine_ctx)
    (event,) = events(engine_ctx)
    assert (event.payload["data"]["campaign_id"], event.payload["data"]["outcome"]) == (
        result.campaign_id, "outside-window")


def test_stranded_job_decided_by_the_reconciler_makes_an_event(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    call_sid = dial_one(engine_ctx, broker, twilio)
    handle_status(engine_ctx, twilio.report(call_sid, "completed"))
    with engine_ctx.database.session() as session:  # as if the decision was lost
        session.execute(update(Job).values(status="dialing"))
        session.query(Notification).delete()
    broker.notifications.clear()
    time_machine.shift(timedelta(seconds=engine_ctx.settings.reconcile_silence + 1))
    assert decide_stranded(engine_ctx, utcnow()) == 1
    (event,) = events(engine_ctx, job_id)
    assert list(broker.notifications) == [event.id]


# --- enqueue ---------------------------------------------------------------------------

@pytest.mark.parametrize("settings_overrides", [{}])
def test_notify_url_without_a_secret_is_refused(engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match=r"^notify_url: DIALER_NOTIFY_SECRET is not set$"):
        enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)


def test_bad_notify_url_names_the_field(engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match=r"^notify_url: "):
        enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url="ftp://x")
    with pytest.raises(ValueError, match=r"^notify_each_attempt: "):
        enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_each_attempt=True)


@pytest.mark.parametrize("settings_overrides", [
    {"DIALER_NOTIFY_SECRET": SECRET, "DIALER_NOTIFY_URL": "https://default.example.com/h"}])
def test_global_default_url(engine_ctx: Context) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)
    cancel_job(engine_ctx, job_id)
    assert [e.url for e in events(engine_ctx)] == ["https://default.example.com/h"]


def test_settings_validate_the_secret() -> None:
    base = {"DIALER_DATABASE_URL": "sqlite://"}
    with pytest.raises(SettingsError, match="DIALER_NOTIFY_SECRET"):
        Settings.from_env({**base, "DIALER_NOTIFY_SECRET": "not-a-secret"})
    with pytest.raises(SettingsError, match="DIALER_NOTIFY_SECRET"):
        Settings.from_env({**base, "DIALER_NOTIFY_URL": HOOK})
    assert Settings.from_env({**base, "DIALER_NOTIFY_SECRET": SECRET}).notify_secret == b"k" * 32


# --- delivery --------------------------------------------------------------------------

def test_delivery_is_signed_as_standard_webhooks_specifies(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    assert deliver_all(engine_ctx, broker) == ["delivered"]

    (post,) = notifier.posts
    (event,) = events(engine_ctx)
    assert post.url == HOOK
    assert post.timeout == engine_ctx.settings.notify_timeout
    assert post.headers["webhook-id"] == event.id
    assert Webhook(SECRET).verify(post.body, post.headers) == event.payload
    # The same signature by the spec's words, independently of both signers.
    expected = signature(b"k" * 32, event.id, int(post.headers["webhook-timestamp"]), post.body)
    assert post.headers["webhook-signature"] == expected
    assert event.status == "delivered" and event.delivered_at is not None
    assert event.attempts == 1 and event.last_status_code == 204


def test_events_of_an_api_keys_jobs_are_signed_with_that_keys_own_secret(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    billing, _ = create_api_key(engine_ctx, "billing")
    clinic, _ = create_api_key(engine_ctx, "clinic")
    (sent,) = enqueue(engine_ctx, [{"to": TO, "url": VOICE_URL, "notify_url": HOOK}],
                      api_key_id=billing.id)
    campaign = create_campaign(engine_ctx, "reminders", contacts=[{"to": "+14155550124"}],
                               url=VOICE_URL, notify_url=HOOK, api_key_id=clinic.id)
    cancel_job(engine_ctx, sent.job_id)
    cancel_campaign(engine_ctx, campaign.campaign_id)
    assert deliver_all(engine_ctx, broker) == ["delivered", "delivered"]

    own = {key.id: api_keys.signing_secret(engine_ctx, key.id) for key in (billing, clinic)}
    assert len({*own.values(), SECRET}) == 3
    (campaign_job,) = [e.job_id for e in events(engine_ctx) if e.job_id != sent.job_id]
    for post, key, job_id in zip(notifier.posts, (billing, clinic), (sent.job_id, campaign_job),
                                 strict=True):
        assert Webhook(own[key.id]).verify(post.body, post.headers)["data"]["job_id"] == job_id
        for other in {*own.values(), SECRET} - {own[key.id]}:
            with pytest.raises(WebhookVerificationError):
                Webhook(other).verify(post.body, post.headers)


def test_a_keys_signing_secret_needs_the_notify_secret_and_a_known_key(
        engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match=r"^key_id: no API key 'nope'$"):
        api_keys.signing_secret(engine_ctx, "nope")
    key, _ = create_api_key(engine_ctx, "billing")
    unsigned = dataclasses.replace(
        engine_ctx, settings=dataclasses.replace(engine_ctx.settings, notify_secret=None))
    with pytest.raises(ValueError, match="DIALER_NOTIFY_SECRET is not set"):
        api_keys.signing_secret(unsigned, key.id)


def test_failed_delivery_is_retried_on_the_schedule_then_given_up(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier,
        time_machine: TimeMachineFixture) -> None:
    # Frozen: a ticking clock takes the time the test runs off each wait it measures, and a
    # near-zero jitter then reads as a wait shorter than the schedule's.
    time_machine.move_to(utcnow(), tick=False)
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    notifier.answers.extend([500] * len(RETRY_DELAYS_S) + [ConnectionError("refused")])
    outcomes = deliver_all(engine_ctx, broker)
    for delay in RETRY_DELAYS_S:
        (event,) = events(engine_ctx)
        wait = (event.next_attempt_at - utcnow()).total_seconds()
        assert delay <= wait <= delay * (1 + RETRY_JITTER)
        assert notifications.relay(engine_ctx) == 0  # not due yet
        time_machine.shift(timedelta(seconds=wait + 1))
        assert notifications.relay(engine_ctx) == 1
        outcomes += deliver_all(engine_ctx, broker)
    assert outcomes == ["retry"] * len(RETRY_DELAYS_S) + ["gave_up"]
    (event,) = events(engine_ctx)
    assert (event.status, event.attempts) == ("gave_up", len(RETRY_DELAYS_S) + 1)
    assert event.last_error == "ConnectionError: refused"
    with engine_ctx.database.session() as session:
        tries = session.scalars(select(NotificationAttempt.status_code)
                                .order_by(NotificationAttempt.id)).all()
    assert tries == [500] * len(RETRY_DELAYS_S) + [None]
    # Given up, it stays given up until an operator says otherwise.
    assert notifications.relay(engine_ctx) == 0
    assert retry_notifications(engine_ctx, job_id=job_id) == 1
    assert deliver_all(engine_ctx, broker) == ["delivered"]


def test_schedule_lasts_at_least_a_day_whatever_the_jitter() -> None:
    assert sum(retry_delay(n, rand=lambda: 0.0) or 0
               for n in range(1, len(RETRY_DELAYS_S) + 1)) >= 24 * 3600
    assert retry_delay(2, rand=lambda: 0.5) == RETRY_DELAYS_S[1] * (1 + RETRY_JITTER / 2)
    assert retry_delay(len(RETRY_DELAYS_S) + 1) is None


def test_gone_gives_up_at_once(engine_ctx: Context, broker: InMemoryBroker,
                               notifier: RecordingNotifier) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    notifier.answers.append(410)
    assert deliver_all(engine_ctx, broker) == ["gave_up"]
    assert [n["status"] for n in job_notifications(engine_ctx, job_id)] == ["gave_up"]


def test_the_lease_prevents_a_second_delivery(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    (event_id,) = broker.notifications
    outcomes: list[str] = []
    # A second worker gets the same message while the first one's POST is under way.
    notifier.answers.append(204)
    original = notifier.post

    def post_while_another_delivers(*args: object, **kwargs: object) -> int:
        outcomes.extend(notifications.deliver_many(engine_ctx, [event_id]))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    notifier.post = post_while_another_delivers  # type: ignore[method-assign]
    outcomes.extend(notifications.deliver_many(engine_ctx, [event_id]))
    assert outcomes == ["skipped", "delivered"]
    assert len(notifier.posts) == 1
    assert notifications.deliver_many(engine_ctx, [event_id]) == ["skipped"]  # delivered


def test_one_message_delivers_each_of_its_events_though_one_of_them_raises(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    job_ids = [enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK) for _ in range(3)]
    for job_id in job_ids:
        cancel_job(engine_ctx, job_id)
    message = list(broker.notifications)
    original = notifier.post

    def erase_the_second_job_during_its_post(*args: object, **kwargs: object) -> int:
        if len(notifier.posts) == 1:  # its event goes with it: recording the POST fails
            with engine_ctx.database.session() as session:
                session.execute(delete(Job).where(Job.id == job_ids[1]))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    notifier.post = erase_the_second_job_during_its_post  # type: ignore[method-assign]
    assert notifications.deliver_many(engine_ctx, message) == ["delivered", "error",
                                                               "delivered"]
    assert [json.loads(p.body)["data"]["job_id"] for p in notifier.posts] == job_ids
    assert [(e.job_id, e.status, e.attempts) for e in events(engine_ctx)] == [
        (job_ids[0], "delivered", 1), (job_ids[2], "delivered", 1)]


def test_recording_a_delivery_sets_only_the_columns_its_outcome_changes(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    job_ids = [enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK) for _ in range(3)]
    for job_id in job_ids:
        cancel_job(engine_ctx, job_id)
    notifier.answers.extend([200, 500, 410])
    updates: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE notifications SET"):
            updates.append(statement.split(" WHERE ")[0])

    sql_event.listen(engine_ctx.database.engine, "before_cursor_execute", seen)
    try:
        assert notifications.deliver_many(engine_ctx, list(broker.notifications)) == [
            "delivered", "retry", "gave_up"]
    finally:
        sql_event.remove(engine_ctx.database.engine, "before_cursor_execute", seen)
    recorded = [u for u in updates if "attempts=" in u]
    assert len(recorded) == 3
    assert not [u for u in recorded if "job_id" in u]


def test_a_messages_claim_holds_its_events_for_each_of_their_posts(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow(), tick=False)
    job_ids = [enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK) for _ in range(3)]
    for job_id in job_ids:
        cancel_job(engine_ctx, job_id)
    message = list(broker.notifications)
    leases: list[set[timedelta]] = []
    others: list[list[str]] = []
    original = notifier.post

    def note_the_leases(*args: object, **kwargs: object) -> int:
        leases.append({e.next_attempt_at - utcnow() for e in events(engine_ctx)})
        # Another worker given the same message meanwhile finds every event taken.
        others.append(notifications.deliver_many(engine_ctx, message))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    notifier.post = note_the_leases  # type: ignore[method-assign]
    assert notifications.deliver_many(engine_ctx, message) == ["delivered"] * 3
    whole = timedelta(seconds=3 * notifications.lease_s(engine_ctx))
    assert leases == [{whole}] * 3
    assert others == [["skipped"] * 3] * 3
    assert len(notifier.posts) == 3


def test_relay_publishes_what_the_fast_path_missed_once_per_lease(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    broker.fail_next()
    cancel_job(engine_ctx, job_id)
    assert not broker.notifications
    assert notifications.relay(engine_ctx) == 1
    assert notifications.relay(engine_ctx) == 0  # its message holds it
    assert deliver_all(engine_ctx, broker) == ["delivered"]
    with engine_ctx.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1


def test_relay_publishes_a_lost_event_while_the_queue_holds_others(
        engine_ctx: Context, broker: InMemoryBroker,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    broker.notifications.extend(f"msg_unrelated_{n}" for n in range(50))
    lost = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, lost)
    # Its publisher died after commit: the message never reached the queue.
    (event_id,) = [e.id for e in events(engine_ctx, lost)]
    broker.notifications.remove(event_id)
    leased = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, leased)  # its message is in the queue, a moment ago
    assert notifications.relay(engine_ctx) == 0  # both still leased by their publish
    time_machine.shift(notifications.RELAY_LEASE + timedelta(seconds=1))
    fresh = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, fresh)  # published a moment ago: not again
    before = list(broker.notifications)
    assert notifications.relay(engine_ctx) == 2
    relayed = list(broker.notifications)[len(before):]
    assert sorted(relayed) == sorted(e.id for e in events(engine_ctx)
                                     if e.job_id in (lost, leased))
    assert notifications.relay(engine_ctx) == 0  # relayed a moment ago: not again


def test_a_refused_publish_raises_nothing_when_the_leases_cannot_be_given_back(
        engine_ctx: Context, broker: InMemoryBroker, tmp_path: Path) -> None:
    # It runs after its transaction committed: the caller must not see that work fail.
    unreachable = dataclasses.replace(
        engine_ctx, database=Database(f"sqlite:///{tmp_path / 'missing' / 'dialer.db'}"))
    broker.fail_next()
    notifications.publish(unreachable, ["msg_" + "0" * 32])
    assert not broker.notifications


def test_two_relays_never_publish_one_event_twice_within_a_lease(
        engine_ctx: Context, broker: InMemoryBroker) -> None:
    job_ids = [enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK) for _ in range(3)]
    for job_id in job_ids:
        broker.fail_next()
        cancel_job(engine_ctx, job_id)
    assert not broker.notifications
    # A second relay runs while the first is between its UPDATE and its publish.
    second: list[int] = []
    original = broker.publish_notifications

    def publish_after_another_relay(ids: list[str]) -> None:
        second.append(notifications.relay(engine_ctx))
        original(ids)

    broker.publish_notifications = publish_after_another_relay  # type: ignore[method-assign]
    assert notifications.relay(engine_ctx) == 3
    assert second == [0]
    assert sorted(broker.notifications) == sorted(e.id for e in events(engine_ctx))


def test_a_delivery_that_fails_is_relayed_when_its_retry_is_due_not_a_lease_later(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier,
        time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(utcnow())
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    notifier.answers.append(503)
    assert deliver_all(engine_ctx, broker) == ["retry"]
    (event,) = events(engine_ctx)
    assert event.next_attempt_at - utcnow() < notifications.RELAY_LEASE
    time_machine.move_to(event.next_attempt_at + timedelta(seconds=1))
    assert notifications.relay(engine_ctx) == 1


def test_job_notifications_list_deliveries(
        engine_ctx: Context, broker: InMemoryBroker, notifier: RecordingNotifier) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL, notify_url=HOOK)
    cancel_job(engine_ctx, job_id)
    notifier.answers.append(503)
    deliver_all(engine_ctx, broker)
    (listed,) = job_notifications(engine_ctx, job_id)
    assert (listed["status"], listed["attempts"], listed["last_status_code"]) == (
        "pending", 1, 503)
    assert [d["status_code"] for d in listed["deliveries"]] == [503]
    assert listed["next_attempt_at"] is not None
    assert json.dumps(listed)  # plain data, for the CLI's --json


def test_retry_needs_a_job_or_all() -> None:
    with pytest.raises(ValueError, match=r"^job_id: "):
        retry_notifications(None, job_id=None)  # type: ignore[arg-type]
