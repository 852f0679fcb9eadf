"""The Twilio voice simulator, held to Twilio: the official client, the official OpenAPI
description, the published signature algorithm, and twilio's own RequestValidator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from harness.waiting import free_port, port_open, wait_for
from simulator import Faults, Outcome, Scenario, Simulator
from simulator.engine import BUSY_S, DIAL_S, FAIL_S, RING_S
from simulator.scenario import DEFAULT_TALK_S
from simulator.signing import signature
from tests.data import TWILIO_OPENAPI
from tests.support.simulator_fixtures import (
    SIM_ACCOUNT_SID,
    SIM_AUTH_TOKEN,
    CallbackListener,
    Received,
)

pytestmark = pytest.mark.integration

TWILIO_HOST = "https://api.twilio.com"
CALLS_TEMPLATE = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
CALL_TEMPLATE = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"
CALLS_PATH = f"/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls.json"
AUTH = (SIM_ACCOUNT_SID, SIM_AUTH_TOKEN)
FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
TWILIO_PARAMS = {"CallSid", "AccountSid", "From", "To", "Called", "Caller", "CallStatus",
                 "Direction", "ApiVersion", "CallbackSource", "SequenceNumber", "Timestamp"}
ERROR_KEYS = {"code", "message", "more_info", "status"}
TO, FROM, VOICE_URL = "+14155550100", "+14155550199", "http://example.com/voice"
REPO = Path(__file__).resolve().parents[2]


# --- helpers ------------------------------------------------------------------------------

def twilio_client(url: str, token: str = SIM_AUTH_TOKEN) -> Client:
    # A non-empty environment keeps TWILIO_EDGE/TWILIO_REGION in os.environ from
    # rewriting the host.
    client = Client(SIM_ACCOUNT_SID, token, environment={"TWILIO_ACCOUNT_SID": SIM_ACCOUNT_SID})
    client.api.base_url = url
    return client


def place(client: Client, to: str = TO, **kwargs: Any) -> Any:
    kwargs.setdefault("from_", FROM)
    kwargs.setdefault("url", VOICE_URL)
    return client.calls.create(to=to, **kwargs)


def wait_status(client: Client, sid: str, statuses: set[str], timeout: float = 10) -> Any:
    def reached() -> Any:
        call = client.calls(sid).fetch()
        return call if call.status in statuses else None
    return wait_for(reached, timeout=timeout, what=f"{sid} to reach one of {statuses}")


def wait_final(client: Client, sid: str, timeout: float = 10) -> Any:
    return wait_status(client, sid, FINAL, timeout)


def header(received: Received, name: str) -> str | None:
    return next((v for k, v in received.headers.items() if k.lower() == name.lower()), None)


def callbacks_for(listener: CallbackListener, sid: str) -> list[Received]:
    return [r for r in listener.received() if r.param("CallSid") == sid]


def wait_callbacks(listener: CallbackListener, sid: str, count: int,
                   timeout: float = 10) -> list[Received]:
    return wait_for(lambda: (got := callbacks_for(listener, sid)) and len(got) >= count and got,
                    timeout=timeout, what=f"{count} callbacks for {sid}")


def signed_correctly(listener: CallbackListener, received: Received,
                     token: str = SIM_AUTH_TOKEN) -> bool:
    params = dict(received.form) if received.method == "POST" else {}
    return RequestValidator(token).validate(listener.url + received.path, params,
                                            header(received, "X-Twilio-Signature") or "")


def raw(sim: Simulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    return requests.request(method, sim.url + path, timeout=10, **kwargs)


def create_form(**overrides: str | None) -> dict[str, str]:
    form = {"To": TO, "From": FROM, "Url": VOICE_URL} | overrides
    return {k: v for k, v in form.items() if v is not None}


# --- the official OpenAPI description -----------------------------------------------------

class Spec:
    def __init__(self, path: Path) -> None:
        self.raw = json.loads(path.read_text())
        # from_file_path reads with a YAML loader that rejects some of the file's JSON
        # escapes; the same document loaded as JSON is the same spec.
        self.api = OpenAPI.from_dict(self.raw)

    def validate(self, method: str, path: str, response: requests.Response,
                 query: dict[str, str] | None = None) -> None:
        """Raise if the simulator's answer is not what the spec says Twilio answers."""
        request = MockRequest(TWILIO_HOST, method, path, args=query)
        content_type = response.headers.get("Content-Type", "application/json").split(";")[0]
        self.api.validate_response(request, MockResponse(response.content,
                                                         status_code=response.status_code,
                                                         content_type=content_type))

    def documents(self, template: str, method: str, status: int) -> bool:
        responses = self.raw["paths"][template][method.lower()]["responses"]
        return str(status) in responses or "default" in responses

    def check_error(self, response: requests.Response, status: int, code: int | None = None,
                    template: str | None = None, method: str = "post") -> dict[str, Any]:
        """Twilio's error shape; validated against the spec as well if the spec has it."""
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert set(body) == ERROR_KEYS, body
        assert body["status"] == status
        assert isinstance(body["message"], str) and body["message"]
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
        if code is not None:
            assert body["code"] == code, body
        if template is not None and self.documents(template, method, status):
            self.validate(method, urlpath(response.request.url or ""), response)
        return body


def urlpath(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]


