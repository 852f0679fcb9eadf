"""Campaigns over the producer API: created from JSON rows or a CSV upload, read, paused,
resumed, canceled and exported, against a real gunicorn on both backends. Every response
is checked against api/openapi.json (tests/support/api_fixtures.py)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.api_fixtures import number, problem
from worker.producer.reports import find_jobs

pytestmark = pytest.mark.integration

VOICE_URL = "https://example.com/voice.xml"




def test_a_campaign_from_json_rows_runs_its_course_and_exports(api, api_server):
    good, listed = number(), number()
    api.post("/v1/do-not-call", json={"numbers": [listed]})
    rows = [{"to": good, "order": "A-1"}, {"to": good}, {"to": listed}, {"to": "12"}]
    created = api.post("/v1/campaigns", json={
        "name": "spring", "url": VOICE_URL, "window": "00:00-24:00", "weight": 2,
        "contacts": rows})
    assert created.status_code == 201, created.text
    result = created.json()
    campaign_id = result["campaign_id"]
    assert created.headers["Location"] == f"/v1/campaigns/{campaign_id}"
    assert (result["rows"], result["imported"], result["duplicates"],
            result["do_not_call"]) == (4, 1, 1, 1)
    assert [bad["line"] for bad in result["invalid"]] == [5]
    [job] = find_jobs(api_server.ctx, campaign_id=campaign_id)
    assert job.to == good and job.metadata_ == {"order": "A-1"}

    status = api.get(f"/v1/campaigns/{campaign_id}").json()
    assert (status["name"], status["status"], status["weight"], status["jobs"]) == (
        "spring", "active", 2, 1)
    assert api.post(f"/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    assert "not active" in problem(api.post(f"/v1/campaigns/{campaign_id}/pause"), 409)
    assert api.get(f"/v1/campaigns/{campaign_id}").json()["status"] == "paused"
    assert api.post(f"/v1/campaigns/{campaign_id}/resume").json()["status"] == "active"
    canceled = api.post(f"/v1/campaigns/{campaign_id}/cancel").json()
    assert canceled["status"] == "canceled" and canceled["canceled_pending"] == 1
    problem(api.post(f"/v1/campaigns/{campaign_id}/cancel"), 409)

    export = api.get(f"/v1/campaigns/{campaign_id}/export")
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(export.text)))
    assert (row["to"], row["state"], row["job_id"], row["contact.order"]) == (
        good, "canceled", job.id, "A-1")


def test_a_campaign_from_a_csv_upload(api, api_server):
    first, second = number(), number()
    upload = f"to,name\n{first},Ada\n{second},Grace\n"
    created = api.post("/v1/campaigns", data={"name": "upload", "url": VOICE_URL,
                                              "max_attempts": "2", "retry_delays": "5,10"},
                       files={"contacts": ("contacts.csv", upload, "text/csv")})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    assert created.json()["imported"] == 2
    jobs = find_jobs(api_server.ctx, campaign_id=campaign_id)
    assert {job.to for job in jobs} == {first, second}
    assert {(job.max_attempts, tuple(job.retry_delays)) for job in jobs} == {(2, (5, 10))}

    no_to = api.post("/v1/campaigns", data={"name": "bad", "url": VOICE_URL},
                     files={"contacts": ("c.csv", "phone\n+14155550123\n", "text/csv")})
    assert problem(no_to, 400).startswith("contacts: no 'to' column")
    no_file = api.post("/v1/campaigns", files={"name": (None, "none"), "url": (None, VOICE_URL)})
    assert problem(no_file, 400).startswith("contacts:")
    form = api.post("/v1/campaigns", data={"name": "form", "url": VOICE_URL})
    assert problem(form, 415).startswith("Content-Type:")


@pytest.mark.parametrize(("body", "named"), [
    ({"url": VOICE_URL, "contacts": [{"to": "+14155550123"}]}, "name:"),
    ({"name": "x", "contacts": [{"to": "+14155550123"}]}, "url/twiml/application_sid:"),
    ({"name": "x", "url": VOICE_URL, "contacts": []}, "contacts:"),
    ({"name": "x", "url": VOICE_URL, "contacts": [{"to": 1}]}, "contacts[0].to:"),
    ({"name": "x", "url": VOICE_URL, "from": "no", "contacts": [{"to": "+14155550123"}]},
     "from:"),
    ({"name": "x", "url": VOICE_URL, "window": "late", "contacts": [{"to": "+14155550123"}]},
     "window:"),
    ({"name": "x", "url": VOICE_URL, "strict": True, "contacts": [{"to": "12"}]},
     "contacts: 1 invalid rows"),
    ({"name": "x", "url": VOICE_URL, "colour": "red", "contacts": [{"to": "+14155550123"}]},
     "colour: unknown field"),
])
def test_a_bad_campaign_is_refused_naming_the_field(api, body, named):
    assert problem(api.post("/v1/campaigns", json=body), 400).startswith(named)


def test_an_unknown_campaign_is_404_and_a_reader_cannot_create_one(api, api_server):
    for path in ("", "/export"):
        assert problem(api.get(f"/v1/campaigns/nope{path}"), 404).startswith("campaign_id:")
    for action in ("pause", "resume", "cancel"):
        problem(api.post(f"/v1/campaigns/nope/{action}"), 404)
    reader = api_server.client(api_server.key(["read"]))
    problem(reader.post("/v1/campaigns", json={"name": "x", "url": VOICE_URL,
                                               "contacts": [{"to": number()}]}), 403)
    problem(api_server.client().get("/v1/campaigns/nope"), 401)
