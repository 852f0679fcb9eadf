"""The simulator against Twilio's documented behaviour beyond placing a call: recordings,
asynchronous answering machine detection, applications, modifying a call in progress,
callback URLs as given, the forms of StatusCallbackEvent, SIP and client endpoints, and the
display form of numbers. Driven by the official client; every callback checked with
twilio's RequestValidator; every 2xx JSON answer checked against Twilio's OpenAPI spec."""

from __future__ import annotations

import io
import re
import wave
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from harness.waiting import wait_for
from simulator import Simulator
from simulator.engine import AMD_MESSAGE_END_S, AMD_S
from tests.data import TWILIO_OPENAPI
from tests.integration.test_simulator import (
    AUTH,
    CALLS_PATH,
    FROM,
    TO,
    VOICE_URL,
    Spec,
    callbacks_for,
    create_form,
    header,
    place,
    raw,
    signed_correctly,
    twilio_client,
    wait_callbacks,
    wait_final,
    wait_status,
)
from tests.support.simulator_fixtures import SIM_ACCOUNT_SID, CallbackListener, Received

pytestmark = pytest.mark.integration

ACCOUNT = f"/2010-04-01/Accounts/{SIM_ACCOUNT_SID}"
RECORDING_PARAMS = {"AccountSid", "CallSid", "RecordingSid", "RecordingUrl", "RecordingStatus",
                    "RecordingDuration", "RecordingChannels", "RecordingStartTime",
                    "RecordingSource", "RecordingTrack"}
AMD_PARAMS = {"AccountSid", "CallSid", "AnsweredBy", "MachineDetectionDuration"}
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture(scope="module")
def spec() -> Spec:
    assert TWILIO_OPENAPI.exists(), f"Twilio's OpenAPI spec is missing: {TWILIO_OPENAPI}"
    return Spec(TWILIO_OPENAPI)


@pytest.fixture
def client(simulator: Simulator) -> Client:
    return twilio_client(simulator.url)


def at(listener: CallbackListener, path: str, sid: str) -> list[Received]:
    return [r for r in callbacks_for(listener, sid) if r.path.split("?")[0] == path]


def wait_at(listener: CallbackListener, path: str, sid: str, count: int) -> list[Received]:
    return wait_for(lambda: len(got := at(listener, path, sid)) >= count and got,
                    timeout=10, what=f"{count} callbacks at {path} for {sid}")


def check_signed(listener: CallbackListener, received: Received) -> None:
    assert signed_correctly(listener, received), received
    assert not signed_correctly(listener, received, token="another-token")
    if received.method == "POST":
        assert header(received, "Content-Type") == FORM


# --- 1. RecordingStatusCallback -------------------------------------------------------------

def test_recording_status_callback_comes_after_the_call_ends(client, callback_listener):
    url = callback_listener.url
    call = place(client, record=True, recording_status_callback=url + "/rec",
                 status_callback=url + "/status")
    wait_callbacks(callback_listener, call.sid, 2)
    got = callbacks_for(callback_listener, call.sid)
    assert [r.path for r in got] == ["/status", "/rec"]  # the recording is ready after the end
    done, recorded = (dict(r.form) for r in got)
    assert set(recorded) == RECORDING_PARAMS
    assert re.fullmatch(r"RE[0-9a-f]{32}", recorded["RecordingSid"])
    assert recorded["RecordingSid"] == done["RecordingSid"]
    assert (recorded["AccountSid"], recorded["CallSid"]) == (SIM_ACCOUNT_SID, call.sid)
    assert recorded["RecordingUrl"] == done["RecordingUrl"]
    assert recorded["RecordingUrl"].endswith(f"{ACCOUNT}/Recordings/{recorded['RecordingSid']}")
    assert recorded["RecordingStatus"] == "completed"
    assert recorded["RecordingDuration"] == done["CallDuration"]
    assert (recorded["RecordingChannels"], recorded["RecordingSource"],
            recorded["RecordingTrack"]) == ("1", "OutboundAPI", "both")
    parsedate_to_datetime(recorded["RecordingStartTime"])
    assert got[1].method == "POST"
    check_signed(callback_listener, got[1])