@pytest.fixture(scope="module")
def spec() -> Spec:
    assert TWILIO_OPENAPI.exists(), f"Twilio's OpenAPI spec is missing: {TWILIO_OPENAPI}"
    return Spec(TWILIO_OPENAPI)


@pytest.fixture
def client(simulator: Simulator) -> Client:
    return twilio_client(simulator.url)


# --- REST against the spec ----------------------------------------------------------------

def test_create_fetch_list_update_delete_answers_match_the_spec(simulator, spec):
    simulator.set_scenario({TO: "no-answer"})  # rings for Timeout: still cancelable below
    created = raw(simulator, "POST", CALLS_PATH,
                  data=create_form(Timeout="600", StatusCallbackEvent="completed"))
    assert created.status_code == 201, created.text
    spec.validate("post", CALLS_PATH, created)
    call = created.json()
    assert call["status"] == "queued" and call["sid"].startswith("CA")
    call_path = call["uri"]
    assert call_path == f"/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls/{call['sid']}.json"

    fetched = raw(simulator, "GET", call_path)
    assert fetched.status_code == 200
    spec.validate("get", call_path, fetched)
    assert fetched.json()["sid"] == call["sid"]

    for query in ({}, {"To": TO, "PageSize": "1"}, {"Status": "queued"}):
        listed = raw(simulator, "GET", CALLS_PATH, params=query)
        assert listed.status_code == 200
        spec.validate("get", CALLS_PATH, listed, query=query)

    updated = raw(simulator, "POST", call_path, data={"Status": "canceled"})
    assert updated.status_code == 200, updated.text
    spec.validate("post", call_path, updated)
    assert updated.json()["status"] == "canceled"

    deleted = raw(simulator, "DELETE", call_path)
    assert deleted.status_code == 204 and not deleted.content
    spec.validate("delete", call_path, deleted)
    spec.check_error(raw(simulator, "GET", call_path), 404, 20404, CALL_TEMPLATE, "get")


@pytest.mark.parametrize("outcome", ["answered:5", "machine:5", "busy", "no-answer", "failed"])
def test_every_state_a_call_passes_through_matches_the_spec(simulator, spec, outcome):
    simulator.set_scenario({TO: outcome})
    form = create_form(Timeout="10", MachineDetection="Enable")
    created = raw(simulator, "POST", CALLS_PATH, data=form)
    spec.validate("post", CALLS_PATH, created)
    path = created.json()["uri"]
    seen: list[str] = []

    def snapshot() -> bool:
        response = raw(simulator, "GET", path)
        spec.validate("get", path, response)
        listed = raw(simulator, "GET", CALLS_PATH)
        spec.validate("get", CALLS_PATH, listed)
        status = response.json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return status in FINAL

    wait_for(snapshot, timeout=10, interval=0.005, what="the call to end")
    assert seen[-1] in FINAL
    assert "initiated" not in seen  # the resource has no `initiated`: it reads queued


def test_errors_have_twilios_shape_and_the_spec_documents_only_success(simulator, spec):
    for template, method in ((CALLS_TEMPLATE, "post"), (CALLS_TEMPLATE, "get"),
                             (CALL_TEMPLATE, "get"), (CALL_TEMPLATE, "post")):
        assert not spec.documents(template, method, 400)
    body = spec.check_error(raw(simulator, "POST", CALLS_PATH, data=create_form(To=None)), 400,
                            21201, CALLS_TEMPLATE)
    assert "To" in body["message"]


# --- the official client: create, fetch, list, update, delete -----------------------------

def test_create_then_fetch_with_the_official_client(client):
    call = place(client)
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert (call.status, call.to, call._from) == ("queued", TO, FROM)
    assert call.direction == "outbound-api" and call.account_sid == SIM_ACCOUNT_SID
    done = wait_final(client, call.sid)
    assert done.status == "completed"
    assert done.start_time and done.end_time and done.start_time <= done.end_time
    assert DEFAULT_TALK_S <= int(done.duration) <= 3 * DEFAULT_TALK_S
    assert done.answered_by is None


@pytest.mark.parametrize(("outcome", "final"), [
    ("answered:5", "completed"), ("machine:5", "completed"), ("busy", "busy"),
    ("no-answer", "no-answer"), ("failed", "failed"),
])
def test_lifecycle_ends_as_the_scenario_says(simulator, client, outcome, final):
    simulator.set_scenario({TO: outcome})
    done = wait_final(client, place(client, timeout=10).sid)
    assert done.status == final
    if final == "completed":
        assert 5 <= int(done.duration) <= 30  # Twilio seconds: real time over the time scale
    else:
        assert done.duration == "0"


def test_answered_within_the_timeout_or_not_at_all(simulator, client):
    # Twilio stops ringing after Timeout seconds; a ring longer than that is no-answer.
    assert RING_S >= 2
    done = wait_final(client, place(client, timeout=int(RING_S) - 1).sid)
    assert done.status == "no-answer"


def test_cancel_a_ringing_call(simulator, client):
    simulator.set_scenario({TO: "no-answer"})
    call = place(client, timeout=600)
    wait_status(client, call.sid, {"ringing"})
    updated = client.calls(call.sid).update(status="canceled")
    assert updated.status == "canceled"
    assert client.calls(call.sid).fetch().status == "canceled"
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).update(status="completed")
    assert (info.value.status, info.value.code) == (400, 21220)


