"""Redirecting a live call, in-process: the producer's checks and what it asks of Twilio."""

from __future__ import annotations

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.unit.standins import TO, VOICE_URL, Dialed, FakeTwilio, InMemoryBroker
from worker.engine.context import Context
from worker.engine.status import handle_status
from worker.producer.jobs import cancel_job, enqueue_call
from worker.producer.redirect import NotLive, RedirectFailed, check_redirect, redirect_call

NEW_URL = "https://example.com/next.xml"
TWIML = "<Response><Say>Transferring</Say></Response>"


def test_a_url_is_sent_with_its_method_and_twiml_alone() -> None:
    assert check_redirect(f" {NEW_URL} ", None, None) == {"url": NEW_URL}
    assert check_redirect(NEW_URL, None, "get") == {"url": NEW_URL, "method": "GET"}
    assert check_redirect(None, TWIML, None) == {"twiml": TWIML}


@pytest.mark.parametrize(("url", "twiml", "method", "field"), [
    (None, None, None, "url/twiml:"),
    (NEW_URL, TWIML, None, "url/twiml:"),
    ("ftp://example.com/x", None, None, "url:"),
    (None, "  ", None, "twiml:"),
    (None, "<Response>" + "x" * 4000 + "</Response>", None, "twiml:"),
    (NEW_URL, None, "PUT", "method:"),
    (None, TWIML, "POST", "method:"),
])
def test_bad_redirects_name_their_field(url: str | None, twiml: str | None,
                                        method: str | None, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        check_redirect(url, twiml, method)


def test_a_live_call_gets_the_new_instructions(engine_ctx: Context, twilio: FakeTwilio,
                                               dialed: Dialed) -> None:
    handle_status(engine_ctx, twilio.report(dialed.call_sid, "in-progress"))

    result = redirect_call(engine_ctx, dialed.job_id, twiml=TWIML)

    assert (result.job_id, result.call_sid) == (dialed.job_id, dialed.call_sid)
    assert twilio.redirects == [(dialed.call_sid, {"twiml": TWIML})]


def test_an_unknown_job_is_a_value_error(engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match=r"^job_id: no job 'nope'"):
        redirect_call(engine_ctx, "nope", url=NEW_URL)


def test_a_job_not_yet_dialed_has_no_call_to_redirect(engine_ctx: Context,
                                                      broker: InMemoryBroker,
                                                      twilio: FakeTwilio) -> None:
    job_id = enqueue_call(engine_ctx, TO, url=VOICE_URL)

    with pytest.raises(NotLive, match=f"job {job_id} is queued"):
        redirect_call(engine_ctx, job_id, url=NEW_URL)
    assert twilio.redirects == []


@pytest.mark.parametrize("end", ["completed", "cancel"])
def test_an_ended_call_is_not_redirected(engine_ctx: Context, twilio: FakeTwilio,
                                         dialed: Dialed, end: str) -> None:
    if end == "cancel":
        cancel_job(engine_ctx, dialed.job_id)
    else:
        handle_status(engine_ctx, twilio.report(dialed.call_sid, "completed"))

    with pytest.raises(NotLive):
        redirect_call(engine_ctx, dialed.job_id, url=NEW_URL)
    assert twilio.redirects == []


def test_twilios_refusal_comes_back_with_its_code(engine_ctx: Context, twilio: FakeTwilio,
                                                  dialed: Dialed) -> None:
    # The call ended at Twilio; its callback has not arrived yet.
    twilio.set_status(dialed.call_sid, "completed")

    with pytest.raises(RedirectFailed, match="21220 HTTP 400: Call is not in-progress") as exc:
        redirect_call(engine_ctx, dialed.job_id, url=NEW_URL)
    assert exc.value.code == 21220


@pytest.mark.parametrize("failure", [
    requests.ConnectionError("refused"),
    TwilioRestException(status=503, uri="/Calls", msg="unavailable", code=20503)])
def test_twilio_unreachable_or_failing_is_a_redirect_failure(
        engine_ctx: Context, twilio: FakeTwilio, dialed: Dialed, failure: Exception) -> None:
    twilio.redirect_failure = failure

    with pytest.raises(RedirectFailed, match=dialed.call_sid):
        redirect_call(engine_ctx, dialed.job_id, url=NEW_URL)