@pytest.mark.parametrize("events", [["in-progress", "completed"], "in-progress completed"])
def test_recording_status_callback_events_repeated_or_space_separated(client,
                                                                      callback_listener, events):
    call = place(client, record=True, recording_status_callback=callback_listener.url + "/rec",
                 recording_status_callback_event=events, recording_channels="dual",
                 recording_track="inbound")
    got = wait_at(callback_listener, "/rec", call.sid, 2)
    wait_final(client, call.sid)
    assert [r.param("RecordingStatus") for r in got] == ["in-progress", "completed"]
    assert got[0].param("RecordingDuration") is None
    assert {r.param("RecordingSid") for r in got} == {got[0].param("RecordingSid")}
    assert {(r.param("RecordingChannels"), r.param("RecordingTrack")) for r in got} == {
        ("2", "inbound")}
    for received in got:
        check_signed(callback_listener, received)


def test_recording_status_callback_by_get(client, callback_listener):
    call = place(client, record=True, recording_status_callback=callback_listener.url + "/rec",
                 recording_status_callback_method="GET")
    [got] = wait_at(callback_listener, "/rec", call.sid, 1)
    assert got.method == "GET" and {k for k, _ in got.form} == RECORDING_PARAMS
    check_signed(callback_listener, got)


def test_a_silent_recording_is_absent(simulator, client, callback_listener):
    simulator.set_scenario({TO: "answered:0"})
    call = place(client, record=True, recording_status_callback=callback_listener.url + "/rec",
                 recording_status_callback_event=["absent", "completed"])
    [got] = wait_at(callback_listener, "/rec", call.sid, 1)
    assert got.param("RecordingStatus") == "absent" and got.param("RecordingDuration") == "0"
    assert client.recordings(got.param("RecordingSid")).fetch().status == "absent"


def test_an_unanswered_call_has_no_recording(simulator, client, callback_listener):
    simulator.set_scenario({TO: "busy"})
    call = place(client, record=True, recording_status_callback=callback_listener.url + "/rec",
                 status_callback=callback_listener.url + "/status")
    wait_at(callback_listener, "/status", call.sid, 1)
    assert client.calls(call.sid).recordings.list() == []
    assert at(callback_listener, "/rec", call.sid) == []
    assert simulator.callbacks("recording") == []


def test_recording_callbacks_have_their_own_kind(simulator, client, callback_listener):
    call = place(client, record=True, recording_status_callback=callback_listener.url + "/rec",
                 status_callback=callback_listener.url + "/status")
    wait_callbacks(callback_listener, call.sid, 2)
    [status] = wait_for(lambda: simulator.callbacks())
    [recording] = wait_for(lambda: simulator.callbacks("recording"))
    assert (status.kind, status.call_status, status.sequence_number) == ("status", "completed", 0)
    assert (recording.kind, recording.call_sid, recording.response_status) == (
        "recording", call.sid, 204)
    listed = requests.get(f"{simulator.url}/_sim/callbacks", params={"kind": "recording"},
                          timeout=10).json()
    assert [r["params"]["RecordingSid"] for r in listed] == [recording.params["RecordingSid"]]
    assert requests.get(f"{simulator.url}/_sim/callbacks", params={"kind": "x"},
                        timeout=10).status_code == 400


@pytest.mark.parametrize("overrides", [{"RecordingStatusCallbackEvent": "finished"},
                                       {"RecordingStatusCallback": "not a url"},
                                       {"RecordingStatusCallbackMethod": "PUT"},
                                       {"RecordingChannels": "stereo"}])
def test_invalid_recording_parameters_are_refused(simulator, overrides):
    response = raw(simulator, "POST", CALLS_PATH, data=create_form(Record="true", **overrides))
    assert response.status_code == 400 and response.json()["code"] == 20001
    assert next(iter(overrides)) in response.json()["message"]


# --- 2. the Recordings resource and its media -----------------------------------------------

def recorded_call(client: Client, listener: CallbackListener) -> tuple[Any, str]:
    call = place(client, record=True, recording_status_callback=listener.url + "/rec")
    [got] = wait_at(listener, "/rec", call.sid, 1)
    return call, got.param("RecordingSid") or ""