def test_hang_up_an_answered_call(simulator, client):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client)
    wait_status(client, call.sid, {"in-progress"})
    assert client.calls(call.sid).update(status="canceled").status == "in-progress"  # no-op
    hung_up = client.calls(call.sid).update(status="completed")
    assert hung_up.status == "completed"
    assert int(hung_up.duration) < 600
    assert client.calls(call.sid).fetch().status == "completed"


def test_update_refuses_an_unknown_status(simulator, client):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client)
    response = raw(simulator, "POST", call.uri, data={"Status": "paused"})
    assert response.status_code == 400 and response.json()["code"] == 20001


def test_delete_only_a_finished_call(simulator, client):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client)
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).delete()
    assert (info.value.status, info.value.code) == (400, 20009)
    client.calls(call.sid).update(status="completed")
    assert client.calls(call.sid).delete() is True
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)
    assert client.calls.list() == []


def test_scenario_lists_outcomes_per_attempt_and_the_last_repeats(simulator, client):
    simulator.set_scenario({TO: ["busy", "no-answer", "answered:1"]})
    sids = [place(client, timeout=5).sid for _ in range(4)]
    finals = [wait_final(client, sid).status for sid in sids]
    assert finals == ["busy", "no-answer", "completed", "completed"]
    other = place(client, to="+14155550101")  # attempts are counted per number
    assert wait_final(client, other.sid).status == "completed"


def test_scenario_exact_number_beats_patterns_which_apply_in_order(simulator, client):
    simulator.set_scenario({"+1415555*": "busy", "+14155550111": "answered:1",
                            "+1415*": "failed", "+1212??????9": "no-answer"},
                           default="answered:2")
    cases = {"+14155550111": "completed", "+14155550112": "busy", "+14150000000": "failed",
             "+12125550009": "no-answer", "+12125550008": "completed"}
    sids = {to: place(client, to=to, timeout=5).sid for to in cases}
    assert {to: wait_final(client, sid).status for to, sid in sids.items()} == cases
    assert wait_final(client, sids["+12125550008"]).duration == "2"


def test_error_outcome_refuses_the_create(simulator, client):
    simulator.set_scenario({TO: ["error:21217", "answered:1"]})
    with pytest.raises(TwilioRestException) as info:
        place(client)
    assert (info.value.status, info.value.code) == (400, 21217)
    assert client.calls.list() == []
    refused = simulator.creates()[-1]
    assert (refused.status, refused.error_code, refused.sid, refused.to) == (400, 21217, None, TO)
    retried = place(client)  # the second attempt gets the second outcome
    assert wait_final(client, retried.sid).status == "completed"


def test_list_filters_by_to_from_and_status(simulator, client):
    simulator.set_scenario({"+14155550102": "busy"})
    a = place(client, to="+14155550101")
    b = place(client, to="+14155550102", from_="+14155550198")
    c = place(client, to="+14155550101", from_="+14155550198")
    for call in (a, b, c):
        wait_final(client, call.sid)
    assert {x.sid for x in client.calls.list(to="+14155550101")} == {a.sid, c.sid}
    assert {x.sid for x in client.calls.list(from_="+14155550198")} == {b.sid, c.sid}
    assert {x.sid for x in client.calls.list(status="busy")} == {b.sid}
    assert {x.sid for x in client.calls.list(status="completed")} == {a.sid, c.sid}
    assert client.calls.list(to="+14155550101", from_=FROM)[0].sid == a.sid
    assert [x.sid for x in client.calls.list()] == [c.sid, b.sid, a.sid]  # newest first


