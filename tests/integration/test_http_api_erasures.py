"""POST /v1/erasures against a real gunicorn on both backends, every response checked
against the OpenAPI document."""

from __future__ import annotations

import pytest

from tests.support.api_fixtures import number, problem
from tests.support.privacy import columns_holding

pytestmark = pytest.mark.integration

VOICE_URL = "https://example.com/voice.xml"




def test_an_erasure_cancels_redacts_and_lists_the_number(api, api_server):
    to = number()
    created = api.post("/v1/calls", json={"to": to, "url": VOICE_URL,
                                          "scheduled_at": "2099-01-01T00:00:00Z",
                                          "metadata": {"name": "Ann"}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    erased = api.post("/v1/erasures", json={"numbers": [to], "do_not_call": True})

    assert erased.status_code == 200, erased.text
    assert erased.json() == {"numbers": 1, "jobs": 1, "canceled": 1, "live_calls_ended": 0,
                             "events": 0, "notifications": 0, "other_mentions": 0,
                             "do_not_call_added": 1, "jobs_left": 0}
    call = api.get(f"/v1/calls/{job_id}").json()
    assert (call["to"], call["status"], call["metadata"]) == (
        "[redacted]", "canceled", {"name": "[redacted]"})
    assert api.get(f"/v1/do-not-call/{to}").json()["listed"] is True
    assert columns_holding(api_server.ctx.database, to) == ["do_not_call.number"]
    again = api.post("/v1/erasures", json={"numbers": [to]}).json()
    assert (again["jobs"], again["do_not_call_added"]) == (0, 0)


@pytest.mark.parametrize(("body", "field"), [
    ({"numbers": ["+14155550123", "12345"]}, "numbers:"),
    ({"numbers": []}, "numbers:"),
    ({"numbers": "+14155550123"}, "numbers:"),
    ({"numbers": ["+14155550123"], "do_not_call": "yes"}, "do_not_call:"),
    ({"numbers": ["+14155550123"], "forget": True}, "forget:"),
])
def test_bad_input_is_a_400_naming_the_field(api, api_server, body, field):
    to = number()
    listed = {**body, "numbers": [to, *body["numbers"][1:]]} if isinstance(
        body["numbers"], list) and body["numbers"] else body
    api.post("/v1/calls", json={"to": to, "url": VOICE_URL,
                                "scheduled_at": "2099-01-01T00:00:00Z"})
    assert problem(api.post("/v1/erasures", json=listed), 400).startswith(field)
    assert "jobs.to" in columns_holding(api_server.ctx.database, to)


def test_an_erasure_needs_the_write_scope(api_server):
    reader = api_server.client(api_server.key(["read"]))
    problem(reader.post("/v1/erasures", json={"numbers": [number()]}), 403)
    problem(api_server.client().post("/v1/erasures", json={"numbers": [number()]}), 401)