def test_recording_resources_match_the_spec(simulator, client, callback_listener, spec):
    call, sid = recorded_call(client, callback_listener)
    for path in (f"{ACCOUNT}/Recordings/{sid}.json", f"{ACCOUNT}/Calls/{call.sid}/Recordings.json",
                 f"{ACCOUNT}/Calls/{call.sid}/Recordings/{sid}.json", f"{ACCOUNT}/Recordings.json"):
        response = raw(simulator, "GET", path)
        assert response.status_code == 200, (path, response.text)
        spec.validate("get", path, response)
    fetched = client.recordings(sid).fetch()
    assert (fetched.sid, fetched.call_sid, fetched.status, fetched.source) == (
        sid, call.sid, "completed", "OutboundAPI")
    assert fetched.duration == client.calls(call.sid).fetch().duration
    assert [r.sid for r in client.calls(call.sid).recordings.list()] == [sid]
    assert client.calls(call.sid).recordings(sid).fetch().track == "both"
    assert [r.sid for r in client.recordings.list(call_sid=call.sid)] == [sid]
    missing = raw(simulator, "GET", f"{ACCOUNT}/Recordings/RE{'0' * 32}.json")
    spec.check_error(missing, 404, 20404)


def test_recording_media_is_a_small_wav_or_mp3_behind_basic_auth(simulator, client,
                                                                 callback_listener):
    _, sid = recorded_call(client, callback_listener)
    media = f"{simulator.url}{ACCOUNT}/Recordings/{sid}"
    for suffix in ("", ".wav"):
        response = requests.get(media + suffix, auth=AUTH, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"] == "audio/x-wav"
        assert len(response.content) < 10_000
        with wave.open(io.BytesIO(response.content)) as audio:
            assert (audio.getnchannels(), audio.getframerate()) == (1, 8000)
            assert audio.getnframes() > 0
    mp3 = requests.get(media + ".mp3", auth=AUTH, timeout=10)
    assert mp3.status_code == 200 and mp3.headers["Content-Type"] == "audio/mpeg"
    assert mp3.content[:2] == b"\xff\xfb" and len(mp3.content) < 10_000  # an MPEG-1 L3 frame
    assert requests.get(media, timeout=10).status_code == 401


# --- 3. asynchronous answering machine detection --------------------------------------------

@pytest.mark.parametrize(("detection", "outcome", "answered_by", "after_s"), [
    ("Enable", "machine:30", "machine_start", AMD_S),
    ("DetectMessageEnd", "machine:30", "machine_end_beep", AMD_MESSAGE_END_S),
    ("Enable", "answered:30", "human", AMD_S),
])
def test_async_amd_reports_only_to_its_own_callback(simulator, client, callback_listener,
                                                    detection, outcome, answered_by, after_s):
    simulator.set_scenario({TO: outcome})
    url = callback_listener.url
    call = place(client, machine_detection=detection, async_amd="true",
                 async_amd_status_callback=url + "/amd", status_callback=url + "/status",
                 status_callback_event=["answered", "completed"])
    [amd] = wait_at(callback_listener, "/amd", call.sid, 1)
    statuses = wait_at(callback_listener, "/status", call.sid, 2)
    assert [r.path for r in callbacks_for(callback_listener, call.sid)] == [
        "/status", "/amd", "/status"]  # connected first; the verdict comes while it talks
    assert all(r.param("AnsweredBy") is None for r in statuses)
    assert {k for k, _ in amd.form} == AMD_PARAMS and amd.method == "POST"
    assert (amd.param("AnsweredBy"), amd.param("CallSid")) == (answered_by, call.sid)
    assert amd.param("MachineDetectionDuration") == str(round(after_s * 1000))
    check_signed(callback_listener, amd)
    assert wait_final(client, call.sid).answered_by == answered_by
    assert int(client.calls(call.sid).fetch().duration) == 30
    [record] = simulator.callbacks("amd")
    assert record.params["AnsweredBy"] == answered_by


def test_async_amd_callback_by_get(simulator, client, callback_listener):
    call = place(client, machine_detection="Enable", async_amd="true",
                 async_amd_status_callback=callback_listener.url + "/amd?x=1",
                 async_amd_status_callback_method="GET")
    [amd] = wait_at(callback_listener, "/amd", call.sid, 1)
    assert amd.method == "GET" and amd.param("x") == "1"
    check_signed(callback_listener, amd)


def test_amd_without_async_reports_in_the_status_callbacks(simulator, client,
                                                           callback_listener):
    simulator.set_scenario({TO: "machine"})
    call = place(client, machine_detection="Enable", async_amd="false",
                 async_amd_status_callback=callback_listener.url + "/amd",
                 status_callback=callback_listener.url + "/status",
                 status_callback_event=["answered", "completed"])
    got = wait_at(callback_listener, "/status", call.sid, 2)
    assert [r.param("AnsweredBy") for r in got] == ["machine_start", "machine_start"]
    assert at(callback_listener, "/amd", call.sid) == []


@pytest.mark.parametrize("overrides", [{"AsyncAmd": "True"}, {"AsyncAmd": "yes"},
                                       {"MachineDetection": "enable"},
                                       {"AsyncAmdStatusCallback": "ftp://example.com/amd"},
                                       {"AsyncAmdStatusCallbackMethod": "PUT"},
                                       {"MachineDetectionTimeout": "60"}])
def test_invalid_amd_parameters_are_refused(simulator, overrides):
    form = create_form(MachineDetection="Enable") | overrides
    response = raw(simulator, "POST", CALLS_PATH, data=form)
    assert response.status_code == 400 and response.json()["code"] == 20001
    assert next(iter(overrides)) in response.json()["message"]


# --- 4. applications ---------------------------------------------------------------------------

def test_applications_with_the_official_client_match_the_spec(simulator, client, spec):
    app = client.applications.create(friendly_name="dialer", voice_url=VOICE_URL,
                                     voice_method="GET",
                                     status_callback="http://example.com/status")
    assert re.fullmatch(r"AP[0-9a-f]{32}", app.sid)
    assert (app.voice_url, app.voice_method, app.status_callback_method) == (
        VOICE_URL, "GET", "POST")
    path = f"{ACCOUNT}/Applications/{app.sid}.json"
    created = raw(simulator, "POST", f"{ACCOUNT}/Applications.json",
                  data={"FriendlyName": "other"})
    assert created.status_code == 201
    spec.validate("post", f"{ACCOUNT}/Applications.json", created)
    for method, target, data in (("get", path, None), ("post", path, {"VoiceMethod": "POST"}),
                                 ("get", f"{ACCOUNT}/Applications.json", None)):
        response = raw(simulator, method.upper(), target, data=data)
        assert response.status_code == 200, response.text
        spec.validate(method, target, response)
    assert client.applications(app.sid).update(status_callback_method="GET").voice_method == (
        "POST")
    assert [a.sid for a in client.applications.list(friendly_name="dialer")] == [app.sid]
    assert client.applications(app.sid).delete() is True
    with pytest.raises(TwilioRestException) as info:
        client.applications(app.sid).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)
    bad = raw(simulator, "POST", f"{ACCOUNT}/Applications.json", data={"VoiceUrl": "nope"})
    assert bad.status_code == 400 and "VoiceUrl" in bad.json()["message"]