def test_list_filters_by_start_time(simulator, client):
    call = place(client)
    wait_final(client, call.sid)
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert [x.sid for x in client.calls.list(start_time_after=now - hour)] == [call.sid]
    assert client.calls.list(start_time_after=now + hour) == []
    assert [x.sid for x in client.calls.list(start_time_before=now + hour)] == [call.sid]
    assert client.calls.list(start_time_before=now - hour) == []
    today = raw(simulator, "GET", CALLS_PATH, params={"StartTime": now.date().isoformat()})
    assert [x["sid"] for x in today.json()["calls"]] == [call.sid]
    bad = raw(simulator, "GET", CALLS_PATH, params={"StartTime>": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == 20001


def test_list_by_start_time_falls_back_to_date_created_for_queued_calls():
    with Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=0.1, time_scale=0.01) as sim:
        client = twilio_client(sim.url)
        place(client)
        queued = place(client)  # dequeued in 10 s
        assert client.calls(queued.sid).fetch().start_time is None
        after = client.calls.list(start_time_after=datetime.now(UTC) - timedelta(minutes=5))
        assert queued.sid in {x.sid for x in after}


def test_paging(simulator, client):
    sids = {place(client).sid for _ in range(5)}
    assert {x.sid for x in client.calls.list(page_size=2)} == sids
    first = client.calls.page(page_size=2)
    assert first.next_page_url and first.previous_page_url is None
    second = first.next_page()
    third = second.next_page()
    assert third.next_page_url is None and third.previous_page_url
    pages = [[x.sid for x in page] for page in (first, second, third)]  # pages iterate once
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {sid for page in pages for sid in page} == sids
    too_big = raw(simulator, "GET", CALLS_PATH, params={"PageSize": "0"})
    assert too_big.status_code == 400 and too_big.json()["code"] == 20001


# --- status callbacks ---------------------------------------------------------------------

def test_status_callbacks_are_signed_ordered_and_complete(client, callback_listener):
    call = place(client, status_callback=callback_listener.url + "/status?x=1",
                 status_callback_event=ALL_EVENTS)
    got = wait_callbacks(callback_listener, call.sid, 4)
    wait_final(client, call.sid)
    assert len(callbacks_for(callback_listener, call.sid)) == 4
    assert [r.param("SequenceNumber") for r in got] == ["0", "1", "2", "3"]
    assert [r.param("CallStatus") for r in got] == ["initiated", "ringing", "in-progress",
                                                    "completed"]
    tokens = set()
    for received in got:
        assert received.method == "POST" and received.path == "/status?x=1"
        assert signed_correctly(callback_listener, received), received
        assert not signed_correctly(callback_listener, received, token="another-token")
        params = dict(received.form)
        assert set(params) >= TWILIO_PARAMS, TWILIO_PARAMS - set(params)
        assert params["CallSid"] == call.sid and params["AccountSid"] == SIM_ACCOUNT_SID
        assert (params["To"], params["Called"], params["From"], params["Caller"]) == (
            TO, TO, FROM, FROM)
        assert params["Direction"] == "outbound-api" and params["ApiVersion"] == "2010-04-01"
        assert params["CallbackSource"] == "call-progress-events"
        stamp = parsedate_to_datetime(params["Timestamp"])
        assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)
        token = header(received, "I-Twilio-Idempotency-Token")
        assert token and token.startswith(SIM_ACCOUNT_SID)
        tokens.add(token)
        terminal = params["CallStatus"] == "completed"
        assert ("CallDuration" in params) is terminal
        assert ("SipResponseCode" in params) is terminal
        assert ("Duration" in params) is terminal
        assert header(received, "Content-Type") == (
            "application/x-www-form-urlencoded; charset=utf-8")
        assert "AnsweredBy" not in params and "RecordingSid" not in params
    assert len(tokens) == 4
    final = dict(got[-1].form)
    assert final["SipResponseCode"] == "200"
    assert int(final["CallDuration"]) >= DEFAULT_TALK_S and final["Duration"] == "1"


@pytest.mark.parametrize(("outcome", "status", "sip"), [
    ("busy", "busy", "486"), ("no-answer", "no-answer", "487"), ("failed", "failed", "404"),
])
def test_unanswered_calls_report_sip_code_and_zero_durations(simulator, client,
                                                             callback_listener, outcome, status,
                                                             sip):
    simulator.set_scenario({TO: outcome})
    call = place(client, timeout=5, status_callback=callback_listener.url + "/status",
                 status_callback_event=ALL_EVENTS)
    wait_final(client, call.sid)
    terminal = wait_for(lambda: next((r for r in callbacks_for(callback_listener, call.sid)
                                      if r.param("CallStatus") == status), None),
                        what="the terminal callback")
    assert terminal.param("SipResponseCode") == sip
    assert terminal.param("CallDuration") == "0"
    assert terminal.param("Duration") == "0"  # Twilio sends both, 0, on an unanswered call
    assert signed_correctly(callback_listener, terminal)
    assert "in-progress" not in {r.param("CallStatus")
                                 for r in callbacks_for(callback_listener, call.sid)}


def test_canceled_call_reports_canceled(simulator, client, callback_listener):
    simulator.set_scenario({TO: "no-answer"})
    call = place(client, timeout=600, status_callback=callback_listener.url)
    wait_status(client, call.sid, {"ringing"})
    client.calls(call.sid).update(status="canceled")
    [terminal] = wait_callbacks(callback_listener, call.sid, 1)
    assert terminal.param("CallStatus") == "canceled"
    assert terminal.param("SipResponseCode") == "487"


def test_only_the_completed_event_by_default(client, callback_listener):
    call = place(client, status_callback=callback_listener.url + "/cb")
    wait_final(client, call.sid)
    [only] = wait_callbacks(callback_listener, call.sid, 1)
    assert only.param("CallStatus") == "completed" and only.param("SequenceNumber") == "0"
    assert signed_correctly(callback_listener, only)


def test_get_callbacks_carry_params_in_the_query_and_are_signed(client, callback_listener):
    call = place(client, status_callback=callback_listener.url + "/status?x=1",
                 status_callback_method="GET", status_callback_event=ALL_EVENTS)
    got = wait_callbacks(callback_listener, call.sid, 4)
    for received in got:
        assert received.method == "GET" and received.path.startswith("/status?x=1&")
        assert received.param("x") == "1"
        assert {k for k, _ in received.form} >= TWILIO_PARAMS
        assert signed_correctly(callback_listener, received)
        # Signed over the full URL with its query, with no body params.
        assert header(received, "X-Twilio-Signature") == signature(
            SIM_AUTH_TOKEN, callback_listener.url + received.path)


