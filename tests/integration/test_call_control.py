"""What a call does, end to end against the simulator: a live call redirected to new TwiML
goes on with it, a call Twilio cannot redirect any more is one line from the CLI, and a call
handled by a TwiML application completes through the application's status callback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twilio.rest import Client

from harness.stack import SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, VOICE_URL, Stack, dialer, job_in
from harness.waiting import wait_for
from worker.api import enqueue_call, get_job
from worker.domain.names import STATUS_CALLBACK_PATH
from worker.store.models import Attempt

pytestmark = pytest.mark.integration

TWIML = "<Response><Say>Transferring you now</Say></Response>"


def live_attempt(job_id: str, status: str) -> Attempt | None:
    job = get_job(job_id)
    attempts = job.attempt_rows if job is not None else []
    return attempts[-1] if attempts and attempts[-1].status == status else None


def ringing_at_twilio(stack: Stack, job_id: str) -> Attempt | None:
    attempt = live_attempt(job_id, "queued")
    if attempt is None or attempt.call_sid is None:
        return None
    return attempt if stack.sim.call(attempt.call_sid)["status"] == "ringing" else None


def started(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack()
    stack.start_webhook()
    stack.start_worker("w1", concurrency=2)
    return stack


def test_a_live_call_redirected_plays_the_new_twiml_and_goes_on(
        make_stack: Callable[..., Stack]) -> None:
    stack = started(make_stack)
    to = "+14155554101"
    stack.sim.set_scenario({to: ["answered:400"]})  # 8 s of talk at the stack's time scale
    job_id = enqueue_call(to, url=VOICE_URL)
    attempt = wait_for(lambda: live_attempt(job_id, "in-progress"), timeout=60,
                       what="the call to be answered")

    redirected = dialer(stack.env, "job", "redirect", job_id, "--twiml", TWIML)

    assert redirected.returncode == 0, redirected.stderr
    assert redirected.stdout.strip() == f"{job_id}: call {attempt.call_sid} redirected"
    steps = stack.sim.instructions(attempt.call_sid)
    assert [(s["source"], s["url"], s["twiml"]) for s in steps] == [
        ("create", VOICE_URL, None), ("redirect", None, TWIML)]
    done = wait_for(lambda: job_in(job_id, {"completed", "failed", "canceled"}), timeout=60,
                    what="the call to end")
    assert (done.status, done.attempt_rows[-1].status) == ("completed", "completed")
    assert done.attempt_rows[-1].duration == 400  # the whole talk: the redirect ended nothing

    again = dialer(stack.env, "job", "redirect", job_id, "--url", VOICE_URL)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (f"Error: job_id: job {job_id} is completed with no live "
                                    "call to redirect")


def test_a_ringing_call_cannot_be_redirected_and_says_why_in_one_line(
        make_stack: Callable[..., Stack]) -> None:
    stack = started(make_stack)
    to = "+14155554102"
    stack.sim.set_scenario({to: ["no-answer"]})
    job_id = enqueue_call(to, url=VOICE_URL, call_options={"timeout": 600})  # rings 12 s
    # No `ringing` callback is asked for: the attempt reads `queued` while Twilio rings.
    attempt = wait_for(lambda: ringing_at_twilio(stack, job_id), timeout=60,
                       what="the call to ring")

    refused = dialer(stack.env, "job", "redirect", job_id, "--url", VOICE_URL)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert f"Twilio refused the redirect of call {attempt.call_sid}: 21220" in refused.stderr
    assert [s["source"] for s in stack.sim.instructions(attempt.call_sid)] == ["create"]


def test_a_call_handled_by_an_application_completes(make_stack: Callable[..., Stack]) -> None:
    stack = started(make_stack)
    status_url = stack.env["DIALER_PUBLIC_URL"] + STATUS_CALLBACK_PATH
    client = Client(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN,
                    environment={"TWILIO_ACCOUNT_SID": SIM_ACCOUNT_SID})
    client.api.base_url = stack.sim.url
    application = client.applications.create(friendly_name="reminders", voice_url=VOICE_URL,
                                             status_callback=status_url)
    to = "+14155554103"

    job_id = enqueue_call(to, application_sid=application.sid)

    done = wait_for(lambda: job_in(job_id, {"completed", "failed", "canceled"}), timeout=60,
                    what="the application's call to end")
    assert done.status == "completed" and done.outcome == "completed"
    (sent,) = [c for c in stack.sim.creates() if c.to == to]
    assert sent.params["ApplicationSid"] == [application.sid]
    assert "Url" not in sent.params and "Twiml" not in sent.params
    call_sid = done.attempt_rows[-1].call_sid
    assert stack.sim.instructions(call_sid)[0]["application_sid"] == application.sid
    heard = [c for c in stack.sim.callbacks() if c.call_sid == call_sid]
    assert heard and {(c.url, c.response_status) for c in heard} == {(status_url, 204)}