@pytest.mark.parametrize("sid", ["AP" + "c3" * 16, "AP123", "PN" + "c3" * 16])
def test_an_unknown_application_is_refused_with_21218(simulator, client, sid):
    with pytest.raises(TwilioRestException) as info:
        place(client, url=None, application_sid=sid)
    assert (info.value.status, info.value.code) == (400, 21218)
    assert simulator.calls() == []


def test_an_application_takes_the_calls_twiml_and_status_callbacks(simulator, client,
                                                                   callback_listener):
    url = callback_listener.url
    app = client.applications.create(voice_url=VOICE_URL + "/app",
                                     status_callback=url + "/app-status",
                                     status_callback_method="GET")
    call = place(client, url="http://ignored.example.com/x", method="GET",
                 application_sid=app.sid, status_callback=url + "/status",
                 status_callback_event=["initiated", "ringing", "answered", "completed"])
    [done] = wait_at(callback_listener, "/app-status", call.sid, 1)
    wait_final(client, call.sid)
    assert done.method == "GET" and done.param("CallStatus") == "completed"
    check_signed(callback_listener, done)
    assert at(callback_listener, "/status", call.sid) == []
    [played] = simulator.instructions(call.sid)
    assert (played["source"], played["url"], played["method"], played["application_sid"]) == (
        "create", VOICE_URL + "/app", "POST", app.sid)


def test_an_application_ignores_the_creates_own_urls_unchecked(simulator, client):
    app = client.applications.create(voice_url=VOICE_URL)
    form = create_form(Url="not a url", ApplicationSid=app.sid, StatusCallbackEvent="hangup",
                       StatusCallback="also not a url")
    assert raw(simulator, "POST", CALLS_PATH, data=form).status_code == 201


# --- 5. modifying a call in progress ---------------------------------------------------------