def test_recorded_call_reports_the_recording(client, callback_listener):
    call = place(client, record=True, status_callback=callback_listener.url)
    [done] = wait_callbacks(callback_listener, call.sid, 1)
    assert done.param("RecordingSid").startswith("RE")
    assert done.param("RecordingUrl").endswith(
        f"/Accounts/{SIM_ACCOUNT_SID}/Recordings/{done.param('RecordingSid')}")
    assert done.param("RecordingDuration") == done.param("CallDuration")
    assert signed_correctly(callback_listener, done)


@pytest.mark.parametrize(("detection", "outcome", "answered_by"), [
    ("Enable", "machine", "machine_start"),
    ("DetectMessageEnd", "machine", "machine_end_beep"),
    ("Enable", "answered", "human"),
])
def test_machine_detection_reports_answered_by(simulator, client, callback_listener, detection,
                                               outcome, answered_by):
    simulator.set_scenario({TO: outcome})
    call = place(client, machine_detection=detection, status_callback=callback_listener.url,
                 status_callback_event=["answered", "completed"])
    got = wait_callbacks(callback_listener, call.sid, 2)
    assert [r.param("AnsweredBy") for r in got] == [answered_by, answered_by]
    assert wait_final(client, call.sid).answered_by == answered_by


def test_simulator_records_each_callback_and_its_answer(simulator, client, callback_listener):
    call = place(client, status_callback=callback_listener.url, status_callback_event=ALL_EVENTS)
    wait_callbacks(callback_listener, call.sid, 4)
    records = wait_for(lambda: len(r := simulator.callbacks()) == 4 and r)
    assert [r.sequence_number for r in records] == [0, 1, 2, 3]
    assert {(r.call_sid, r.response_status, r.dropped, r.error) for r in records} == {
        (call.sid, 204, False, None)}


def test_unreachable_callback_url_is_recorded_not_retried(client, simulator):
    call = place(client, status_callback=f"http://127.0.0.1:{free_port()}/gone")
    wait_final(client, call.sid)
    [record] = wait_for(lambda: simulator.callbacks(), what="the callback record")
    assert record.response_status is None and record.error and not record.dropped
    assert len(simulator.callbacks()) == 1


# --- faults -------------------------------------------------------------------------------

def test_duplicate_fault_sends_each_callback_twice_with_one_token(simulator, client,
                                                                   callback_listener):
    simulator.set_faults(callback_duplicate_rate=1.0)
    call = place(client, status_callback=callback_listener.url, status_callback_event=ALL_EVENTS)
    got = wait_callbacks(callback_listener, call.sid, 8)
    by_token = Counter(header(r, "I-Twilio-Idempotency-Token") for r in got)
    assert len(by_token) == 4 and set(by_token.values()) == {2}
    for token in by_token:
        copies = [r for r in got if header(r, "I-Twilio-Idempotency-Token") == token]
        assert copies[0].form == copies[1].form
        assert all(signed_correctly(callback_listener, r) for r in copies)
    assert sorted(r.param("SequenceNumber") for r in got) == ["0", "0", "1", "1", "2", "2",
                                                              "3", "3"]


def test_reorder_fault_delivers_every_callback_out_of_order(simulator, client,
                                                            callback_listener):
    simulator.set_faults(callback_reorder_rate=1.0)
    call = place(client, status_callback=callback_listener.url, status_callback_event=ALL_EVENTS)
    got = wait_callbacks(callback_listener, call.sid, 4)
    order = [int(r.param("SequenceNumber")) for r in got]
    assert order != sorted(order) and sorted(order) == [0, 1, 2, 3]
    assert all(signed_correctly(callback_listener, r) for r in got)


def test_drop_fault_sends_nothing_and_records_the_drops(simulator, client, callback_listener):
    simulator.set_faults(callback_drop_rate=1.0)
    call = place(client, status_callback=callback_listener.url, status_callback_event=ALL_EVENTS)
    wait_final(client, call.sid)
    records = wait_for(lambda: len(r := simulator.callbacks()) == 4 and r,
                       what="four dropped callbacks recorded")
    assert all(r.dropped and r.response_status is None for r in records)
    assert callback_listener.received() == []


def test_api_error_fault_refuses_the_create_and_places_nothing(simulator, client):
    simulator.set_faults(api_error_rate=1.0, api_error_statuses=(503,))
    with pytest.raises(TwilioRestException) as info:
        place(client)
    assert (info.value.status, info.value.code) == (503, 20503)
    assert client.calls.list() == [] and simulator.calls() == []
    assert [(c.status, c.sid) for c in simulator.creates()] == [(503, None)]


def test_ambiguous_fault_answers_500_after_placing_the_call(simulator, client):
    simulator.set_faults(api_error_rate=1.0, api_error_statuses=(500,),
                         ambiguous_after_create=True)
    with pytest.raises(TwilioRestException) as info:
        place(client)
    assert info.value.status == 500
    [found] = client.calls.list(to=TO)
    [create] = simulator.creates()
    assert (create.status, create.sid) == (500, found.sid)
    simulator.set_faults()
    assert wait_final(client, found.sid).status == "completed"


def test_api_latency_fault_delays_the_answer(simulator, client):
    simulator.set_faults(api_latency=0.3)
    started = time.monotonic()
    place(client)
    assert time.monotonic() - started >= 0.3


