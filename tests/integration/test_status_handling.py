"""handle_status against a real database: Twilio's documented callback bodies, duplicates,
reordering, late reports, unknown calls, and the retry decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from harness.stack import VOICE_URL
from tests.data import STATUS_CALLBACKS
from tests.support.jobs import dialing_job as claimed_job
from worker.domain.clock import utcnow
from worker.engine.context import Context
from worker.engine.dialing import claim, record_created
from worker.engine.status import UnknownCall, handle_status
from worker.producer.jobs import enqueue_call, get_job
from worker.store.models import Event, Job

BODIES = json.loads(STATUS_CALLBACKS.read_text())
SID = BODIES["answered_call_sequence"][0]["CallSid"]


def dialing_job(ctx: Context, **kwargs: Any) -> str:
    return claimed_job(ctx, BODIES["answered_call_sequence"][0]["To"], SID, **kwargs)


def events(ctx: Context, call_sid: str = SID) -> list[Event]:
    with ctx.database.session() as session:
        return session.scalars(select(Event).where(Event.call_sid == call_sid)
                               .order_by(Event.sequence_number)).all()


def job(ctx: Context, job_id: str) -> Job:
    found = get_job(ctx, job_id)
    assert found is not None
    return found


def test_answered_sequence_completes_the_job(producer_env, ctx):
    job_id = dialing_job(ctx)
    for body in BODIES["answered_call_sequence"]:
        assert handle_status(ctx, body, "token-" + body["SequenceNumber"]) == "stored"
    done = job(ctx, job_id)
    attempt = done.attempt_rows[0]
    assert (done.status, done.outcome) == ("completed", "completed")
    last = BODIES["answered_call_sequence"][-1]
    assert attempt.status == "completed"
    assert attempt.duration == int(last["CallDuration"])
    assert attempt.sip_response_code == int(last["SipResponseCode"])
    assert attempt.last_sequence == 3 and attempt.ended_at is not None
    assert [e.call_status for e in events(ctx)] == ["initiated", "ringing", "in-progress",
                                                    "completed"]
    assert events(ctx)[0].payload == BODIES["answered_call_sequence"][0]


@pytest.mark.parametrize("name", [k for k in BODIES if not k.startswith("_")
                                  and k != "answered_call_sequence"])
def test_every_documented_body_is_accepted(producer_env, ctx, name):
    job_id = dialing_job(ctx, max_attempts=1)
    assert handle_status(ctx, BODIES[name]) == "stored"
    attempt = job(ctx, job_id).attempt_rows[0]
    assert attempt.status == BODIES[name]["CallStatus"]
    expected_job = {"completed": "completed", "canceled": "canceled", "in-progress": "dialing"}
    assert job(ctx, job_id).status == expected_job.get(BODIES[name]["CallStatus"], "failed")
    if "RecordingSid" in BODIES[name]:
        assert attempt.recording_sid == BODIES[name]["RecordingSid"]
        assert attempt.recording_url == BODIES[name]["RecordingUrl"]
        assert attempt.recording_duration == int(BODIES[name]["RecordingDuration"])
    if "AnsweredBy" in BODIES[name]:
        assert attempt.answered_by == BODIES[name]["AnsweredBy"]


def test_busy_with_attempts_left_is_rescheduled_after_the_delay(producer_env, ctx):
    job_id = dialing_job(ctx, retry_delays=[300, 900], max_attempts=3)
    before = utcnow()
    handle_status(ctx, BODIES["busy"])
    rescheduled = job(ctx, job_id)
    assert (rescheduled.status, rescheduled.outcome) == ("scheduled", "busy")
    delay = rescheduled.next_attempt_at - before
    assert timedelta(seconds=300) <= delay <= timedelta(seconds=300 * 1.1 + 5)


def test_outcome_not_in_retry_on_fails_the_job(producer_env, ctx):
    job_id = dialing_job(ctx, retry_on=["busy"], max_attempts=3)
    handle_status(ctx, BODIES["no_answer"])
    assert (job(ctx, job_id).status, job(ctx, job_id).outcome) == ("failed", "no-answer")


def test_duplicates_and_late_reports_change_nothing(producer_env, ctx):
    job_id = dialing_job(ctx)
    sequence = BODIES["answered_call_sequence"]
    for body in [sequence[3], sequence[1], sequence[3], sequence[0], sequence[2], sequence[1]]:
        handle_status(ctx, body)
    assert handle_status(ctx, sequence[3]) == "duplicate"
    done = job(ctx, job_id)
    assert done.status == "completed" and done.attempt_rows[0].status == "completed"
    assert len(events(ctx)) == 4  # one row per sequence number


def test_unknown_call_sid_is_stored_and_touches_no_job(producer_env, ctx):
    job_id = dialing_job(ctx)
    stray = dict(BODIES["busy"], CallSid="CA" + "0" * 32)
    with pytest.raises(UnknownCall):
        handle_status(ctx, stray)
    assert [e.attempt_id for e in events(ctx, stray["CallSid"])] == [None]
    assert job(ctx, job_id).status == "dialing"
    with ctx.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1


def test_callback_before_the_create_answer_is_applied_when_the_sid_is_recorded(
        producer_env, ctx):
    """A callback can overtake calls.create's response; recording the sid adopts it."""

    job_id = enqueue_call(ctx, "+14155550123", url=VOICE_URL, max_attempts=1)
    claimed = claim(ctx, job_id)
    assert claimed is not None
    with pytest.raises(UnknownCall):
        handle_status(ctx, BODIES["no_answer"])

    class Created:  # the two fields record_created reads from twilio's CallInstance
        sid = SID
        status = "queued"

    record_created(ctx, claimed, Created())
    done = job(ctx, job_id)
    assert (done.status, done.attempt_rows[0].status) == ("failed", "no-answer")