def test_redirect_a_call_in_progress_by_url_then_twiml(simulator, client, callback_listener):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client, status_callback=callback_listener.url + "/status")
    wait_status(client, call.sid, {"in-progress"})
    moved = client.calls(call.sid).update(url=VOICE_URL + "/next", method="GET")
    assert moved.status == "in-progress"
    twiml = "<Response><Say>bye</Say></Response>"
    assert client.calls(call.sid).update(twiml=twiml).status == "in-progress"
    steps = simulator.instructions(call.sid)
    assert [(s["source"], s["url"], s["method"], s["twiml"]) for s in steps] == [
        ("create", VOICE_URL, "POST", None), ("redirect", VOICE_URL + "/next", "GET", None),
        ("redirect", None, None, twiml)]
    assert steps[0]["at"] <= steps[1]["at"] <= steps[2]["at"]
    over_http = requests.get(f"{simulator.url}/_sim/calls/{call.sid}/instructions", timeout=10)
    assert over_http.json() == steps
    assert client.calls(call.sid).fetch().status == "in-progress"  # the call goes on
    client.calls(call.sid).update(status="completed")
    [done] = wait_at(callback_listener, "/status", call.sid, 1)
    assert done.param("CallStatus") == "completed"


def test_only_a_call_in_progress_can_be_redirected(simulator, client):
    simulator.set_scenario({TO: "no-answer"})
    ringing = place(client, timeout=600)
    wait_status(client, ringing.sid, {"ringing"})
    with pytest.raises(TwilioRestException) as info:
        client.calls(ringing.sid).update(url=VOICE_URL)
    assert (info.value.status, info.value.code) == (400, 21220)
    client.calls(ringing.sid).update(status="canceled")
    with pytest.raises(TwilioRestException) as info:
        client.calls(ringing.sid).update(twiml="<Response/>")
    assert (info.value.status, info.value.code) == (400, 21220)
    with Simulator(SIM_ACCOUNT_SID, AUTH[1], cps=0.1, time_scale=0.01) as slow:
        paced = twilio_client(slow.url)
        place(paced)
        queued = place(paced)  # waits 10 s for its slot
        with pytest.raises(TwilioRestException) as info:
            paced.calls(queued.sid).update(url=VOICE_URL)
        assert info.value.code == 21220
    assert len(simulator.instructions(ringing.sid)) == 1


def test_status_with_url_ends_the_call_and_plays_nothing(simulator, client):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client)
    wait_status(client, call.sid, {"in-progress"})
    ended = client.calls(call.sid).update(status="completed", url=VOICE_URL + "/next")
    assert ended.status == "completed"
    assert [s["source"] for s in simulator.instructions(call.sid)] == ["create"]


@pytest.mark.parametrize(("form", "code", "names"), [
    ({"Url": "not a url"}, 21205, "Url"),
    ({"Url": VOICE_URL, "Twiml": "<Response/>"}, 20001, "Twiml"),
    ({"Url": VOICE_URL, "Method": "PUT"}, 20001, "Method"),
    ({"Twiml": "x" * 4001}, 20001, "Twiml"),
    ({"StatusCallback": "nope"}, 21609, "StatusCallback"),
])
def test_redirect_is_validated_like_a_create(simulator, client, form, code, names):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client)
    wait_status(client, call.sid, {"in-progress"})
    response = raw(simulator, "POST", call.uri, data=form)
    assert response.status_code == 400 and response.json()["code"] == code
    assert names in response.json()["message"]
    assert len(simulator.instructions(call.sid)) == 1


def test_an_update_moves_the_status_callback(simulator, client, callback_listener):
    simulator.set_scenario({TO: "answered:600"})
    call = place(client, status_callback=callback_listener.url + "/old")
    wait_status(client, call.sid, {"in-progress"})
    client.calls(call.sid).update(url=VOICE_URL, status_callback=callback_listener.url + "/new",
                                  status_callback_method="GET")
    client.calls(call.sid).update(status="completed")
    [done] = wait_at(callback_listener, "/new", call.sid, 1)
    assert done.method == "GET" and at(callback_listener, "/old", call.sid) == []
    check_signed(callback_listener, done)