def test_faults_validate_their_values():
    for bad in ({"callback_drop_rate": 1.5}, {"api_error_rate": -0.1}, {"api_latency": -1},
                {"api_error_statuses": (404,)}, {"api_error_statuses": ()}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            Faults(**bad)


# --- pacing ---------------------------------------------------------------------------------

def test_calls_leave_the_queue_at_the_accounts_pace(callback_listener):
    with Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=5, time_scale=0.01) as sim:
        client = twilio_client(sim.url)
        calls = [place(client, status_callback=callback_listener.url,
                       status_callback_event=["initiated"]) for _ in range(10)]
        assert all(c.status == "queued" for c in calls)  # every create answered 201
        initiated = wait_for(
            lambda: len(r := [x for x in sim.callbacks() if x.call_status == "initiated"]) == 10
            and r, timeout=15, what="ten calls to leave the queue")
        sent = sorted(r.sent_at for r in initiated)
        assert sent[-1] - sent[0] >= 9 / 5 * 0.9, "dequeued faster than 5 calls/s"
        assert sent[-1] - sent[0] < 9 / 5 + 2, "dequeued far slower than 5 calls/s"
        queue_times = [int(client.calls(c.sid).fetch().queue_time) for c in calls]
        assert queue_times[-1] >= 1500, queue_times
        assert queue_times[-1] > queue_times[4] > queue_times[0]


def test_strict_mode_refuses_over_the_pace_with_429():
    with Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=2, strict=True, time_scale=0.01) as sim:
        client = twilio_client(sim.url)
        answers = []
        for _ in range(6):
            try:
                answers.append(place(client).status)
            except TwilioRestException as exc:
                answers.append((exc.status, exc.code))
        assert answers[0] == "queued"
        assert (429, 20429) in answers
        refused = [c for c in sim.creates() if c.status == 429]
        assert refused and all(c.error_code == 20429 and c.sid is None for c in refused)


def test_a_refused_create_takes_no_place_in_the_queue():
    with Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=1, strict=True, time_scale=0.01) as sim:
        sim.set_scenario({"+14155550666": "error:21217"})
        client = twilio_client(sim.url)
        with pytest.raises(TwilioRestException) as info:
            place(client, to="+14155550666")
        assert info.value.code == 21217
        assert place(client).status == "queued"


# --- errors over raw HTTP ---------------------------------------------------------------------

def test_bad_credentials_answer_401(simulator, spec):
    for auth in ((SIM_ACCOUNT_SID, "wrong"), ("AC" + "0" * 32, SIM_AUTH_TOKEN), None):
        response = raw(simulator, "POST", CALLS_PATH, data=create_form(), auth=auth)
        spec.check_error(response, 401, 20003, CALLS_TEMPLATE)
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    garbled = raw(simulator, "GET", CALLS_PATH, auth=None,
                  headers={"Authorization": "Basic %%%not-base64"})
    spec.check_error(garbled, 401, 20003)
    with pytest.raises(TwilioRestException) as info:
        place(twilio_client(simulator.url, token="wrong"))
    assert (info.value.status, info.value.code) == (401, 20003)
    assert simulator.creates() == []


def test_another_accounts_path_answers_404(simulator, spec):
    other = "/2010-04-01/Accounts/AC" + "b2" * 16 + "/Calls.json"
    spec.check_error(raw(simulator, "POST", other, data=create_form()), 404, 20404,
                     CALLS_TEMPLATE)
    spec.check_error(raw(simulator, "GET", other), 404, 20404, CALLS_TEMPLATE, "get")
    assert simulator.creates() == []


def test_unknown_call_answers_404(simulator, client, spec):
    path = f"/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Calls/CA{'0' * 32}.json"
    spec.check_error(raw(simulator, "GET", path), 404, 20404, CALL_TEMPLATE, "get")
    spec.check_error(raw(simulator, "POST", path, data={"Status": "canceled"}), 404, 20404,
                     CALL_TEMPLATE)
    spec.check_error(raw(simulator, "DELETE", path), 404, 20404)
    with pytest.raises(TwilioRestException) as info:
        client.calls("CA" + "0" * 32).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)


def test_unknown_path_and_wrong_method_answer_json(simulator, spec):
    spec.check_error(raw(simulator, "GET", "/2010-04-01/Nope.json"), 404, 20404)
    spec.check_error(raw(simulator, "PUT", CALLS_PATH, data=create_form()), 405, 20004)
    spec.check_error(raw(simulator, "PATCH", CALLS_PATH), 405, 20004)


