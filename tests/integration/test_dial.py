"""Enqueue and dial, end to end: real Redis, real Celery workers, the simulator, both databases."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select

from harness.stack import CALLER_ID, VOICE_URL, job_in
from harness.waiting import wait_for
from worker.api import enqueue_call, get_job
from worker.store.models import Job
from worker.wiring import default_context

pytestmark = pytest.mark.integration

TO = "+14155550123"


def dialed(job_id: str):
    """The job once its attempt holds a CallSid."""
    job = get_job(job_id)
    return job if job and job.attempt_rows and job.attempt_rows[-1].call_sid else None


def accepted_creates(sim, to: str | None = None) -> list:
    return [c for c in sim.creates() if c.status == 201 and (to is None or c.to == to)]


def test_enqueued_job_is_dialed_with_our_callback(make_stack):
    stack = make_stack().start_all()
    job_id = enqueue_call(TO, url=VOICE_URL)

    job = wait_for(lambda: dialed(job_id), timeout=20, what="the call to be created")
    assert job.status in ("dialing", "completed")
    [create] = stack.sim.creates()
    assert create.sid == job.attempt_rows[0].call_sid
    assert stack.sim.call(create.sid)["to"] == TO
    assert create.params["To"] == [TO]
    assert create.params["From"] == [CALLER_ID]
    assert create.params["Url"] == [VOICE_URL]
    assert create.params["StatusCallback"] == [stack.env["DIALER_PUBLIC_URL"] + "/twilio/status"]
    assert create.params["StatusCallbackMethod"] == ["POST"]
    # Only the events the dialer acts on: one callback fewer to sign, handle and store each.
    assert create.params["StatusCallbackEvent"] == ["answered", "completed"]


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


@pytest.mark.parametrize(("cps", "calls"), [(5, 30), (1, 10)])
def test_pace_is_global_across_worker_processes(make_stack, cps, calls):
    """3 processes in 2 worker instances share one pace: creates never closer than 1/cps."""
    stack = make_stack(DIALER_CALLS_PER_SECOND=str(cps), DIALER_MAX_PACING_WAIT="60")
    stack.start_webhook()
    stack.start_worker("w1", concurrency=2)
    stack.start_worker("w2", concurrency=1)
    stack.start_beat()
    # A process's first create carries one-time costs between its slot and Twilio (its
    # first database and HTTP connections after the fork; up to ~0.1 s on a loaded 2-core
    # machine): one call per process first (w1 takes two, one per child), so the measured
    # gaps are the pace's.
    warm_up = {f"+1415555{1900 + n:04d}" for n in range(3)}
    for number in warm_up:
        enqueue_call(number, url=VOICE_URL)
    wait_for(lambda: len(accepted_creates(stack.sim)) >= len(warm_up), timeout=30,
             what="the warm-up creates")
    ids = [enqueue_call(f"+1415555{1000 + n:04d}", url=VOICE_URL) for n in range(calls)]

    wait_for(
        lambda: len(accepted_creates(stack.sim)) >= calls + len(warm_up),
        timeout=calls / cps + 30,
        what=f"{calls} creates",
    )
    times = [c.arrived_at for c in accepted_creates(stack.sim) if c.to not in warm_up]
    assert len(times) == calls
    # Slots are exactly 1/cps apart on the Redis clock (test_pacing proves it to the
    # millisecond); as Twilio sees them, two creates can be closer by the difference in
    # their send latency: a process woken late while the suite's other tests load the
    # cores, seen up to 0.07 s. Processes pacing themselves instead of sharing one pace
    # would send creates within milliseconds of each other, which this still catches.
    send_jitter = 0.1
    assert min(_gaps(times)) >= 1 / cps - send_jitter, _gaps(times)
    # Never faster on average, and no idle seconds: the batch spans (calls - 1) / cps.
    assert max(times) - min(times) >= (calls - 1) / cps - send_jitter
    assert max(times) - min(times) <= (calls - 1) / cps + 2.0
    assert {c.to for c in accepted_creates(stack.sim)} - warm_up == {
        f"+1415555{1000 + n:04d}" for n in range(calls)
    }
    # The last CallSid is stored a moment after its create arrived.
    wait_for(lambda: all(dialed(i) for i in ids), timeout=10, what="every CallSid stored")


def test_idempotency_key_gives_one_job_and_one_call(make_stack):
    stack = make_stack().start_all()
    first = enqueue_call(TO, url=VOICE_URL, idempotency_key="order-42")
    assert enqueue_call(TO, url=VOICE_URL, idempotency_key="order-42") == first

    barrier = threading.Barrier(2)
    results: list[str] = []

    def racer() -> None:
        barrier.wait()
        results.append(enqueue_call("+14155550124", url=VOICE_URL, idempotency_key="race"))

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1]

    wait_for(lambda: dialed(first) and dialed(results[0]), timeout=20, what="both dialed")
    with default_context().database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2
    wait_for(lambda: len(accepted_creates(stack.sim)) >= 2, timeout=10, what="two creates")
    assert sorted(c.to for c in stack.sim.creates()) == [TO, "+14155550124"]


def test_transient_api_errors_are_retried_and_each_job_dialed_once(make_stack):
    stack = make_stack(DIALER_CALLS_PER_SECOND="50")
    stack.sim.set_faults(api_error_rate=0.4, api_error_statuses=(503, 429))
    stack.start_all(concurrency=3)
    numbers = [f"+1415555{2000 + n:04d}" for n in range(12)]
    ids = [enqueue_call(n, url=VOICE_URL) for n in numbers]

    wait_for(lambda: all(dialed(i) for i in ids), timeout=60, what="every job dialed")
    refused = [c for c in stack.sim.creates() if c.status in (503, 429)]
    assert refused, "the fault injection did not fire; the test proves nothing"
    for number in numbers:
        assert len(accepted_creates(stack.sim, number)) == 1, number


def test_ambiguous_500_is_never_blindly_retried(make_stack):
    stack = make_stack()
    stack.sim.set_faults(api_error_rate=1.0, api_error_statuses=(500,), ambiguous_after_create=True)
    stack.start_all()
    job_id = enqueue_call(TO, url=VOICE_URL)

    def unknown():
        job = get_job(job_id)
        return job if job.attempt_rows and job.attempt_rows[0].status == "unknown" else None

    job = wait_for(unknown, timeout=20, what="the attempt to be marked unknown")
    assert job.status == "dialing"
    assert job.attempt_rows[0].error_code == 20500  # the code in the 500 body, kept
    assert "500" in job.attempt_rows[0].error_message
    # Several dispatcher ticks later, still exactly the one create Twilio received.
    ticks_before = stack.processes[-1].log().count("dialer.dispatch_due")
    wait_for(
        lambda: stack.processes[-1].log().count("dialer.dispatch_due") >= ticks_before + 5,
        timeout=10,
        what="five more dispatcher ticks",
    )
    assert len([c for c in stack.sim.creates() if c.to == TO]) == 1
    assert get_job(job_id).attempts == 1


def test_permanent_error_fails_the_job_with_the_code(make_stack):
    stack = make_stack()
    stack.sim.set_scenario({"+14155550199": ["error:21217"]})
    stack.start_all()
    job_id = enqueue_call("+14155550199", url=VOICE_URL)

    job = wait_for(lambda: job_in(job_id, {"failed"}), timeout=20, what="the job to fail")
    assert job.error_code == 21217
    assert job.outcome == "21217"
    assert job.attempts == 1
    assert job.attempt_rows[0].status == "rejected"
    assert len(stack.sim.creates()) == 1
