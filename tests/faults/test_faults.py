"""Fault injection against the real processes: a campaign runs, one fault is injected, and
the database and the simulator's records must show the promises of docs/RELIABILITY.md
kept: every job final, no attempt dialed twice, attempts within max_attempts, each job's
outcome the one its scenario dictates, and a final state that never changes afterwards.

Every test also checks that its fault really fired, so a quiet run cannot pass for a
survived one.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from harness.faults import (
    FAULT_SETTINGS,
    breaches,
    database_down,
    deadline,
    drain_s,
    first_call_s,
    jobs_of,
    kill,
    reconciler_runs_s,
    snapshot,
    supervise,
    worker_logs,
)
from harness.servers import RedisServer
from harness.stack import VOICE_URL, Stack
from harness.waiting import wait_for
from tests.support.jobs import dialing_job
from tests.support.simulator_fixtures import SIM_AUTH_TOKEN
from worker.adapters.broker import create_celery
from worker.api import enqueue_call, get_job
from worker.demo.processes import Process
from worker.domain.names import DIAL_QUEUE
from worker.domain.statuses import FINAL_JOB_STATUSES, TERMINAL_CALL_STATUSES
from worker.engine.context import Context
from worker.engine.status import handle_status
from worker.settings import get_settings
from worker.store.database import SQLITE_BUSY_TIMEOUT_S
from worker.store.models import Attempt, Event, Job
from worker.wiring import default_context

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3
RETRY_DELAY = 1
POLL_S = 0.1

NO_ANSWER_FAST = {"call_options": {"timeout": 5}}

# number: (scenario, enqueue kwargs, final job status, attempt statuses)
CASES: dict[str, tuple[list[str], dict[str, Any], str, list[str]]] = {
    "+14155552001": (["answered"], {}, "completed", ["completed"]),
    "+14155552002": (["answered"], {}, "completed", ["completed"]),
    "+14155552003": (["answered"], {}, "completed", ["completed"]),
    "+14155552004": (["answered"], {}, "completed", ["completed"]),
    "+14155552005": (["answered"], {}, "completed", ["completed"]),
    "+14155552006": (["machine"], {}, "completed", ["completed"]),
    "+14155552007": (["busy", "answered"], {}, "completed", ["busy", "completed"]),
    "+14155552008": (["no-answer"], NO_ANSWER_FAST, "failed", ["no-answer"] * 3),
    "+14155552009": (["failed", "answered"], {}, "completed", ["failed", "completed"]),
    "+14155552010": (["busy"], {}, "failed", ["busy"] * 3),
    "+14155552011": (["error:21217"], {}, "failed", ["rejected"]),
    "+14155552012": (["no-answer", "answered"], NO_ANSWER_FAST, "completed",
                     ["no-answer", "completed"]),
    "+14155552013": (["busy"], {"retry_on": ["no-answer"]}, "failed", ["busy"]),
    "+14155552014": (["answered"], {}, "completed", ["completed"]),
}

IN_FLIGHT_RECEIVED = re.compile(r"Task dialer\.place_call\[([^\]]+)\] received")
IN_FLIGHT_DONE = re.compile(r"Task dialer\.place_call\[([^\]]+)\] (?:succeeded|raised|retry)")
DB_RETRY = re.compile(r"retry: Retry in .*OperationalError")
RECONCILE_RAN = re.compile(r"Task dialer\.reconcile\[[^\]]+\] succeeded")
ADOPTED = "adopted call"
RELEASED = "no call found for its ambiguous attempt; rescheduled"


# --- the campaign and what every test asserts ------------------------------------------


def start(make_stack: Callable[..., Stack], workers: int = 2, concurrency: int = 2,
          faults: dict[str, Any] | None = None, **settings: str) -> Stack:
    stack = make_stack(**{**FAULT_SETTINGS, **settings})
    if faults:
        stack.sim.set_faults(**faults)
    return stack.start_all(workers=workers, concurrency=concurrency)


def enqueue(stack: Stack, cases: dict[str, Any] = CASES,
            numbers: list[str] | None = None) -> dict[str, str]:
    """Every case's scenario set; the cases' jobs (or only `numbers`') enqueued."""
    stack.sim.set_scenario({number: case[0] for number, case in cases.items()})
    return {number: enqueue_call(number, url=VOICE_URL, retry_delays=[RETRY_DELAY],
                                 max_attempts=MAX_ATTEMPTS, **case[1])
            for number, case in cases.items() if numbers is None or number in numbers}


def wait_all_final(stack: Stack, ids: dict[str, str]) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        jobs = jobs_of(ids)
        return jobs if all(j.status in FINAL_JOB_STATUSES for j in jobs.values()) else None

    try:
        return wait_for(final, timeout=drain_s(len(ids), MAX_ATTEMPTS, RETRY_DELAY),
                        interval=0.25, what="every job final")
    except AssertionError as exc:
        states = {n: (j.status, [a.status for a in j.attempt_rows])
                  for n, j in jobs_of(ids).items()}
        raise AssertionError(f"{exc}\n{states}\n{stack.logs()}") from None


def reconcile_runs(stack: Stack) -> int:
    return len(RECONCILE_RAN.findall(worker_logs(stack)))


def assert_promises(stack: Stack, ids: dict[str, str], cases: dict[str, Any] = CASES) -> None:
    """Every job final with its scenario's outcome; one accepted create per attempt with a
    CallSid and none besides; attempts within max_attempts; final states that stay."""
    broken = breaches(stack, ids)
    assert not any(broken.values()), broken
    jobs = jobs_of(ids)
    for number, (_, _, final, statuses) in cases.items():
        job = jobs[number]
        rows = job.attempt_rows
        assert (job.status, [a.status for a in rows]) == (final, statuses), \
            (number, job.outcome, [(a.ordinal, a.call_sid, a.error_message) for a in rows])
        assert job.max_attempts == MAX_ATTEMPTS, number
        assert [a.ordinal for a in rows] == list(range(1, len(rows) + 1)), number
        assert all(a.call_sid or a.status == "rejected" for a in rows), number
    by_sid = {c.sid for c in stack.sim.creates() if c.sid}

    with default_context().database.session() as session:
        pairs = session.execute(select(Event.call_sid, Event.sequence_number)).all()
    assert len(pairs) == len(set(pairs)), "an event stored twice"

    def no_orphans() -> bool:
        with default_context().database.session() as session:
            orphaned = set(session.scalars(select(Event.call_sid)
                                           .where(Event.attempt_id.is_(None))))
        return not orphaned & set(by_sid)

    # A callback that overtook its create's answer is stored as an orphan; its retry, or the
    # reconciler's next run if Redis lost the retry, applies it to its attempt.
    wait_for(no_orphans, timeout=reconciler_runs_s(2), interval=0.25,
             what="every callback of ours adopted")
    assert_final_states_hold(stack, ids)


def assert_final_states_hold(stack: Stack, ids: dict[str, str]) -> None:
    before = snapshot(ids)
    runs = reconcile_runs(stack)
    wait_for(lambda: reconcile_runs(stack) >= runs + 2, timeout=reconciler_runs_s(2),
             interval=0.25, what="two more reconciler runs")
    assert snapshot(ids) == before


def in_flight(process: Process) -> set[str]:
    """place_call tasks this worker received and has not finished (from its log)."""
    log = process.log()
    return set(IN_FLIGHT_RECEIVED.findall(log)) - set(IN_FLIGHT_DONE.findall(log))


def held_by_one_of(processes: list[Process],
                   seconds: float) -> Callable[[], tuple[Process, list[str]] | None]:
    """A condition: the first of `processes` with tasks in flight for at least `seconds`
    (so claimed), and those tasks."""
    first_seen: dict[str, float] = {}

    def check() -> tuple[Process, list[str]] | None:
        now = time.monotonic()
        for process in processes:
            tasks = in_flight(process)
            for task in tasks:
                first_seen.setdefault(task, now)
            held = [task for task in tasks if now - first_seen[task] >= seconds]
            if held:
                return process, held
        return None

    return check


# --- the faults -----------------------------------------------------------------------


def test_workers_killed_mid_run_lose_nothing_and_dial_nothing_twice(make_stack):
    # The simulator answers each create 0.5 s after placing the call: a kill lands either
    # there (Twilio has the call, we have no CallSid) or in the pacing wait (no call yet).
    stack = start(make_stack, workers=0, faults={"api_latency": 0.5})
    live = [stack.start_worker("w1"), stack.start_worker("w2")]
    ids = enqueue(stack)

    interrupted = []
    for successor in ("w3", "w4"):
        # Whichever worker is placing a call: on a slow machine one may have taken all the
        # work there was while the other started.
        victim, held = wait_for(held_by_one_of(live, 0.25), timeout=first_call_s(len(ids)),
                                interval=0.02, what="a worker to be placing a call")
        interrupted += held
        kill(victim)
        live.remove(victim)
        live.append(stack.start_worker(successor))
    assert len(interrupted) >= 2

    wait_all_final(stack, ids)
    assert_promises(stack, ids)
    # What the kills left half done (`creating` attempts) was settled by the reconciler:
    # adopted if Twilio had the call, released and dialed again if not.
    logs = worker_logs(stack)
    assert logs.count(ADOPTED) + logs.count(RELEASED) >= 2, "no interrupted attempt"


def test_redis_restarted_without_its_data_loses_nothing(make_stack,
                                                        redis_server: RedisServer):
    """Queued messages, unacknowledged deliveries, callbacks in flight and the pacing
    schedule all go with Redis; the jobs table rebuilds the work."""
    stack = start(make_stack)
    broker = redis.Redis.from_url(redis_server.url)
    numbers = list(CASES)
    ids = enqueue(stack, numbers=numbers[:7])
    workers = [p for p in stack.processes if p.name in ("w1", "w2")]

    wait_for(lambda: dialing_started(ids), timeout=first_call_s(len(ids)), interval=POLL_S,
             what="the first call")
    # No worker consumes the dial queue from here, so the second half's messages wait in
    # Redis when it goes, however fast or slow the machine is.
    consume_dial(False, len(workers))
    ids |= enqueue(stack, numbers=numbers[7:])
    lost = waiting_jobs(broker)
    assert lost >= {ids[number] for number in numbers[7:]}, "no message left waiting"
    redis_server.stop()
    for process in workers:
        # At once by design: the broker's socket closes.
        wait_for(lambda p=process: "Connection to broker lost" in p.log(), timeout=deadline(0),
                 interval=0.1, what=f"{process.name} to notice Redis is gone")
    redis_server.start()
    restarted = sum(supervise(stack, process) for process in workers)
    consume_dial(True, len(workers) - restarted)

    wait_all_final(stack, ids)
    assert_promises(stack, ids)
    # Their messages went with Redis: the dispatcher published them again from the jobs
    # table, where they sat `queued`.
    assert "re-publishing" in worker_logs(stack)


def consume_dial(on: bool, workers: int) -> None:
    """Start or stop the workers' consumers of the dial queue (celery's control API), with
    an app of this test's settings: the workers' broker."""
    app = create_celery(get_settings(), set_as_current=False)

    def answered() -> bool:
        # A new connection each time: the pooled one may predate a Redis restart.
        with app.connection_for_write() as connection:
            control = app.control.add_consumer if on else app.control.cancel_consumer
            return len(control(DIAL_QUEUE, reply=True, timeout=1, connection=connection)) >= workers

    with app:
        wait_for(answered, timeout=deadline(0), interval=0.1,
                 what=f"{workers} workers to {'start' if on else 'stop'} consuming dial")


def waiting_jobs(broker: redis.Redis) -> set[str]:
    """The job ids of the place_call messages waiting in Redis (celery's message protocol 2:
    a JSON envelope around a base64 body of [args, kwargs, embed])."""
    return {json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
            for raw in broker.lrange(DIAL_QUEUE, 0, -1)}


def test_twilio_errors_before_the_create_never_double_dial(make_stack):
    """500, 503 and 429 at 20%, answered before any call exists: 503/429 are retried at
    once; a 500 is ambiguous, so the reconciler looks for the call, finds none and, after
    the grace period, reschedules the job."""
    stack = start(make_stack, faults={"api_error_rate": 0.2,
                                      "api_error_statuses": (500, 503, 429)})
    ids = enqueue(stack)
    wait_all_final(stack, ids)
    assert_promises(stack, ids)

    errors = Counter(c.status for c in stack.sim.creates() if c.error_code in
                     (20500, 20503, 20429))
    assert errors[500] >= 1 and errors[503] + errors[429] >= 1, errors
    assert all(c.sid is None for c in stack.sim.creates() if c.status >= 429)
    assert worker_logs(stack).count(RELEASED) == errors[500], "each 500: one attempt released"


def test_ambiguous_creates_are_adopted_not_dialed_again(make_stack):
    """Read timeouts after Twilio placed the call, then 500/502/504 at 20% after it placed
    the call: each attempt is marked unknown and the reconciler adopts the call it finds."""
    timeout = float(FAULT_SETTINGS["DIALER_TWILIO_TIMEOUT"])
    stack = start(make_stack, faults={"api_latency": timeout + 1})
    ids = enqueue(stack)

    def unknown_attempts() -> int:
        with default_context().database.session() as session:
            return session.scalar(select(func.count()).select_from(Attempt)
                                  .where(Attempt.error_message.like("%Timeout%"))) or 0

    wait_for(lambda: unknown_attempts() >= 2, timeout=first_call_s(len(ids)) + deadline(timeout),
             interval=POLL_S, what="two creates to time out")
    stack.sim.set_faults(api_error_rate=0.2, api_error_statuses=(500, 502, 504),
                         ambiguous_after_create=True)
    wait_all_final(stack, ids)
    assert_promises(stack, ids)

    after_create = [c for c in stack.sim.creates() if c.status >= 500]
    assert after_create and all(c.sid for c in after_create), "no 5xx after a create"
    with default_context().database.session() as session:
        ambiguous = session.execute(select(Attempt.call_sid, Attempt.error_message)
                                    .where(Attempt.error_message.is_not(None),
                                           Attempt.status != "rejected")).all()
    assert {sid for sid, _ in ambiguous} >= {c.sid for c in after_create}
    assert sum("Timeout" in message for _, message in ambiguous) >= 2
    assert worker_logs(stack).count(ADOPTED) == len(ambiguous)
    # A job is released only where Twilio made no call: a create it refused, whose 400 a
    # loaded machine can answer after the client's timeout. Where a call exists, releasing
    # would dial twice.
    released = re.findall(r"to \*\*\*(\d{4}): " + re.escape(RELEASED), worker_logs(stack))
    called = {c.to[-4:] for c in stack.sim.creates() if c.sid and c.to}
    assert not set(released) & called, released


def test_dropped_duplicated_and_reordered_callbacks(make_stack):
    """15% dropped, 30% duplicated, 30% held back behind a later one: the duplicates are
    absorbed, the order is restored, and the reconciler fetches the calls that went silent.

    Every status event is asked for: about 75 callbacks instead of the default's 30, so a
    run where none is dropped (0.85**75) or none reordered does not happen in practice."""
    stack = start(make_stack, faults={"callback_drop_rate": 0.15,
                                      "callback_duplicate_rate": 0.3,
                                      "callback_reorder_rate": 0.3},
                  DIALER_STATUS_CALLBACK_EVENTS="initiated ringing answered completed")
    ids = enqueue(stack)
    wait_all_final(stack, ids)
    assert_promises(stack, ids)

    callbacks = stack.sim.callbacks()
    dropped = [c for c in callbacks if c.dropped]
    sent = Counter(c.idempotency_token for c in callbacks if not c.dropped)
    assert dropped, "no callback dropped"
    assert max(sent.values()) == 2, "no callback duplicated"
    order: dict[str, list[int]] = {}
    for c in callbacks:
        order.setdefault(c.call_sid, []).append(c.sequence_number)
    assert any(seqs != sorted(seqs) for seqs in order.values()), "no callback reordered"

    lost_ends = {c.call_sid for c in dropped if c.call_status in TERMINAL_CALL_STATUSES}
    with default_context().database.session() as session:
        fetched = set(session.scalars(select(Event.call_sid).where(
            Event.source == "reconciler", Event.call_status.in_(TERMINAL_CALL_STATUSES))))
    assert lost_ends <= fetched, "a call whose last callback was lost was never fetched"


def dialing_started(ids: dict[str, str]) -> bool:
    return any(a.call_sid for job in jobs_of(ids).values() for a in job.attempt_rows)


def test_database_unavailable_for_a_while_loses_nothing(make_stack, database_url, request):
    """Tasks that meet the outage fail with OperationalError, back off and retry; the
    dispatcher and the reconciler pick up where they stopped."""
    stack = start(make_stack)
    ids = enqueue(stack)
    wait_for(lambda: dialing_started(ids), timeout=first_call_s(len(ids)), interval=POLL_S,
             what="the first call")
    postgres = request.getfixturevalue("postgres_server") if "postgres" in database_url else None
    with database_down(database_url, postgres):
        # No query from here: the test's own connections would meet the outage too.
        # The next dispatch tick or reconciler run meets the outage; on SQLite, once it has
        # waited out the busy timeout.
        wait_for(lambda: DB_RETRY.search(worker_logs(stack)),
                 timeout=reconciler_runs_s(1) + deadline(SQLITE_BUSY_TIMEOUT_S), interval=0.25,
                 what="a task to retry after a database error")
    wait_all_final(stack, ids)
    assert_promises(stack, ids)


def test_webhook_down_the_reconciler_finishes_every_call(make_stack):
    """Every callback after the outage starts is lost (connection refused): the reconciler
    fetches each silent call, decides its job and lets its retries go on."""
    stack = start(make_stack)
    ids = enqueue(stack)
    wait_for(lambda: dialing_started(ids), timeout=first_call_s(len(ids)), interval=POLL_S,
             what="the first call")
    next(p for p in stack.processes if p.name == "webhook").stop()
    down_since = time.time()
    # Down until the whole campaign is over: the reconciler alone has to finish it.
    wait_all_final(stack, ids)
    assert_promises(stack, ids)

    lost = {c.call_sid for c in stack.sim.callbacks()
            if c.sent_at > down_since and c.response_status is None}
    created_during = {c.sid for c in stack.sim.creates() if c.sid and c.arrived_at > down_since}
    assert created_during, "no call placed while the webhook was down"
    with default_context().database.session() as session:
        fetched = set(session.scalars(select(Event.call_sid).where(
            Event.source == "reconciler", Event.call_status.in_(TERMINAL_CALL_STATUSES))))
    assert created_during <= lost, "a call placed during the outage had a callback answered"
    assert created_during <= fetched, "a call placed during the outage was never fetched"


def test_hostile_values_with_a_valid_signature_are_stored_inert(make_stack):
    """Bad input without a valid signature is tests/integration/test_webhook.py's; here a
    correctly signed callback carries SQL and HTML: it is answered 204, stored verbatim, and
    changes no job. An unknown CallSid is kept as an orphan event."""
    cases = {n: CASES[n] for n in ("+14155552001", "+14155552002")}
    stack = start(make_stack, workers=1)
    ids = enqueue(stack, cases)
    wait_all_final(stack, ids)
    before = snapshot(ids)
    known = get_job(ids["+14155552001"]).attempt_rows[0].call_sid
    stranger = "CA" + uuid.uuid4().hex
    url = stack.env["DIALER_PUBLIC_URL"] + "/twilio/status"
    hostile = {
        "To": "+14155552002'; DROP TABLE jobs; --",
        "From": "<script>alert(1)</script>",
        "AnsweredBy": "human\" OR 1=1 --",
        "ErrorCode": "1; DELETE FROM attempts",
        "ErrorMessage": "<img src=x onerror=alert(1)>",
        "CallDuration": "1e999",
        "Timestamp": "Robert'); DROP TABLE events;--",
        "Caller": "\u202e\u0000x",
    }
    posts = [(stranger, "completed", "3"), (known, "failed", "9"),
             (known, "ringing", "0 OR 1=1")]
    with requests.Session() as http:
        for call_sid, call_status, sequence in posts:
            params = {**hostile, "CallSid": call_sid, "CallStatus": call_status,
                      "SequenceNumber": sequence, "AccountSid": stack.env["TWILIO_ACCOUNT_SID"]}
            signature = RequestValidator(SIM_AUTH_TOKEN).compute_signature(url, params)
            response = http.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                 timeout=10)
            assert (response.status_code, response.content) == (204, b"")

    def stored() -> list[Any] | None:
        # Filtered here, not with ->> in SQL: PostgreSQL's json type keeps the escaped
        # U+0000, but refuses to turn it into text.
        with default_context().database.session() as session:
            rows = session.execute(select(Event.call_sid, Event.attempt_id, Event.payload)
                                   .where(Event.call_sid.in_([known, stranger]))).all()
        rows = [row for row in rows if row.payload.get("From") == hostile["From"]]
        return rows if len(rows) == len(posts) else None

    rows = wait_for(stored, timeout=deadline(0), interval=POLL_S,
                    what="the three callbacks stored")
    for call_sid, attempt_id, payload in rows:
        assert {k: payload[k] for k in hostile} == hostile
        assert (attempt_id is None) == (call_sid == stranger)
    assert snapshot(ids) == before
    with default_context().database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == len(cases)
        assert session.scalar(select(func.count()).select_from(Attempt)) == len(cases)
    assert_final_states_hold(stack, ids)