@pytest.mark.parametrize("content_type", [
    "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "text/plain",
])
def test_malformed_body_answers_4xx_never_500(simulator, spec, content_type):
    response = raw(simulator, "POST", CALLS_PATH, data=b"\xff\xfe\x00To=%FF\xc3",
                   headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    spec.check_error(response, response.status_code)
    assert simulator.calls() == []


@pytest.mark.parametrize(("overrides", "code", "names"), [
    ({"To": None}, 21201, "To"),
    ({"To": ""}, 21201, "To"),
    ({"To": "415-555-0100"}, 21211, "To"),
    ({"To": "+0123"}, 21211, "To"),
    ({"From": None}, 21213, "From"),
    ({"From": "somebody"}, 21212, "From"),
    ({"Url": None}, 21205, "Url"),
    ({"Url": "not a url"}, 21205, "Url"),
    ({"StatusCallback": "ftp://example.com/x"}, 21609, "StatusCallback"),
    ({"Timeout": "0"}, 20001, "Timeout"),
    ({"Timeout": "601"}, 20001, "Timeout"),
    ({"Timeout": "ten"}, 20001, "Timeout"),
    ({"TimeLimit": "-5"}, 20001, "TimeLimit"),
    ({"Method": "PUT"}, 20001, "Method"),
    ({"StatusCallbackMethod": "DELETE"}, 20001, "StatusCallbackMethod"),
    ({"StatusCallbackEvent": "hangup"}, 21626, "StatusCallbackEvent"),
    ({"Record": "maybe"}, 20001, "Record"),
])
def test_invalid_create_answers_400_naming_the_parameter(simulator, spec, overrides, code, names):
    response = raw(simulator, "POST", CALLS_PATH, data=create_form(**overrides))
    body = spec.check_error(response, 400, code, CALLS_TEMPLATE)
    assert names in body["message"]
    assert simulator.calls() == []
    assert simulator.creates()[-1].error_code == code


def test_twiml_instead_of_url(simulator):
    twiml = "<Response><Say>hi</Say></Response>"
    response = raw(simulator, "POST", CALLS_PATH, data=create_form(Url=None, Twiml=twiml))
    assert response.status_code == 201, response.text


# --- signing --------------------------------------------------------------------------------

def test_signature_matches_twilios_published_example():
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=200, deadline=None)
@given(token=printable.filter(bool), path=printable,
       params=st.dictionaries(printable, printable, max_size=8))
def test_signature_agrees_with_twilios_validator(token, path, params):
    url = "https://example.com/cb?q=" + path
    assert signature(token, url, params.items()) == RequestValidator(
        token).compute_signature(url, params)


