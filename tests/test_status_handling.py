"""handle_status against a real database: Twilio's documented callback bodies, duplicates,
reordering, late reports, unknown calls, and the retry decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.data import STATUS_CALLBACKS
from tests.support.jobs import dialing_job as claimed_job
from tests.support.stack import VOICE_URL

BODIES = json.loads(STATUS_CALLBACKS.read_text())
SID = BODIES["answered_call_sequence"][0]["CallSid"]


def dialing_job(**kwargs: Any) -> str:
    return claimed_job(BODIES["answered_call_sequence"][0]["To"], SID, **kwargs)


def events(call_sid: str = SID) -> list:
    from worker.db import session_scope
    from worker.models import Event

    with session_scope() as session:
        return session.scalars(select(Event).where(Event.call_sid == call_sid)
                               .order_by(Event.sequence_number)).all()


def job(job_id: str):
    from worker import get_job

    return get_job(job_id)


def test_answered_sequence_completes_the_job(producer_env):
    from worker.status import handle_status

    job_id = dialing_job()
    for body in BODIES["answered_call_sequence"]:
        assert handle_status(body, "token-" + body["SequenceNumber"]) == "stored"
    done = job(job_id)
    attempt = done.attempt_rows[0]
    assert (done.status, done.outcome) == ("completed", "completed")
    last = BODIES["answered_call_sequence"][-1]
    assert attempt.status == "completed"
    assert attempt.duration == int(last["CallDuration"])
    assert attempt.sip_response_code == int(last["SipResponseCode"])
    assert attempt.last_sequence == 3 and attempt.ended_at is not None
    assert [e.call_status for e in events()] == ["initiated", "ringing", "in-progress",
                                                 "completed"]
    assert events()[0].payload == BODIES["answered_call_sequence"][0]


@pytest.mark.parametrize("name", [k for k in BODIES if not k.startswith("_")
                                  and k != "answered_call_sequence"])
def test_every_documented_body_is_accepted(producer_env, name):
    from worker.status import handle_status

    job_id = dialing_job(max_attempts=1)
    assert handle_status(BODIES[name]) == "stored"
    attempt = job(job_id).attempt_rows[0]
    assert attempt.status == BODIES[name]["CallStatus"]
    expected_job = {"completed": "completed", "canceled": "canceled", "in-progress": "dialing"}
    assert job(job_id).status == expected_job.get(BODIES[name]["CallStatus"], "failed")
    if "RecordingSid" in BODIES[name]:
        assert attempt.recording_sid == BODIES[name]["RecordingSid"]
        assert attempt.recording_url == BODIES[name]["RecordingUrl"]
        assert attempt.recording_duration == int(BODIES[name]["RecordingDuration"])
    if "AnsweredBy" in BODIES[name]:
        assert attempt.answered_by == BODIES[name]["AnsweredBy"]


def test_busy_with_attempts_left_is_rescheduled_after_the_delay(producer_env):
    from worker.models import utcnow
    from worker.status import handle_status

    job_id = dialing_job(retry_delays=[300, 900], max_attempts=3)
    before = utcnow()
    handle_status(BODIES["busy"])
    rescheduled = job(job_id)
    assert (rescheduled.status, rescheduled.outcome) == ("scheduled", "busy")
    delay = rescheduled.next_attempt_at - before
    assert timedelta(seconds=300) <= delay <= timedelta(seconds=300 * 1.1 + 5)


def test_outcome_not_in_retry_on_fails_the_job(producer_env):
    from worker.status import handle_status

    job_id = dialing_job(retry_on=["busy"], max_attempts=3)
    handle_status(BODIES["no_answer"])
    assert (job(job_id).status, job(job_id).outcome) == ("failed", "no-answer")


def test_duplicates_and_late_reports_change_nothing(producer_env):
    from worker.status import handle_status

    job_id = dialing_job()
    sequence = BODIES["answered_call_sequence"]
    for body in [sequence[3], sequence[1], sequence[3], sequence[0], sequence[2], sequence[1]]:
        handle_status(body)
    assert handle_status(sequence[3]) == "duplicate"
    done = job(job_id)
    assert done.status == "completed" and done.attempt_rows[0].status == "completed"
    assert len(events()) == 4  # one row per sequence number


def test_unknown_call_sid_is_stored_and_touches_no_job(producer_env):
    from worker.db import session_scope
    from worker.models import Event
    from worker.status import UnknownCall, handle_status

    job_id = dialing_job()
    stray = dict(BODIES["busy"], CallSid="CA" + "0" * 32)
    with pytest.raises(UnknownCall):
        handle_status(stray)
    assert [e.attempt_id for e in events(stray["CallSid"])] == [None]
    assert job(job_id).status == "dialing"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1


def test_callback_before_the_create_answer_is_applied_when_the_sid_is_recorded(producer_env):
    """A callback can overtake calls.create's response; recording the sid adopts it."""
    from worker import enqueue_call
    from worker.dialing import claim, record_created
    from worker.status import UnknownCall, handle_status

    job_id = enqueue_call("+14155550123", url=VOICE_URL, max_attempts=1)
    claimed = claim(job_id)
    with pytest.raises(UnknownCall):
        handle_status(BODIES["no_answer"])

    class Created:  # the two fields record_created reads from twilio's CallInstance
        sid = SID
        status = "queued"

    record_created(claimed, Created())
    assert (job(job_id).status, job(job_id).attempt_rows[0].status) == ("failed", "no-answer")
