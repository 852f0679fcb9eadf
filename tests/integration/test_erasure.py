"""Erasure and retention against the real stack (Redis, Celery workers, the webhook, the
simulator's signed callbacks) on SQLite and PostgreSQL: the numbers in no column of any
table afterwards, the jobs still counted."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from harness.stack import VOICE_URL, dialer, job_in
from harness.waiting import wait_for
from tests.support.privacy import columns_holding
from worker.api import campaign_status, create_campaign, enqueue_call, get_job
from worker.domain.clock import utcnow
from worker.domain.privacy import REDACTED
from worker.engine import retention
from worker.store.models import Event
from worker.wiring import default_context

pytestmark = pytest.mark.integration

NUMBER = "+14155557001"
OTHER = "+14155557002"
WAITING = "+14155557003"


def live(job_id: str) -> object:
    job = get_job(job_id)
    return job if job and job.attempt_rows and job.attempt_rows[-1].status == "in-progress" \
        else None


def ended_callback_stored(call_sid: str) -> object:
    with default_context().database.session() as session:
        return session.scalar(select(Event.id).where(Event.call_sid == call_sid,
                                                     Event.call_status == "completed"))


def test_an_erased_number_is_in_no_table_and_old_jobs_lose_theirs(make_stack):
    stack = make_stack()
    # The first call to NUMBER ends soon; the second talks for minutes, until it is erased.
    stack.sim.set_scenario({NUMBER: ["answered:1", "answered:6000"], OTHER: "busy"})
    stack.start_webhook()
    stack.start_worker("w1", concurrency=2)
    done = enqueue_call(NUMBER, url=VOICE_URL, metadata={"name": "Ann"})
    other = enqueue_call(OTHER, url=VOICE_URL, max_attempts=1, metadata={"spouse": NUMBER})
    for job_id in (done, other):
        wait_for(lambda job_id=job_id: job_in(job_id, {"completed", "failed"}), timeout=60,
                 what="the first calls to end")
    talking = enqueue_call(NUMBER, url=VOICE_URL)
    call_sid = wait_for(lambda: live(talking), timeout=60,
                        what="the second call to be answered").attempt_rows[-1].call_sid
    campaign = create_campaign("later", url=VOICE_URL, start_at=utcnow() + timedelta(days=1),
                               contacts=[{"to": NUMBER}, {"to": WAITING, "alt": NUMBER}])
    database = default_context().database
    assert {"jobs.to", "events.payload", "jobs.metadata"} <= set(
        columns_holding(database, NUMBER))

    erased = dialer(stack.env, "erase", NUMBER, "--json")

    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout)
    assert (result["jobs"], result["canceled"], result["live_calls_ended"]) == (3, 1, 1)
    assert result["jobs_left"] == 0
    # The ended call's last callback comes through the webhook after the erasure.
    wait_for(lambda: ended_callback_stored(call_sid), timeout=30,
             what="the ended call's completed callback")
    assert columns_holding(database, NUMBER) == []
    assert [get_job(j).status for j in (done, talking)] == ["completed", "canceled"]
    status = campaign_status(campaign.campaign_id)
    assert (status["jobs"], status["by_state"]) == (2, {"canceled": 1, "scheduled": 1})

    # Retention, as if its days had passed: the other final job loses its number too; the
    # campaign's waiting job keeps its own.
    assert "jobs.to" in columns_holding(database, OTHER)
    ctx = replace(default_context(), settings=replace(default_context().settings,
                                                      retention_days=1))
    kept = retention.apply_retention(ctx, now=utcnow() + timedelta(days=2))
    assert (kept["jobs"], kept["skipped"]) == (1, 0)
    assert columns_holding(database, OTHER) == []
    assert get_job(other).to == REDACTED and get_job(other).status == "failed"
    assert "jobs.to" in columns_holding(database, WAITING)
    assert retention.apply_retention(ctx, now=utcnow() + timedelta(days=2))["jobs"] == 0