class MultiDict:
    """The getall() shape twilio's validator reads repeated parameters from."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __iter__(self) -> Any:
        return iter(k for k, _ in self.pairs)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(["A", "B", "StatusCallbackEvent"]), printable),
                      max_size=8))
def test_signature_agrees_with_twilios_validator_on_repeated_params(pairs):
    url = "http://127.0.0.1:8000/status"
    assert signature("tok", url, pairs) == RequestValidator("tok").compute_signature(
        url, MultiDict(pairs))


# --- control API --------------------------------------------------------------------------------

def control(sim: Simulator, method: str, name: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sim.url}/_sim/{name}", timeout=10, **kwargs)


def test_control_scenario(simulator, client):
    response = control(simulator, "POST", "scenario",
                       json={"rules": {"+1415555*": ["busy", "answered:1"]}, "default": "failed"})
    assert response.status_code == 200 and response.json()["account_sid"] == SIM_ACCOUNT_SID
    assert wait_final(client, place(client).sid).status == "busy"
    assert wait_final(client, place(client).sid).status == "completed"
    assert wait_final(client, place(client, to="+12125550100").sid).status == "failed"
    for bad in ({"rules": {"+1*": "bogus"}}, {"default": "error:abc"}, {"rules": ["busy"]},
                {"rules": {"+1*": 5}}, {"rules": {"+1*": []}}, {"default": 5}, ["busy"]):
        response = control(simulator, "POST", "scenario", json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert set(response.json()) == ERROR_KEYS


def test_control_faults(simulator, client):
    response = control(simulator, "POST", "faults",
                       json={"api_error_rate": 1.0, "api_error_statuses": [503]})
    assert response.status_code == 200
    with pytest.raises(TwilioRestException) as info:
        place(client)
    assert info.value.status == 503
    for bad in ({"api_error_rate": 2}, {"callback_drop_rate": -1}, {"api_error_statuses": [404]},
                {"no_such_fault": 1}, {"api_latency": "slow"}):
        response = control(simulator, "POST", "faults", json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert set(response.json()) == ERROR_KEYS
    garbage = control(simulator, "POST", "faults", data=b"\xff{",
                      headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    assert control(simulator, "POST", "faults", json={}).status_code == 200  # back to none
    assert place(client).status == "queued"


def test_control_config_and_state(simulator):
    response = control(simulator, "POST", "config", json={"cps": 7, "strict": True})
    assert response.status_code == 200
    assert (response.json()["cps"], response.json()["strict"]) == (7.0, True)
    state = control(simulator, "GET", "state").json()
    assert (state["cps"], state["strict"], state["time_scale"]) == (7.0, True, 0.01)
    assert control(simulator, "POST", "config", json={"cps": 0}).status_code == 400


def test_control_records_and_reset(simulator, client, callback_listener):
    call = place(client, status_callback=callback_listener.url)
    wait_final(client, call.sid)
    wait_callbacks(callback_listener, call.sid, 1)
    with pytest.raises(TwilioRestException):
        place(client, to="bad")
    creates = control(simulator, "GET", "creates").json()
    assert [(c["to"], c["status"], c["sid"], c["error_code"]) for c in creates] == [
        (TO, 201, call.sid, None), ("bad", 400, None, 21211)]
    assert creates[0]["params"]["To"] == [TO] and creates[0]["from_"] == FROM
    calls = control(simulator, "GET", "calls").json()
    assert [(c["sid"], c["status"]) for c in calls] == [(call.sid, "completed")]
    callbacks = wait_for(lambda: control(simulator, "GET", "callbacks").json())
    assert [(c["call_sid"], c["call_status"], c["response_status"]) for c in callbacks] == [
        (call.sid, "completed", 204)]
    assert callbacks[0]["params"]["CallSid"] == call.sid
    reset = control(simulator, "POST", "reset")
    assert reset.status_code == 200 and reset.json()["calls"] == 0
    for name in ("creates", "calls", "callbacks"):
        assert control(simulator, "GET", name).json() == []
    assert client.calls.list() == []


def test_reset_cancels_calls_in_flight(simulator, client, callback_listener):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client, status_callback=callback_listener.url)
    wait_status(client, call.sid, {"in-progress"})
    simulator.reset()
    assert simulator.calls() == [] and simulator.creates() == []
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).fetch()
    assert info.value.status == 404
    assert place(client).sid == call.sid  # the SID stream starts again from the seed


# --- determinism --------------------------------------------------------------------------------

def test_same_seed_same_sids(callback_listener):
    def sids(seed: int, wait_each: bool) -> list[str]:
        with Simulator(SIM_ACCOUNT_SID, SIM_AUTH_TOKEN, cps=1000, time_scale=0.01,
                       seed=seed) as sim:
            client = twilio_client(sim.url)
            out = []
            for _ in range(5):
                # Callbacks and recordings draw randomness as calls progress; they must not
                # shift the SIDs of the creates that follow.
                call = place(client, record=True, status_callback=callback_listener.url,
                             status_callback_event=ALL_EVENTS)
                out.append(call.sid)
                if wait_each:
                    wait_final(client, call.sid)
            return out

    first = sids(42, wait_each=False)
    assert first == sids(42, wait_each=True)
    assert len(set(first)) == 5
    assert sids(43, wait_each=False) != first


# --- CLI ----------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "simulator", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_signalled(stop):
    port = free_port()
    proc = run_cli("--port", str(port), "--seed", "1", "--time-scale", "0.01",
                   "--account-sid", SIM_ACCOUNT_SID, "--auth-token", SIM_AUTH_TOKEN)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=20,
                 what="the simulator CLI to listen")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)", first_line)
        assert url and int(url.group(1)) == port, first_line
        client = twilio_client(url.group(0))
        assert wait_final(client, place(client).sid).status == "completed"
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "simulator stopped" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [None, "{not json", '["busy"]', '{"rules": ["busy"]}',
                                     '{"rules": {"+1*": "sometimes"}}', '{"rules": {"+1*": 3}}'])
def test_cli_refuses_a_bad_scenario_file(tmp_path, content):
    path = tmp_path / "scenario.json"
    if content is not None:
        path.write_text(content)
    proc = run_cli("--port", str(free_port()), "--scenario", str(path))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, (out, err)
    assert "--scenario" in err and "Traceback" not in err


def test_cli_refuses_a_bad_account_sid():
    proc = run_cli("--port", str(free_port()), "--account-sid", "nope")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--account-sid" in err and "Traceback" not in err


# --- scenarios, pure ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("answered", Outcome("answered", DEFAULT_TALK_S)),
    ("answered:30", Outcome("answered", 30.0)),
    (" machine:2.5 ", Outcome("machine", 2.5)),
    ("answered:0", Outcome("answered", 0.0)),
    ("busy", Outcome("busy")),
    ("no-answer", Outcome("no-answer")),
    ("failed", Outcome("failed")),
    ("error:21217", Outcome("error", error_code=21217)),
])
def test_outcome_parse(text, expected):
    assert Outcome.parse(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("hangup", "expected one of answered, machine, busy, no-answer, failed, error"),
    ("", "expected one of"),
    ("error", "error needs a numeric code"),
    ("error:abc", "error needs a numeric code"),
    ("answered:long", "talk time must be seconds"),
    ("machine:-1", "talk time must not be negative"),
    ("busy:3", "busy takes no argument"),
    ("no-answer:3", "no-answer takes no argument"),
    (7, "expected text"),
])
def test_outcome_parse_names_the_problem(text, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        Outcome.parse(text)
    assert repr(text) in str(info.value)


def test_scenario_rules():
    scenario = Scenario({"+1415*": ["busy", "answered:3"], "+14155550100": "failed",
                         "+1*": ("no-answer",)}, default="machine")
    assert scenario.outcome("+14155550100", 1).kind == "failed"
    assert [scenario.outcome("+14155550101", n).kind for n in (1, 2, 3)] == [
        "busy", "answered", "answered"]
    assert scenario.outcome("+14155550101", 9).talk_s == 3
    assert scenario.outcome("+12125550100", 1).kind == "no-answer"
    assert scenario.outcome("+442071234567", 1).kind == "machine"
    assert Scenario().outcome(TO, 1) == Outcome("answered")


@pytest.mark.parametrize(("rules", "problem"), [
    ({"+1*": []}, "empty list of outcomes"),
    ({"+1*": ["busy", "ringing"]}, "'ringing'"),
    ({"+1*": 3}, "'+1*'"),
    (["busy"], "must map"),
])
def test_scenario_names_the_problem(rules, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        Scenario(rules)


def test_timeline_constants_are_what_the_docs_say():
    assert (DIAL_S, RING_S, BUSY_S, FAIL_S) == (1.0, 3.0, 2.0, 0.5)