def test_instructions_of_an_unknown_call_answer_404(simulator):
    response = requests.get(f"{simulator.url}/_sim/calls/CA{'0' * 32}/instructions", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == 20404


def test_twiml_is_ignored_when_url_is_given(simulator, client):
    call = place(client, twiml="<Response/>")
    [played] = simulator.instructions(call.sid)
    assert (played["url"], played["twiml"]) == (VOICE_URL, None)


# --- 6. callback URLs exactly as given --------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("kind", ["status", "recording", "amd"])
def test_callback_urls_keep_their_percent_escapes(simulator, client, callback_listener, kind,
                                                  method):
    target = callback_listener.url + "/cb?tags=a%2Cb&n=1"
    options: dict[str, Any] = {
        "status": {"status_callback": target, "status_callback_method": method},
        "recording": {"record": True, "recording_status_callback": target,
                      "recording_status_callback_method": method},
        "amd": {"machine_detection": "Enable", "async_amd": "true",
                "async_amd_status_callback": target,
                "async_amd_status_callback_method": method},
    }[kind]
    call = place(client, **options)
    [got] = wait_at(callback_listener, "/cb", call.sid, 1)
    assert got.path.startswith("/cb?tags=a%2Cb&n=1")
    assert parse_qs(urlsplit(got.path).query)["tags"] == ["a,b"]
    check_signed(callback_listener, got)


def test_the_application_status_callback_keeps_its_escapes(client, callback_listener):
    app = client.applications.create(voice_url=VOICE_URL,
                                     status_callback=callback_listener.url + "/cb?t=a%2Cb")
    call = place(client, url=None, application_sid=app.sid)
    [got] = wait_at(callback_listener, "/cb", call.sid, 1)
    assert got.path == "/cb?t=a%2Cb"
    check_signed(callback_listener, got)


# --- 7. the forms of StatusCallbackEvent -----------------------------------------------------

@pytest.mark.parametrize("events", ["initiated ringing answered completed",
                                    "initiated,ringing,answered,completed",
                                    ["initiated ringing", "answered", "completed"]])
def test_status_callback_events_in_one_value_or_several(client, callback_listener, events):
    call = place(client, status_callback=callback_listener.url + "/status",
                 status_callback_event=events)
    got = wait_callbacks(callback_listener, call.sid, 4)
    assert [r.param("CallStatus") for r in got] == ["initiated", "ringing", "in-progress",
                                                    "completed"]


@pytest.mark.parametrize("events", ["queued", "initiated hangup", "in-progress"])
def test_an_invalid_status_callback_event_is_21626(simulator, events):
    response = raw(simulator, "POST", CALLS_PATH,
                   data=create_form(StatusCallback="http://example.com/s",
                                    StatusCallbackEvent=events))
    assert response.status_code == 400 and response.json()["code"] == 21626
    assert "StatusCallbackEvent" in response.json()["message"]


# --- 8. SIP and client endpoints -------------------------------------------------------------

@pytest.mark.parametrize(("to", "from_"), [
    ("sip:kate@example.com?hatchkey=4815162342", "Jack"),  # the example of "Making calls"
    ("sip:kate@example.com", FROM),
    ("client:kate", "client:jack"),
    ("client:kate", FROM),
    ("client:kate", "jack"),
])
def test_sip_and_client_endpoints_are_accepted(client, to, from_):
    call = place(client, to=to, from_=from_)
    assert (call.to, call._from, call.to_formatted, call.from_formatted) == (
        to, from_, to, from_ if not from_.startswith("+") else "(415) 555-0199")
    assert wait_final(client, call.sid).status == "completed"


@pytest.mark.parametrize(("to", "from_", "code"), [
    (TO, "client:jack", 21212),  # a phone number To needs a phone number From
    (TO, "Jack", 21212),
    ("sip:nobody", "Jack", 21211),
    ("sip:kate@" + "x" * 260 + ".com", "Jack", 21211),
    ("client:", FROM, 21211),
    ("client:kate", "jack smith", 21212),
])
def test_endpoints_twilio_refuses(simulator, to, from_, code):
    response = raw(simulator, "POST", CALLS_PATH, data=create_form(To=to, From=from_))
    assert response.status_code == 400 and response.json()["code"] == code
    assert simulator.calls() == []


# --- 9. display forms ---------------------------------------------------------------------------

@pytest.mark.parametrize(("number", "shown"), [
    ("+14155550100", "(415) 555-0100"), ("+16175551212", "(617) 555-1212"),
    ("+442071838750", "+442071838750"),  # the spec: non-North American numbers in E.164
])
def test_numbers_are_formatted_for_display(client, number, shown):
    call = place(client, to=number, from_=number)
    assert (call.to_formatted, call.from_formatted) == (shown, shown)
    assert client.calls(call.sid).fetch().to_formatted == shown
