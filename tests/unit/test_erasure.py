"""Erasing a number: gone from every table, its jobs still counted; waiting jobs canceled,
live calls ended and their late callbacks stored without numbers; bad input changes
nothing."""

from __future__ import annotations

import base64
import csv
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.support.privacy import columns_holding
from tests.unit.standins import VOICE_URL, FakeTwilio, InMemoryBroker
from worker.cli import main
from worker.domain.privacy import REDACTED
from worker.engine.context import Context
from worker.engine.dialing import dial
from worker.engine.status import handle_status
from worker.producer.campaigns import campaign_status, create_campaign, write_export
from worker.producer.dnc import list_do_not_call
from worker.producer.erasure import erase_number
from worker.producer.jobs import enqueue_call, get_job
from worker.store.models import Event, Job, Notification

NUMBER = "+14155550123"
OTHER = "+14155550124"
HOOK = "https://producer.example.com/hooks/calls"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"DIALER_NOTIFY_SECRET": SECRET}


def call_through(ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio, job_id: str,
                 *statuses: str) -> str:
    """Dial the job and send its status callbacks, as Twilio would; its CallSid."""
    assert job_id in broker.drain()
    dial(ctx, job_id)
    call_sid = next(sid for sid, call in twilio.calls.items()
                    if call.to == get_job(ctx, job_id).to and call.status == "queued")
    for status in statuses:
        handle_status(ctx, twilio.report(call_sid, status, Called=twilio.calls[call_sid].to,
                                         Caller=twilio.calls[call_sid]._from, ToCity="SF",
                                         ToZip="94105"))
    return call_sid


