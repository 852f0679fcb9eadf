"""Status callbacks into follow-up tasks, end to end: the simulator calls the webhook over
HTTP with signed callbacks, the webhook publishes, workers handle, jobs are retried."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from harness.stack import VOICE_URL, job_in
from harness.waiting import wait_for
from worker.api import cancel_job, enqueue_call, get_job
from worker.domain.statuses import FINAL_JOB_STATUSES
from worker.store.models import Event
from worker.wiring import default_context

pytestmark = pytest.mark.integration

RETRY_DELAY = 1

# number: (scenario, enqueue kwargs, final status, attempt statuses)
CASES = {
    "+14155551001": (["answered"], {}, "completed", ["completed"]),
    "+14155551002": (["busy", "answered"], {}, "completed", ["busy", "completed"]),
    "+14155551003": (["no-answer"], {"call_options": {"timeout": 5}}, "failed",
                     ["no-answer"] * 3),
    "+14155551004": (["failed", "answered"], {}, "completed", ["failed", "completed"]),
    "+14155551005": (["error:21217"], {}, "failed", ["rejected"]),
    "+14155551008": (["busy"], {}, "failed", ["busy"] * 3),
    "+14155551009": (["answered"], {"call_options": {"record": True}}, "completed",
                     ["completed"]),
    "+14155551010": (["no-answer", "answered"], {"call_options": {"timeout": 5}}, "completed",
                     ["no-answer", "completed"]),
    "+14155551011": (["busy"], {"retry_on": ["no-answer"]}, "failed", ["busy"]),
    "+14155551012": (["answered"], {}, "completed", ["completed"]),
}


def enqueue_cases(stack, cases) -> dict[str, str]:
    stack.sim.set_scenario({number: scenario for number, (scenario, _, _, _) in cases.items()})
    return {number: enqueue_call(number, url=VOICE_URL, retry_delays=[RETRY_DELAY],
                                 max_attempts=3, **kwargs)
            for number, (_, kwargs, _, _) in cases.items()}


def all_final(ids):
    jobs = {number: get_job(job_id) for number, job_id in ids.items()}
    return jobs if all(j.status in FINAL_JOB_STATUSES for j in jobs.values()) else None


def assert_outcomes(stack, jobs, cases):
    for number, (_, _, final, attempt_statuses) in cases.items():
        job = jobs[number]
        assert job.status == final, (number, job.status, job.outcome)
        assert [a.status for a in job.attempt_rows] == attempt_statuses, number
        assert job.attempts == len(attempt_statuses)
        creates = [c for c in stack.sim.creates() if c.to == number and c.sid]
        assert len(creates) == len(attempt_statuses) - (final == "failed" and
                                                        attempt_statuses == ["rejected"]), number
    with default_context().database.session() as session:
        pairs = session.execute(select(Event.call_sid, Event.sequence_number)).all()
        assert len(pairs) == len(set(pairs))

    def no_orphans() -> bool:
        with default_context().database.session() as session:
            return session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.attempt_id.is_(None))) == 0

    # A callback that overtook the create's answer is adopted on its retry, a few seconds
    # later, possibly after the job went final (it is an earlier status: it changes nothing).
    wait_for(no_orphans, timeout=20, what="every early callback adopted by its attempt")


def test_a_dozen_jobs_reach_their_policy_outcomes(make_stack):
    stack = make_stack(DIALER_CALLS_PER_SECOND="20").start_all(concurrency=3)
    ids = enqueue_cases(stack, CASES)
    stack.sim.set_scenario({**{n: s for n, (s, _, _, _) in CASES.items()},
                            "+14155551006": ["answered:600"], "+14155551007": ["no-answer"]})
    talking = enqueue_call("+14155551006", url=VOICE_URL)
    ringing = enqueue_call("+14155551007", url=VOICE_URL, call_options={"timeout": 600})

    def attempt_status(job_id, status):
        job = get_job(job_id)
        return job.attempt_rows and job.attempt_rows[-1].status == status

    wait_for(lambda: attempt_status(talking, "in-progress"), timeout=20, what="an answer")
    wait_for(lambda: ringing_at_twilio(stack, ringing), timeout=20, what="ringing")
    for job_id in (talking, ringing):
        result = cancel_job(job_id)
        assert result.canceled and result.status == "canceled"
    assert not cancel_job(talking).canceled  # final now: left as it is, and we are told

    jobs = wait_for(lambda: all_final(ids), timeout=60, what="every job final")
    assert_outcomes(stack, jobs, CASES)

    recorded = jobs["+14155551009"].attempt_rows[0]
    assert recorded.recording_sid and recorded.recording_url and recorded.duration
    assert jobs["+14155551002"].attempt_rows[0].sip_response_code == 486

    # The second attempt came no sooner than its delay after the first one ended.
    first, second = jobs["+14155551002"].attempt_rows
    busy_event_at = max(e.received_at for e in events_of(first))
    assert second.created_at - busy_event_at >= timedelta(seconds=RETRY_DELAY)

    sim_calls = {c["sid"]: c for c in stack.sim.calls()}
    wait_for(lambda: get_job(talking).attempt_rows[0].status == "completed", timeout=20,
             what="the hang-up callback")
    assert sim_calls[get_job(talking).attempt_rows[0].call_sid]["status"] == "completed"
    wait_for(lambda: get_job(ringing).attempt_rows[0].status == "canceled", timeout=20,
             what="the cancel callback")
    assert stack.sim.call(get_job(ringing).attempt_rows[0].call_sid)["status"] == "canceled"
    assert get_job(talking).status == get_job(ringing).status == "canceled"


def ringing_at_twilio(stack, job_id) -> bool:
    """No `ringing` callback is asked for: the attempt reads `queued` while Twilio rings."""
    attempts = get_job(job_id).attempt_rows
    call_sid = attempts[-1].call_sid if attempts else None
    return call_sid is not None and stack.sim.call(call_sid)["status"] == "ringing"


def events_of(attempt):
    with default_context().database.session() as session:
        return session.scalars(select(Event).where(Event.attempt_id == attempt.id)).all()


def test_duplicated_and_reordered_callbacks_change_nothing(make_stack):
    cases = {n: CASES[n] for n in ("+14155551001", "+14155551002", "+14155551003",
                                   "+14155551004")}
    stack = make_stack(DIALER_CALLS_PER_SECOND="20")
    stack.sim.set_faults(callback_duplicate_rate=1.0, callback_reorder_rate=1.0)
    stack.start_all(concurrency=3)
    ids = enqueue_cases(stack, cases)

    jobs = wait_for(lambda: all_final(ids), timeout=60, what="every job final")
    assert_outcomes(stack, jobs, cases)
    tokens = [c.params.get("CallSid") for c in stack.sim.callbacks()]
    assert len(tokens) > len(set(zip(tokens, [c.sequence_number for c in stack.sim.callbacks()],
                                     strict=True))), "no callback was duplicated"


# --- which status events a call asks for ----------------------------------------------------


def status_callbacks(stack, call_sid: str) -> list:
    """The status callbacks the simulator sent for one call, once every one was answered."""
    sent = [c for c in stack.sim.callbacks() if c.call_sid == call_sid and c.kind == "status"]
    return sent if sent and all(c.response_status for c in sent) else []


def stored_events(call_sid: str, count: int) -> list[tuple[str, str]]:
    """The call's stored events once `count` are stored.

    A 204 only says the callback is queued, and the job ends on `completed` whether or not an
    earlier event's task has run yet: waiting is the test's job, not the dialer's.
    """
    def stored() -> list[tuple[str, str]]:
        with default_context().database.session() as session:
            events = list(session.execute(
                select(Event.call_status, Event.source).where(Event.call_sid == call_sid)
                .order_by(Event.sequence_number)).all())
        return events if len(events) >= count else []
    return wait_for(stored, timeout=20, what=f"{count} stored events")


@pytest.mark.parametrize(("settings", "heard"), [
    ({}, ["in-progress", "completed"]),
    ({"DIALER_STATUS_CALLBACK_EVENTS": "initiated ringing answered completed"},
     ["initiated", "ringing", "in-progress", "completed"]),
])
def test_a_call_makes_one_callback_per_status_event_asked_for(make_stack, settings, heard):
    stack = make_stack(**settings).start_all()
    to = "+14155551021"
    stack.sim.set_scenario({to: ["answered:30"]})
    job_id = enqueue_call(to, url=VOICE_URL, max_attempts=1)

    done = wait_for(lambda: job_in(job_id, FINAL_JOB_STATUSES), timeout=60,
                    what="the call to end")
    (attempt,) = done.attempt_rows
    assert (done.status, done.outcome) == ("completed", "completed")
    assert (attempt.status, attempt.duration) == ("completed", 30)
    sent = wait_for(lambda: status_callbacks(stack, attempt.call_sid), timeout=20,
                    what="every status callback answered")
    assert [(c.call_status, c.response_status) for c in sent] == [(s, 204) for s in heard]
    (create,) = [c for c in stack.sim.creates() if c.to == to]
    assert len(create.params["StatusCallbackEvent"]) == len(heard)
    assert stored_events(attempt.call_sid, len(heard)) == [(s, "callback") for s in heard]
    # Celery's received and succeeded lines are kept for place_call, not for each callback.
    worker_log = "\n".join(p.log() for p in stack.processes if p.name == "w1")
    assert re.search(r"Task dialer\.place_call\[[^\]]+\] succeeded", worker_log)
    assert not re.search(r"Task dialer\.handle_status\[[^\]]+\] (received|succeeded)",
                         worker_log)


def test_busy_and_no_answer_calls_end_on_their_one_callback_and_are_retried(make_stack):
    stack = make_stack(DIALER_CALLS_PER_SECOND="20").start_all()
    to = "+14155551022"
    stack.sim.set_scenario({to: ["busy", "no-answer", "answered"]})
    job_id = enqueue_call(to, url=VOICE_URL, retry_delays=[RETRY_DELAY], max_attempts=3,
                          call_options={"timeout": 5})

    done = wait_for(lambda: job_in(job_id, FINAL_JOB_STATUSES), timeout=60,
                    what="the job to end")
    assert (done.status, done.attempts) == ("completed", 3)
    assert [a.status for a in done.attempt_rows] == ["busy", "no-answer", "completed"]
    heard = [[c.call_status for c in wait_for(lambda sid=a.call_sid: status_callbacks(stack, sid),
                                              timeout=20, what="the call's callbacks")]
             for a in done.attempt_rows]
    assert heard == [["busy"], ["no-answer"], ["in-progress", "completed"]]
    busy, no_answer, answered = done.attempt_rows
    assert busy.sip_response_code == 486 and busy.ended_at is not None
    assert no_answer.ended_at is not None
    # Each retry waited its delay after the one callback that ended the attempt before it.
    for ended, retried in ((busy, no_answer), (no_answer, answered)):
        (event,) = events_of(ended)
        assert (event.call_status, event.source) == (ended.status, "callback")
        assert retried.created_at - event.received_at >= timedelta(seconds=RETRY_DELAY)


def test_cancel_of_a_call_answered_before_its_callback_arrived_hangs_it_up(make_stack):
    """The attempt reads `queued` until the `answered` callback is handled; Twilio leaves an
    answered call in progress on a cancel, so the dialer hangs it up."""
    stack = make_stack()
    stack.start_worker("w1", concurrency=1)  # no webhook: no callback reaches the dialer
    to = "+14155551023"
    stack.sim.set_scenario({to: ["answered:600"]})
    job_id = enqueue_call(to, url=VOICE_URL)

    def answered_at_twilio() -> str | None:
        attempts = get_job(job_id).attempt_rows
        call_sid = attempts[-1].call_sid if attempts else None
        live = call_sid is not None and stack.sim.call(call_sid)["status"] == "in-progress"
        return call_sid if live else None

    call_sid = wait_for(answered_at_twilio, timeout=30, what="the call to be answered")
    assert get_job(job_id).attempt_rows[-1].status == "queued"

    result = cancel_job(job_id)

    assert (result.canceled, result.message) == (True, "canceled; live call ended")
    assert stack.sim.call(call_sid)["status"] == "completed"
