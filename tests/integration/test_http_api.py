"""The producer API over real HTTP: gunicorn running "api:create_app()" on SQLite and
PostgreSQL, real Redis, keys made as an operator makes them. Every response is checked
against api/openapi.json (tests/support/api_fixtures.py)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from openapi_spec_validator import validate

from harness.stack import start_api
from harness.waiting import free_port, wait_for
from tests.support.api_fixtures import (
    API_MAX_BODY,
    ApiClient,
    ApiServer,
    number,
    openapi_document,
    problem,
)
from worker.demo.processes import stop_all
from worker.producer.api_keys import create_api_key, revoke_api_key
from worker.producer.jobs import get_jobs
from worker.producer.reports import find_jobs

pytestmark = pytest.mark.integration

VOICE_URL = "https://example.com/voice.xml"



def call(**fields: object) -> dict[str, object]:
    return {"to": number(), "url": VOICE_URL, **fields}



def stored(api_server: ApiServer, to: str) -> list[str]:
    return [job.id for job in find_jobs(api_server.ctx, to=to)]


# --- the document -----------------------------------------------------------------------


def test_the_openapi_document_is_served_without_a_key_and_is_valid(api_server):
    response = api_server.client().get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document()
    validate(response.json())
    assert response.json()["openapi"].startswith("3.1")


# --- keys -------------------------------------------------------------------------------


def test_no_key_a_wrong_key_or_a_revoked_key_is_refused_and_nothing_is_stored(api_server):
    info, token = create_api_key(api_server.ctx, "soon revoked")
    revoke_api_key(api_server.ctx, info.id)
    to = number()
    clients = {
        "none": api_server.client(),
        "unknown": api_server.client("dk_" + "x" * 43),
        "malformed": api_server.client("not-a-key"),
        "revoked": api_server.client(token),
    }
    for name, client in clients.items():
        response = client.post("/v1/calls", json={"to": to, "url": VOICE_URL})
        assert problem(response, 401).startswith("Authorization:"), name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        problem(client.get("/v1/calls"), 401)
    session = requests.Session()
    response = session.post(f"{api_server.url}/v1/calls", json={"to": to, "url": VOICE_URL},
                            headers={"Authorization": f"Basic {token}"})
    problem(response, 401)
    assert stored(api_server, to) == []


def test_a_key_revoked_while_in_use_is_refused_within_a_second(api_server):
    info, token = create_api_key(api_server.ctx, "revoked in use")
    client = api_server.client(token)
    assert client.get("/v1/calls", params={"limit": 1}).status_code == 200
    revoke_api_key(api_server.ctx, info.id)
    # The API trusts a key it checked for KEY_CHECKED_FOR_S (1 s); the deadline is loose
    # for a loaded machine, and a key trusted for good fails it.
    wait_for(lambda: client.get("/v1/calls", params={"limit": 1}).status_code == 401,
             timeout=15, what="the revoked key refused")
    problem(client.post("/v1/calls", json={"to": number(), "url": VOICE_URL}), 401)


def test_a_read_only_key_reads_but_cannot_write(api_server):
    reader = api_server.client(api_server.key(["read"]))
    to = number()
    assert reader.get("/v1/calls", params={"to": to}).json() == {"data": [],
                                                                 "next_cursor": None}
    assert "'write'" in problem(reader.post("/v1/calls", json={"to": to, "url": VOICE_URL}),
                                403)
    problem(reader.post("/v1/do-not-call", json={"numbers": [to]}), 403)
    assert stored(api_server, to) == []
    writer = api_server.client(api_server.key(["write"]))
    problem(writer.get("/v1/calls"), 403)


# --- enqueue ----------------------------------------------------------------------------


def test_a_call_is_stored_and_answered_as_the_document_says(api, api_server):
    body = call(metadata={"order": 17}, call_options={"timeout": 20}, max_attempts=2,
                retry_delays=[5])
    response = api.post("/v1/calls", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/calls/{job['id']}"
    assert (job["to"], job["from"], job["url"], job["twiml"]) == (
        body["to"], "+14155550100", VOICE_URL, None)
    assert job["status"] == "queued" and job["attempts"] == []
    assert job["metadata"] == {"order": 17} and job["call_options"] == {"timeout": 20}
    assert job["max_attempts"] == 2 and job["retry_delays"] == [5]
    assert datetime.fromisoformat(job["created_at"]).utcoffset() == timedelta(0)
    assert api.get(f"/v1/calls/{job['id']}").json() == job
    assert stored(api_server, body["to"]) == [job["id"]]


def test_a_scheduled_call_waits_and_a_time_without_offset_is_refused(api, api_server):
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    job = api.post("/v1/calls", json=call(scheduled_at=at.isoformat())).json()
    assert job["status"] == "scheduled"
    assert datetime.fromisoformat(job["next_attempt_at"]) == at
    assert api.get(f"/v1/calls/{job['id']}").json() == job
    body = call(scheduled_at="2030-01-02T09:00:00")
    detail = problem(api.post("/v1/calls", json=body), 400)
    assert detail.startswith("scheduled_at:") and "offset" in detail
    assert stored(api_server, body["to"]) == []


def test_the_same_idempotency_key_gives_the_same_call_and_a_different_call_conflicts(
        api, api_server):
    key = uuid.uuid4().hex
    body = call()
    first = api.post("/v1/calls", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    again = api.post("/v1/calls", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.json() == first.json() and again.json()["idempotency_key"] == key
    # The body's field is the same key as the header.
    assert api.post("/v1/calls", json={**body, "idempotency_key": key}).status_code == 200
    other = {**body, "url": "https://example.com/other.xml"}
    detail = problem(api.post("/v1/calls", json=other, headers={"Idempotency-Key": key}), 409)
    assert detail.startswith("idempotency_key:") and first.json()["id"] in detail
    assert stored(api_server, body["to"]) == [first.json()["id"]]
    assert problem(api.post("/v1/calls", json={**body, "idempotency_key": "a"},
                            headers={"Idempotency-Key": "b"}), 400).startswith(
        "idempotency_key:")


@pytest.mark.parametrize(("fields", "named"), [
    ({"from": "not a number"}, "from:"),
    ({"to": "12"}, "to:"),
    ({"url": "ftp://example.com/x"}, "url:"),
    ({"max_attempts": 0}, "max_attempts:"),
    ({"metadata": [1]}, "metadata:"),
    ({"speed": 3, "colour": "red"}, "colour: unknown field; speed: unknown field"),
])
def test_a_bad_field_is_named_as_the_client_wrote_it(api, api_server, fields, named):
    to = number()
    body = {"to": to, "url": VOICE_URL, **fields}
    assert problem(api.post("/v1/calls", json=body), 400).startswith(named)
    assert stored(api_server, to) == []


def test_a_batch_is_all_or_nothing_and_names_the_bad_item(api, api_server):
    calls = [call(), call(to="not a number"), call()]
    assert problem(api.post("/v1/calls:batch", json={"calls": calls}), 400).startswith(
        "calls[1].to:")
    calls[1] = call(**{"from": "nope"})
    assert problem(api.post("/v1/calls:batch", json={"calls": calls}), 400).startswith(
        "calls[1].from:")
    calls[1] = call(extra=1)
    assert problem(api.post("/v1/calls:batch", json={"calls": calls}), 400).startswith(
        "calls[1].extra: unknown field")
    assert all(stored(api_server, str(c["to"])) == [] for c in calls)

    calls = [call(idempotency_key=uuid.uuid4().hex) for _ in range(3)]
    response = api.post("/v1/calls:batch", json={"calls": calls})
    assert response.status_code == 201, response.text
    jobs = response.json()["calls"]
    assert [job["to"] for job in jobs] == [c["to"] for c in calls]
    again = api.post("/v1/calls:batch", json={"calls": calls})
    assert again.status_code == 200
    assert again.json()["calls"] == jobs  # as stored: the first answer is not read back
    for body in ({"calls": []}, {"calls": {}}, {"calls": calls, "more": 1}, {}):
        problem(api.post("/v1/calls:batch", json=body), 400)


# --- read, search, cancel ---------------------------------------------------------------


def test_an_unknown_call_is_404(api):
    assert problem(api.get("/v1/calls/nope"), 404).startswith("job_id:")
    assert problem(api.post("/v1/calls/nope/cancel"), 404).startswith("job_id:")


def test_search_pages_through_every_match_once_newest_first(api, api_server):
    campaign = uuid.uuid4().hex
    to = number()
    jobs = api.post("/v1/calls:batch", json={"calls": [
        call(to=to, campaign_id=campaign) for _ in range(7)]}).json()["calls"]
    api.post("/v1/calls", json=call(campaign_id=campaign))  # another number
    seen, cursor, pages = [], None, 0
    while True:
        params = {"campaign_id": campaign, "to": to, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/calls", params=params).json()
        seen += page["data"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    ids = [job["id"] for job in seen]
    assert len(ids) == len(set(ids)) and set(ids) == {job["id"] for job in jobs}
    keys = [(job["created_at"], job["id"]) for job in seen]
    assert keys == sorted(keys, reverse=True)

    all_of_campaign = api.get("/v1/calls", params={"campaign_id": campaign}).json()
    assert len(all_of_campaign["data"]) == 8 and all_of_campaign["next_cursor"] is None
    api.post(f"/v1/calls/{jobs[0]['id']}/cancel")
    canceled = api.get("/v1/calls", params={"campaign_id": campaign, "status": "canceled"})
    assert [job["id"] for job in canceled.json()["data"]] == [jobs[0]["id"]]
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    for name, data in (("created_after", []), ("created_before", seen)):
        found = api.get("/v1/calls", params={"to": to, name: later}).json()["data"]
        assert {j["id"] for j in found} == {j["id"] for j in data}, name
    # An unencoded "+" of an offset arrives as a space; it is read as the "+" it was.
    assert later.endswith("+00:00")
    plus = api.get(f"/v1/calls?to={to.replace('+', '%2B')}&updated_after={later}")
    assert plus.status_code == 200 and plus.json()["data"] == []


@pytest.mark.parametrize(("params", "named"), [
    ({"limit": "0"}, "limit:"), ({"limit": "abc"}, "limit:"), ({"status": "lost"}, "status:"),
    ({"cursor": "garbage!"}, "cursor:"), ({"created_after": "yesterday"}, "created_after:"),
    ({"created_after": "2030-01-01T00:00:00"}, "created_after:"), ({"to": "12"}, "to:"),
    ({"colour": "red"}, "colour: unknown field"),
])
def test_a_bad_search_parameter_is_named(api, params, named):
    assert problem(api.get("/v1/calls", params=params), 400).startswith(named)


def test_cancel_a_waiting_call_then_cancel_it_again(api):
    job = api.post("/v1/calls", json=call()).json()
    first = api.post(f"/v1/calls/{job['id']}/cancel")
    assert first.status_code == 200
    assert first.json()["canceled"] is True and first.json()["call"]["status"] == "canceled"
    again = api.post(f"/v1/calls/{job['id']}/cancel").json()
    assert again["canceled"] is False and "already canceled" in again["message"]



def test_a_call_handled_by_a_twiml_application(api, api_server):
    application_sid = "AP" + uuid.uuid4().hex
    body = {"to": number(), "application_sid": application_sid}
    job = api.post("/v1/calls", json=body).json()
    assert (job["url"], job["twiml"], job["application_sid"]) == (None, None, application_sid)
    both = {**body, "to": number(), "url": VOICE_URL}
    assert problem(api.post("/v1/calls", json=both), 400).startswith(
        "url/twiml/application_sid: give exactly one")
    assert problem(api.post("/v1/calls", json={"to": number(), "application_sid": "AP12"}),
                   400).startswith("application_sid:")
    assert stored(api_server, both["to"]) == []


def test_redirect_needs_a_live_call_and_names_a_bad_field(api):
    waiting = api.post("/v1/calls", json=call(
        scheduled_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())).json()
    redirect = f"/v1/calls/{waiting['id']}/redirect"
    assert "no live call" in problem(api.post(redirect, json={"url": VOICE_URL}), 409)
    for body, named in [({}, "url/twiml:"), ({"url": VOICE_URL, "twiml": "<Response/>"},
                                             "url/twiml:"),
                        ({"url": "ftp://example.com/x"}, "url:"),
                        ({"url": VOICE_URL, "method": "PUT"}, "method:"),
                        ({"url": VOICE_URL, "to": number()}, "to: unknown field")]:
        assert problem(api.post(redirect, json=body), 400).startswith(named), body
    assert problem(api.post("/v1/calls/nope/redirect", json={"url": VOICE_URL}),
                   404).startswith("job_id: no job")
    assert api.get(f"/v1/calls/{waiting['id']}").json()["status"] == "scheduled"



def test_what_a_key_enqueues_is_signed_with_that_keys_secret(api_server):
    key, token = create_api_key(api_server.ctx, "billing")
    client = api_server.client(token)
    job = client.post("/v1/calls", json=call()).json()
    imported = client.post("/v1/campaigns", json={
        "name": "reminders", "url": VOICE_URL, "contacts": [{"to": number()}]}).json()
    campaign_job = find_jobs(api_server.ctx, campaign_id=imported["campaign_id"])[0]

    stored = get_jobs(api_server.ctx, [job["id"], campaign_job.id])

    assert {j.api_key_id for j in stored.values()} == {key.id}


# --- do-not-call ------------------------------------------------------------------------


def test_do_not_call_add_check_refuse_and_remove(api, api_server):
    listed, csv_listed = number(), number()
    path = f"/v1/do-not-call/{listed.replace('+', '%2B')}"
    assert api.get(path).json() == {"number": listed, "listed": False}
    added = api.post("/v1/do-not-call", json={"numbers": [listed, listed]})
    assert added.json() == {"added": 1, "received": 2}
    assert api.get(path).json()["listed"] is True
    detail = problem(api.post("/v1/calls", json=call(to=listed)), 400)
    assert detail.startswith("to:") and "do-not-call" in detail
    assert stored(api_server, listed) == []

    csv_body = f"name,number\nAda,{csv_listed}\n"
    response = api.post("/v1/do-not-call", data=csv_body,
                        headers={"Content-Type": "text/csv"})
    assert response.json() == {"added": 1, "received": 1}
    assert api.get(f"/v1/do-not-call/{csv_listed.replace('+', '%2B')}").json()["listed"]

    assert api.delete(path).json() == {"number": listed, "removed": True}
    assert api.delete(path).json() == {"number": listed, "removed": False}
    assert api.get(path).json()["listed"] is False
    assert api.post("/v1/calls", json=call(to=listed)).status_code == 201
    assert problem(api.post("/v1/do-not-call", json={"numbers": ["12"]}), 400).startswith(
        "number:")
    assert problem(api.get("/v1/do-not-call/12"), 400).startswith("number:")
    problem(api.post("/v1/do-not-call", json={"numbers": []}), 400)
    problem(api.post("/v1/do-not-call", json={"numbers": [listed], "note": 1}), 400)


# --- errors no operation describes ------------------------------------------------------


def test_an_unknown_path_or_method_is_a_problem_the_document_describes(api):
    # The client checks these against components.responses NoSuchPath and MethodNotAllowed.
    problem(api.get("/v1/nope"), 404)
    problem(api.get("/v2/calls"), 404)
    response = api.delete("/v1/calls")
    problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    problem(api.put("/v1/calls/nope/cancel"), 405)


def test_an_unexpected_error_is_a_bare_500_and_the_log_has_the_exception(tmp_path,
                                                                          redis_server):
    closed = free_port()  # nothing listens there: every database access fails
    env = {"DIALER_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed}/none",
           "DIALER_REDIS_URL": redis_server.url}
    process, url = start_api(tmp_path, env)
    try:
        response = ApiClient(url, "dk_" + "x" * 43).get("/v1/calls")
        assert problem(response, 500) == "internal error"
        assert "psycopg" not in response.text
        wait_for(lambda: "Traceback" in process.log() and "OperationalError" in process.log(),
                 timeout=10, what="the exception in the log")
    finally:
        stop_all([process])


# --- bodies -----------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_and_stores_nothing(api, api_server):
    body = call(metadata={"padding": "x" * API_MAX_BODY})
    assert problem(api.post("/v1/calls", json=body), 413) == (
        f"body: larger than the {API_MAX_BODY} bytes accepted")
    assert stored(api_server, str(body["to"])) == []


def test_a_body_that_is_not_json_is_415_and_malformed_json_is_400(api: ApiClient):
    problem(api.post("/v1/calls", data="to=+14155550123",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    problem(api.post("/v1/calls", data="{}", headers={"Content-Type": "text/plain"}), 415)
    detail = problem(api.post("/v1/calls", data='{"to": ',
                              headers={"Content-Type": "application/json"}), 400)
    assert detail.startswith("body: malformed JSON")
    assert problem(api.post("/v1/calls", json=[1, 2]), 400).startswith("body:")
    nested = problem(api.post("/v1/calls", data="[" * 5000,
                              headers={"Content-Type": "application/json"}), 400)
    assert nested.startswith("body: malformed JSON")


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/calls?limit=%C2%B2", "limit"),  # "²": a digit to str.isdigit, not to int()
    ("/v1/calls?created_after=0001-01-01T00:00:00%2B01:00", "created_after"),
    ("/v1/calls?cursor=" + base64.urlsafe_b64encode(
        b'["0001-01-01T00:00:00+01:00", "x"]').decode().rstrip("="), "cursor"),
    ("/v1/calls?cursor=" + base64.urlsafe_b64encode(b"[" * 900).decode(), "cursor"),
])
def test_odd_query_values_are_a_400_naming_the_parameter(api: ApiClient, path: str,
                                                         field: str):
    assert problem(api.get(path), 400).startswith(f"{field}: ")


def test_a_time_out_of_range_is_a_400_and_stores_nothing(api, api_server):
    body = call(scheduled_at="0001-01-01T00:00:00+01:00")
    assert problem(api.post("/v1/calls", json=body), 400).startswith("scheduled_at: ")
    assert stored(api_server, str(body["to"])) == []