def test_an_erased_number_is_in_no_table_and_its_jobs_still_count(
        engine_ctx: Context, broker: InMemoryBroker, twilio: FakeTwilio):
    answered = enqueue_call(engine_ctx, NUMBER, url=f"{VOICE_URL}?for={NUMBER}",
                            notify_url=HOOK, metadata={"name": "Ann", "phone": NUMBER},
                            idempotency_key=f"reminder-{NUMBER}")
    call_through(engine_ctx, broker, twilio, answered, "ringing", "in-progress", "completed")
    live = enqueue_call(engine_ctx, NUMBER, url=VOICE_URL, notify_url=HOOK)
    live_sid = call_through(engine_ctx, broker, twilio, live, "ringing")
    waiting = enqueue_call(engine_ctx, NUMBER, url=VOICE_URL, notify_url=HOOK,
                           at="2099-01-01T00:00:00+00:00")
    other = enqueue_call(engine_ctx, OTHER, url=VOICE_URL, metadata={"spouse": NUMBER})
    call_through(engine_ctx, broker, twilio, other, "busy")
    campaign = create_campaign(engine_ctx, f"callback {NUMBER}", url=VOICE_URL, contacts=[
        {"to": NUMBER, "plan": "gold"}, {"to": "+14155550125", "alt_phone": NUMBER}])
    # Before: the number is everywhere a job, a callback or a notification keeps it.
    assert set(columns_holding(engine_ctx.database, NUMBER)) >= {
        "jobs.to", "jobs.metadata", "jobs.url", "jobs.idempotency_key", "events.payload",
        "notifications.payload", "campaigns.name"}

    result = erase_number(engine_ctx, ["+1 (415) 555-0123"])

    assert result == {"numbers": 1, "jobs": 4, "canceled": 2, "live_calls_ended": 1,
                      "events": 4, "notifications": 3, "other_mentions": 3,
                      "do_not_call_added": 0, "jobs_left": 0}
    assert twilio.ended == [(live_sid, "canceled")]
    # Twilio's callback for the call the erasure ended comes after it: stored, no number.
    handle_status(engine_ctx, twilio.report(live_sid, "canceled", Called=NUMBER))
    assert columns_holding(engine_ctx.database, NUMBER) == []
    assert get_job(engine_ctx, other).to == OTHER
    assert "jobs.to" in columns_holding(engine_ctx.database, OTHER)
    stored = {job_id: get_job(engine_ctx, job_id) for job_id in (answered, live, waiting)}
    assert [(j.to, j.status, j.outcome) for j in stored.values()] == [
        (REDACTED, "completed", "completed"), (REDACTED, "canceled", "canceled"),
        (REDACTED, "canceled", "canceled")]
    assert stored[answered].metadata_ == {"name": REDACTED, "phone": REDACTED}
    assert stored[answered].idempotency_key is None
    with engine_ctx.database.session() as session:
        payloads = session.scalars(select(Event.payload)).all()
        notes = session.scalars(select(Notification.payload)
                                .where(Notification.job_id == answered)).all()
    # Only the other number's callback keeps its To (and its place).
    assert len(payloads) == 6 and [p["To"] for p in payloads if "To" in p] == [OTHER]
    assert len([p for p in payloads if "ToCity" in p]) == 1
    assert {p["CallStatus"] for p in payloads} >= {"ringing", "completed", "busy", "canceled"}
    assert [n["data"]["to"] for n in notes] == [REDACTED]
    # The campaign's totals and its export still add up, the number gone from both.
    status = campaign_status(engine_ctx, campaign.campaign_id)
    assert (status["jobs"], status["by_state"]) == (2, {"canceled": 1, "scheduled": 1})
    out = io.StringIO()
    assert write_export(engine_ctx, campaign.campaign_id, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    by_state = {r["state"]: r for r in rows}  # one import's rows share created_at
    assert {(r["to"], state) for state, r in by_state.items()} == {
        (REDACTED, "canceled"), ("+14155550125", "scheduled")}
    assert by_state["scheduled"]["contact.alt_phone"] == REDACTED
    assert NUMBER not in out.getvalue()
    # Again: nothing more to do, nothing fails.
    again = erase_number(engine_ctx, NUMBER)
    assert (again["jobs"], again["canceled"], again["other_mentions"]) == (0, 0, 0)


def test_do_not_call_lists_the_number_and_nothing_else_keeps_it(engine_ctx: Context):
    enqueue_call(engine_ctx, NUMBER, url=VOICE_URL)
    result = erase_number(engine_ctx, [NUMBER, OTHER], do_not_call=True)
    assert (result["numbers"], result["canceled"], result["do_not_call_added"]) == (2, 1, 2)
    assert list_do_not_call(engine_ctx) == [NUMBER, OTHER]
    assert columns_holding(engine_ctx.database, NUMBER) == ["do_not_call.number"]
    with pytest.raises(ValueError, match="on the do-not-call list"):
        enqueue_call(engine_ctx, NUMBER, url=VOICE_URL)


@pytest.mark.parametrize(("numbers", "do_not_call", "field"), [
    ([NUMBER, "12345"], False, "numbers:"),
    ([], False, "numbers:"),
    (None, False, "numbers:"),
    ([NUMBER], "yes", "do_not_call:"),
])
def test_bad_input_names_the_field_and_changes_nothing(engine_ctx: Context, numbers: object,
                                                       do_not_call: object, field: str):
    job_id = enqueue_call(engine_ctx, NUMBER, url=VOICE_URL)
    with pytest.raises(ValueError, match=f"^{field}"):
        erase_number(engine_ctx, numbers, do_not_call=do_not_call)  # type: ignore[arg-type]
    job = get_job(engine_ctx, job_id)
    assert (job.to, job.status) == (NUMBER, "queued")
    assert list_do_not_call(engine_ctx) == []


def test_the_cli_erases_and_fails_in_one_line(engine_ctx: Context,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("worker.api.default_context", lambda: engine_ctx)
    enqueue_call(engine_ctx, NUMBER, url=VOICE_URL)
    runner = CliRunner()
    done = runner.invoke(main, ["erase", NUMBER, "--do-not-call", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["canceled"] == 1
    assert list_do_not_call(engine_ctx) == [NUMBER]
    bad = runner.invoke(main, ["erase", NUMBER, "not-a-number"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines() == [bad.output.strip()]
    assert "numbers: " in bad.output
    with engine_ctx.database.session() as session:
        assert session.scalar(select(Job.to)) == REDACTED