# --- property: any interleaving and repetition of one call's callbacks --------------------

PATHS = {  # a call's callbacks in order, SequenceNumber 0, 1, ...
    "completed": ["initiated", "ringing", "in-progress", "completed"],
    "busy": ["initiated", "ringing", "busy"],
    "no-answer": ["initiated", "ringing", "no-answer"],
    "failed": ["initiated", "failed"],
}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A call's end, and its callbacks' indexes in delivery order: each at least once."""
    end = draw(st.sampled_from(sorted(PATHS)))
    n = len(PATHS[end])
    order = list(draw(st.permutations(range(n))))
    for index, position in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 99)),
                                         max_size=6)):
        order.insert(position % (len(order) + 1), index)
    return end, order


def feed(ctx: Context, number: str, end: str, order: list[int]) -> tuple[Any, ...]:
    """Deliver one call's callbacks in `order`; what the job and its attempt end up as."""
    call_sid = "CA" + uuid.uuid4().hex
    job_id = dialing_job(ctx, number, call_sid, retry_delays=[1], max_attempts=MAX_ATTEMPTS)
    path = PATHS[end]
    for index in order:
        params = {"CallSid": call_sid, "CallStatus": path[index], "SequenceNumber": str(index),
                  "To": number, "From": "+14155550100",
                  "Timestamp": f"Tue, 24 Nov 2026 10:00:0{index} +0000"}
        if path[index] == end:
            params |= {"CallDuration": "35" if end == "completed" else "0",
                       "SipResponseCode": {"completed": "200", "busy": "486",
                                           "no-answer": "487", "failed": "404"}[end]}
        handle_status(ctx, params, idempotency_token=f"{call_sid}-{index}")
    job = get_job(job_id)
    (attempt,) = job.attempt_rows
    with ctx.database.session() as session:
        events = session.scalars(select(Event.sequence_number)
                                 .where(Event.call_sid == call_sid)).all()
    return (job.status, job.outcome, job.attempts, job.next_attempt_at is not None,
            attempt.status, attempt.last_sequence, attempt.duration,
            attempt.sip_response_code, attempt.ended_at, sorted(events))


@hsettings(max_examples=30, deadline=None, database=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=deliveries())
def test_any_interleaving_of_a_calls_callbacks_stores_the_in_order_result(producer_env, ctx,
                                                                          delivery):
    end, order = delivery
    in_order = feed(ctx, "+14155552101", end, list(range(len(PATHS[end]))))
    assert feed(ctx, "+14155552102", end, order) == in_order
    assert in_order[4] == end
