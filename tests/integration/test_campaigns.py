"""Campaigns end to end: import, calling windows, fairness, pause / resume / cancel, DNC,
the frequency cap, reports; real worker, beat, webhook, simulator, both databases."""

from __future__ import annotations

import base64
import csv
import io
import math
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from harness.stack import VOICE_URL, job_in
from harness.waiting import wait_for
from worker.api import (
    add_do_not_call,
    campaign_status,
    cancel_campaign,
    create_campaign,
    enqueue_call,
    pause_campaign,
    resume_campaign,
    write_export,
)
from worker.engine.dispatch import LOOKAHEAD_S, dispatch_due
from worker.store.models import Attempt, Campaign, Job, Notification
from worker.wiring import default_context, reset_default_context

pytestmark = pytest.mark.integration


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def numbers(base: int, count: int) -> list[str]:
    return [f"+1415555{base + i:04d}" for i in range(count)]


def campaign_done(campaign_id: str) -> dict | None:
    status = campaign_status(campaign_id)
    return status if status["status"] == "done" else None


def creates_to(sim, wanted: set[str]) -> list:
    return sorted((c for c in sim.creates() if c.status == 201 and c.to in wanted),
                  key=lambda c: c.arrived_at)


def dispatcher_ticks(stack, count: int) -> None:
    beat = next(p for p in stack.processes if p.name == "beat")
    before = beat.log().count("dialer.dispatch_due")
    wait_for(lambda: beat.log().count("dialer.dispatch_due") >= before + count, timeout=20,
             what=f"{count} dispatcher ticks")


# outcome plan per number (by index % 5): scenario, final state, attempts, creates
PLANS = [(["busy", "answered"], "completed", 2, 2),
         (["no-answer"], "failed", 2, 2),
         (["answered"], "completed", 1, 1),
         (["failed", "answered"], "completed", 2, 2),
         (["error:21217"], "failed", 1, 0)]


def test_a_campaign_of_fifty_reaches_done_with_per_recipient_results(make_stack, tmp_path):
    stack = make_stack(DIALER_CALLS_PER_SECOND="25")
    people = numbers(4000, 50)
    stack.sim.set_scenario({n: PLANS[i % 5][0] for i, n in enumerate(people)})
    stack.start_all(concurrency=3)
    path = write_csv(tmp_path / "fifty.csv", [{"to": n, "name": f"person {i}", "order": str(i)}
                                              for i, n in enumerate(people)])
    result = create_campaign("fifty", contacts=path, url=VOICE_URL, max_attempts=2,
                             retry_delays=[1], call_options={"timeout": 5})
    assert (result.rows, result.imported, result.invalid) == (50, 50, [])
    watch = subprocess.Popen([sys.executable, "-m", "worker.cli", "campaign", "watch",
                              result.campaign_id, "--interval", "0.2"], env=stack.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    status = wait_for(lambda: campaign_done(result.campaign_id), timeout=120,
                      what="the campaign to be done")
    assert status["by_state"] == {"completed": 30, "failed": 20}
    # watch ends by itself once the campaign is done, its last table the final totals
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    final = out[out.rindex("fifty ("):]
    assert "· done" in final
    rows = [line.strip("│ ").split(" │ ") for line in final.splitlines()]
    assert ["completed", "30"] in [[cell.strip() for cell in row] for row in rows]
    out = io.StringIO()
    assert write_export(result.campaign_id, out) == 50
    rows = {r["to"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    for i, number in enumerate(people):
        _, state, attempts, creates = PLANS[i % 5]
        assert rows[number]["state"] == state, number
        assert int(rows[number]["attempts"]) == attempts, number
        assert rows[number]["contact.name"] == f"person {i}"
        assert rows[number]["contact.order"] == str(i)
        assert len(creates_to(stack.sim, {number})) == creates, number
    assert rows[people[4]]["last_outcome"] == "21217"
    assert float(rows[people[2]]["talk_time_s"]) > 0


def test_weighted_campaigns_share_the_pace_and_single_calls_go_first(make_stack, tmp_path):
    # Ticks a second apart: two of them overlap only if one takes longer than that.
    stack = make_stack(DIALER_CALLS_PER_SECOND="10", DIALER_DISPATCH_INTERVAL="1")
    light, heavy = numbers(4100, 40), numbers(4200, 40)
    create_campaign("light", contacts=write_csv(tmp_path / "l.csv", [{"to": n} for n in light]),
                    url=VOICE_URL, weight=1)
    create_campaign("heavy", contacts=write_csv(tmp_path / "h.csv", [{"to": n} for n in heavy]),
                    url=VOICE_URL, weight=3)
    stack.start_all(concurrency=3)

    wait_for(lambda: len(creates_to(stack.sim, set(light + heavy))) >= 10, timeout=30,
             what="the campaigns to start")
    singles = numbers(4300, 3)
    backlog = len(light + heavy) - len(creates_to(stack.sim, set(light + heavy)))
    enqueued_at = {}
    for number in singles:
        enqueue_call(number, url=VOICE_URL)
        enqueued_at[number] = datetime.now(UTC).timestamp()
    wait_for(lambda: len(creates_to(stack.sim, set(light + heavy))) >= 32, timeout=60,
             what="32 campaign creates")

    first = creates_to(stack.sim, set(light + heavy))[:32]
    from_light = sum(c.to in light for c in first)
    assert 5 <= from_light <= 11, f"weight 1 of 4 should get ~8 of 32, got {from_light}"
    # Behind at most what the dispatcher queued ahead of it (LOOKAHEAD_S of pace; twice that
    # when a tick outlasts the interval on a loaded machine and overlaps the next, both
    # filling the queue) and what the worker holds (one message per process), never the
    # campaigns' backlog.
    most_ahead = 2 * math.ceil(10 * LOOKAHEAD_S) + 3
    assert most_ahead < backlog, "the campaigns went too fast for the test to tell"
    for number in singles:
        [create] = wait_for(lambda n=number: creates_to(stack.sim, {n}), timeout=30,
                            what=f"the single call to {number}")
        ahead = [c for c in creates_to(stack.sim, set(light + heavy))
                 if enqueued_at[number] < c.arrived_at < create.arrived_at]
        assert len(ahead) <= most_ahead, (number, len(ahead))
    assert len(creates_to(stack.sim, set(heavy + light))) < 80, "the singles waited for all"


def test_pause_holds_resume_finishes(make_stack, tmp_path):
    stack = make_stack(DIALER_CALLS_PER_SECOND="5").start_all(concurrency=3)
    people = numbers(4400, 30)
    result = create_campaign("pausable", contacts=write_csv(tmp_path / "p.csv",
                                                            [{"to": n} for n in people]),
                             url=VOICE_URL)
    wait_for(lambda: len(creates_to(stack.sim, set(people))) >= 5, timeout=30,
             what="five creates")
    pause_campaign(result.campaign_id)
    made = len(creates_to(stack.sim, set(people)))
    dispatcher_ticks(stack, 10)
    assert len(creates_to(stack.sim, set(people))) == made, "a call was created after pause"
    assert made < 30

    resume_campaign(result.campaign_id)
    status = wait_for(lambda: campaign_done(result.campaign_id), timeout=60,
                      what="the campaign to finish")
    assert status["by_state"] == {"completed": 30}
    assert sorted(c.to for c in creates_to(stack.sim, set(people))) == sorted(people)


def test_cancel_ends_pending_jobs_and_live_calls(make_stack, tmp_path):
    stack = make_stack(DIALER_CALLS_PER_SECOND="4")
    people = numbers(4500, 20)
    stack.sim.set_scenario({"+1415555*": ["answered:600"]})
    stack.start_all(concurrency=3)
    result = create_campaign("cancelable", contacts=write_csv(tmp_path / "c.csv",
                                                              [{"to": n} for n in people]),
                             url=VOICE_URL)

    def talking() -> list[str]:
        with default_context().database.session() as session:
            return list(session.scalars(select(Attempt.call_sid).join(Job).where(
                Job.campaign_id == result.campaign_id, Attempt.status == "in-progress")))

    live = wait_for(lambda: (sids := talking()) and len(sids) >= 2 and sids, timeout=30,
                    what="two answered calls")
    counts = cancel_campaign(result.campaign_id)
    assert counts["canceled_live"] >= 2 and counts["canceled_pending"] > 0
    made = len(creates_to(stack.sim, set(people)))
    status = campaign_status(result.campaign_id)
    assert status["status"] == "canceled"
    assert set(status["by_state"]) == {"canceled"}
    for sid in live:
        wait_for(lambda s=sid: stack.sim.call(s)["status"] == "completed", timeout=10,
                 what="the live call hung up at Twilio")
    dispatcher_ticks(stack, 5)
    assert len(creates_to(stack.sim, set(people))) == made


def test_calling_window_defers_outside_and_dials_inside(make_stack, tmp_path):
    now = datetime.now(UTC)
    closed = (f"{now.hour + 2:02d}:00-{now.hour + 3:02d}:00" if now.hour < 21
              else "01:00-02:00")
    around = f"{max(0, now.hour - 1):02d}:00-{min(24, now.hour + 2):02d}:00"
    stack = make_stack(DIALER_CALLS_PER_SECOND="20").start_all(concurrency=3)
    later, today = numbers(4600, 5), numbers(4700, 5)
    deferred = create_campaign("later", url=VOICE_URL, window=closed, contacts=write_csv(
        tmp_path / "later.csv", [{"to": n, "timezone": "UTC"} for n in later]))
    dialed = create_campaign("now", url=VOICE_URL, window=around, contacts=write_csv(
        tmp_path / "now.csv", [{"to": n, "timezone": "UTC"} for n in today]))

    wait_for(lambda: campaign_done(dialed.campaign_id), timeout=60, what="the open campaign")
    dispatcher_ticks(stack, 5)
    assert creates_to(stack.sim, set(later)) == []
    start_hour = int(closed[:2])
    opening = now.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    if opening <= now:
        opening += timedelta(days=1)
    with default_context().database.session() as session:
        jobs = session.scalars(select(Job).where(Job.campaign_id == deferred.campaign_id)).all()
    assert {j.status for j in jobs} == {"scheduled"}
    assert {j.next_attempt_at for j in jobs} == {opening}


def test_do_not_call_numbers_are_never_dialed(make_stack, tmp_path):
    stack = make_stack(DIALER_CALLS_PER_SECOND="20")
    people = numbers(4800, 6)
    listed_before, listed_after = people[0], people[1]
    add_do_not_call([listed_before])
    with pytest.raises(ValueError, match=r"^to: .*do-not-call"):
        enqueue_call(listed_before, url=VOICE_URL)
    result = create_campaign("dnc", url=VOICE_URL, contacts=write_csv(
        tmp_path / "d.csv", [{"to": n} for n in people]))
    assert (result.imported, result.do_not_call) == (5, 1)
    pause_campaign(result.campaign_id)
    add_do_not_call([listed_after])  # listed after the import: caught right before dialing
    stack.start_all(concurrency=2)
    resume_campaign(result.campaign_id)

    status = wait_for(lambda: campaign_done(result.campaign_id), timeout=60, what="done")
    assert status["by_outcome"].get("do-not-call") == 1
    assert creates_to(stack.sim, {listed_before, listed_after}) == []
    assert len(creates_to(stack.sim, set(people))) == 4


def test_frequency_cap_reschedules_instead_of_dialing(make_stack):
    stack = make_stack(DIALER_CALLS_PER_SECOND="20", DIALER_MAX_CALLS_PER_NUMBER="1")
    stack.start_all()
    first = enqueue_call("+14155554901", url=VOICE_URL)
    wait_for(lambda: job_in(first, {"completed"}), timeout=30, what="the first call")
    second = enqueue_call("+14155554901", url=VOICE_URL)
    job = wait_for(lambda: job_in(second, {"scheduled"}), timeout=30,
                   what="the second call to be capped")
    assert job.next_attempt_at > datetime.now(UTC) + timedelta(hours=23)
    assert job.attempts == 0
    assert len(creates_to(stack.sim, {"+14155554901"})) == 1


BIG = 2500


@pytest.mark.parametrize("ending", ["cancel", "expiry"])
def test_a_big_campaign_ends_every_job_with_one_event_each(
        producer_env, monkeypatch: pytest.MonkeyPatch, ending: str) -> None:
    monkeypatch.setenv("DIALER_NOTIFY_SECRET",
                       "whsec_" + base64.b64encode(b"k" * 32).decode())
    reset_default_context()
    ctx = default_context()
    result = create_campaign("big", contacts=[{"to": to} for to in numbers(0, BIG)],
                             url=VOICE_URL, notify_url="https://producer.example.com/h",
                             end_at=datetime.now(UTC) + timedelta(hours=1))
    assert result.imported == BIG
    if ending == "cancel":
        assert cancel_campaign(result.campaign_id)["canceled_pending"] == BIG
        outcome = "canceled"
    else:
        with ctx.database.session() as session:
            session.execute(update(Campaign).where(Campaign.id == result.campaign_id)
                            .values(end_at=datetime.now(UTC) - timedelta(seconds=1)))
        dispatch_due(ctx)
        outcome = "expired"
    with ctx.database.session() as session:
        jobs = Counter(session.execute(select(Job.status, Job.outcome)
                                       .where(Job.campaign_id == result.campaign_id)))
        events = Counter(session.scalars(
            select(Notification.job_id).join(Job)
            .where(Job.campaign_id == result.campaign_id)))
    assert jobs == {("canceled", outcome): BIG}
    assert len(events) == BIG and set(events.values()) == {1}
