"""worker/adapters/pacing.py against a real redis-server: the real Lua script, the real
server clock.

Redis TIME and time.time() read the same machine clock here, so a slot is
estimated as the local time around reserve() plus the wait it returned; the
estimate is uncertain by half the round trip, which the tolerances include.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from harness.servers import RedisServer
from harness.stack import dialer
from worker.adapters.pacing import Pacer, PacingBacklog

pytestmark = pytest.mark.integration

TOLERANCE = 0.001  # 1 ms, on top of the measured round-trip uncertainty
MARGIN = 0.01  # large enough that an interval without it is off by more than TOLERANCE


def spacing(cps: float) -> float:
    """The seconds between two slots: the interval and its safety margin."""
    return (1 + MARGIN) / cps


def new_account() -> str:
    return f"AC{uuid.uuid4().hex}"


@pytest.fixture
def client(redis_server) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.close()


def reserve_slot(pacer: Pacer) -> tuple[float, float, float]:
    """(wait, estimated slot, uncertainty of the estimate) for one reservation."""
    before = time.time()
    wait = pacer.reserve()
    after = time.time()
    return wait, (before + after) / 2 + wait, (after - before) / 2


def expect_backlog(pacer: Pacer) -> tuple[float, float, float]:
    before = time.time()
    with pytest.raises(PacingBacklog) as info:
        pacer.reserve()
    after = time.time()
    wait = info.value.wait
    return wait, (before + after) / 2 + wait, (after - before) / 2


@pytest.mark.parametrize("cps", [1, 5, 0.5])
def test_sequential_reservations_are_spaced_one_interval_apart(client, cps):
    pacer = Pacer(client, new_account(), cps, max_wait=60, margin=MARGIN)
    reserved = [reserve_slot(pacer) for _ in range(5)]
    assert reserved[0][0] == 0  # a fresh account dials at once
    waits = [wait for wait, _, _ in reserved]
    assert waits == sorted(waits)
    for (_, slot_a, err_a), (_, slot_b, err_b) in itertools.pairwise(reserved):
        assert abs((slot_b - slot_a) - spacing(cps)) <= TOLERANCE + err_a + err_b, (cps, reserved)


def test_accounts_are_paced_independently(client):
    busy = Pacer(client, new_account(), 1, max_wait=60, margin=MARGIN)
    for _ in range(5):
        busy.reserve()
    other = Pacer(client, new_account(), 1, max_wait=60, margin=MARGIN)
    wait, slot_a, err_a = reserve_slot(other)
    assert wait == 0
    _, slot_b, err_b = reserve_slot(other)
    assert abs((slot_b - slot_a) - spacing(1)) <= TOLERANCE + err_a + err_b


def test_the_same_account_shares_one_schedule_across_pacers(client, redis_server):
    account = new_account()
    first = Pacer(client, account, 5, max_wait=60, margin=MARGIN)
    second_client = redis.Redis.from_url(redis_server.url)
    try:
        second = Pacer(second_client, account, 5, max_wait=60, margin=MARGIN)
        _, slot_a, err_a = reserve_slot(first)
        _, slot_b, err_b = reserve_slot(second)
        _, slot_c, err_c = reserve_slot(first)
    finally:
        second_client.close()
    assert abs((slot_b - slot_a) - spacing(5)) <= TOLERANCE + err_a + err_b
    assert abs((slot_c - slot_b) - spacing(5)) <= TOLERANCE + err_b + err_c


def test_a_slot_beyond_max_wait_raises_and_reserves_nothing(client):
    account = new_account()
    pacer = Pacer(client, account, 1, max_wait=2.5, margin=MARGIN)
    reserved = [reserve_slot(pacer) for _ in range(3)]  # slots at +0, +1.01, +2.02
    first_slot, first_err = reserved[0][1], reserved[0][2]

    wait, slot, err = expect_backlog(pacer)  # +3.03 is more than 2.5 s away
    assert 2.5 < wait <= 3 * spacing(1)
    assert abs(slot - (first_slot + 3 * spacing(1))) <= TOLERANCE + first_err + err

    # Nothing was reserved: asking again finds the very same slot, still too far.
    wait, slot, err = expect_backlog(pacer)
    assert abs(slot - (first_slot + 3 * spacing(1))) <= TOLERANCE + first_err + err

    # A patient worker on the same account gets exactly that slot, not a later one.
    patient = Pacer(client, account, 1, max_wait=60, margin=MARGIN)
    wait, slot, err = reserve_slot(patient)
    assert abs(slot - (first_slot + 3 * spacing(1))) <= TOLERANCE + first_err + err
    wait, slot, err = reserve_slot(patient)
    assert abs(slot - (first_slot + 4 * spacing(1))) <= TOLERANCE + first_err + err


def test_a_zero_max_wait_allows_only_a_free_slot(client):
    pacer = Pacer(client, new_account(), 1, max_wait=0, margin=MARGIN)
    assert pacer.reserve() == 0
    with pytest.raises(PacingBacklog) as info:
        pacer.reserve()
    assert 0.9 < info.value.wait <= spacing(1)
    assert "next dial slot" in str(info.value)


def sleep_until(deadline: float) -> None:
    """Sleep to a known instant (coarse sleep, then a short spin for precision)."""
    while (remaining := deadline - time.time()) > 0:
        time.sleep(remaining - 0.001 if remaining > 0.002 else 0)


def test_idle_time_gives_no_burst(client):
    interval = 0.05
    pacer = Pacer(client, new_account(), 1 / interval, max_wait=60, margin=MARGIN)
    assert pacer.reserve() == 0
    _, slot, err = reserve_slot(pacer)
    sleep_until(slot + err + interval + 0.002)  # past the slot after the last reserved one
    wait, slot_a, err_a = reserve_slot(pacer)
    assert wait == 0  # the line is empty: dial at once
    # ... but the one after still waits a full interval: the idle time banked nothing.
    _, slot_b, err_b = reserve_slot(pacer)
    assert abs((slot_b - slot_a) - spacing(1 / interval)) <= TOLERANCE + err_a + err_b


# --- several processes share the pace -----------------------------------------------------


def _dial_at_slots(url: str, account: str, cps: float, count: int,
                   barrier: multiprocessing.synchronize.Barrier,
                   results: multiprocessing.Queue) -> None:
    """A worker process: reserve a slot, sleep to it, record when it 'dials'; repeat.

    Each record is (earliest, latest, dialed): the slot lies between the local
    time before and after reserve() plus the wait (Redis TIME is this clock).
    """
    connection = redis.Redis.from_url(url)
    pacer = Pacer(connection, account, cps, max_wait=30, margin=MARGIN)
    records = []
    barrier.wait(timeout=30)
    for _ in range(count):
        before = time.time()
        wait = pacer.reserve()
        after = time.time()
        sleep_until(after + wait)  # the slot, or just after it
        records.append((before + wait, after + wait, time.time()))
    connection.close()
    results.put(records)


def test_three_processes_never_dial_closer_than_one_interval(redis_server):
    cps, per_process, processes = 20.0, 5, 3
    interval = spacing(cps)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    account = new_account()
    workers = [
        context.Process(target=_dial_at_slots,
                        args=(redis_server.url, account, cps, per_process, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        per_worker = [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
    assert [worker.exitcode for worker in workers] == [0] * processes
    assert [len(records) for records in per_worker] == [per_process] * processes

    # Each slot is known to within its own reserve() round trip: (midpoint, half-width).
    # A process descheduled inside reserve() knows its slot too loosely to place it on the
    # grid, so the grid is checked on the sharp ones, by index from the sharpest: each on
    # the grid, no two on one index (no overlap), no hole the loose ones could not fill.
    records = [((earliest + latest) / 2, (latest - earliest) / 2, earliest, dialed)
               for records in per_worker for earliest, latest, dialed in records]
    sharp = [(slot, err) for slot, err, _, _ in records if err <= interval / 4]
    assert sharp, records
    reference, reference_err = min(sharp, key=lambda record: record[1])
    indices = []
    for slot, err in sharp:
        index = round((slot - reference) / interval)
        assert abs(slot - reference - index * interval) <= TOLERANCE + err + reference_err, records
        indices.append(index)
    assert len(set(indices)) == len(indices), records
    assert max(indices) - min(indices) < len(records), records
    # Nobody dials before its slot: with the grid above, never sooner than spacing(cps)
    # after the previous slot, whenever the previous process woke.
    assert all(dialed >= earliest for _, _, earliest, dialed in records), records


# --- without Redis nobody dials -----------------------------------------------------------


def test_reserve_fails_closed_when_redis_is_stopped(tmp_path):
    server = RedisServer(tmp_path).start()
    connection = redis.Redis.from_url(server.url, socket_connect_timeout=2, socket_timeout=2)
    try:
        pacer = Pacer(connection, new_account(), 1, max_wait=10, margin=MARGIN)
        assert pacer.reserve() == 0
    finally:
        server.stop()
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            pacer.reserve()

        # Back again (empty, as after a crash): the script is loaded anew and pacing resumes.
        server.start()
        assert pacer.reserve() == 0
        assert 0.9 < pacer.reserve() <= spacing(1)
    finally:
        server.stop()
        connection.close()


def test_reserve_fails_closed_when_redis_was_never_there(tmp_path):
    server = RedisServer(tmp_path)  # a free port, nothing started on it
    connection = redis.Redis.from_url(server.url, socket_connect_timeout=2)
    pacer = Pacer(connection, new_account(), 1, max_wait=10, margin=MARGIN)
    with pytest.raises(redis.exceptions.ConnectionError):
        pacer.reserve()
    connection.close()


def test_the_pace_belongs_to_the_account_not_to_each_worker(client, caplog):
    account = new_account()
    first = Pacer(client, account, 1, max_wait=60, margin=MARGIN)
    assert first.pace() is None  # nothing stored before the first reservation
    first.reserve()
    assert first.pace() == 1.0
    # another worker, configured otherwise
    faster = Pacer(client, account, 2.5, max_wait=60, margin=MARGIN)

    with caplog.at_level("WARNING", logger="worker.adapters.pacing"):
        slots = [reserve_slot(faster) for _ in range(2)]

    (_, a, err_a), (_, b, err_b) = slots
    assert abs((b - a) - spacing(1)) <= TOLERANCE + err_a + err_b  # the account's 1/s
    assert [r.getMessage() for r in caplog.records] == [
        "the account's pace is 1.0 calls/s (dialer pace set); this worker's "
        "DIALER_CALLS_PER_SECOND=2.5 is only the initial value"]


def test_a_pace_set_applies_to_every_worker_from_its_next_reservation(client):
    account = new_account()
    workers = [Pacer(client, account, 1, max_wait=60, margin=MARGIN) for _ in range(2)]
    workers[0].set_pace(4)
    assert workers[1].pace() == 4.0

    slots = [reserve_slot(workers[n % 2]) for n in range(4)]

    for (_, a, err_a), (_, b, err_b) in itertools.pairwise(slots):
        assert abs((b - a) - spacing(4)) <= TOLERANCE + err_a + err_b, slots


@pytest.mark.parametrize("value", [0, -1, 1001, float("inf"), float("nan"), True, "2"])
def test_a_pace_out_of_bounds_is_refused_naming_the_field(client, value):
    pacer = Pacer(client, new_account(), 1, max_wait=60, margin=MARGIN)
    with pytest.raises(ValueError, match=r"^calls_per_second: "):
        pacer.set_pace(value)
    assert pacer.pace() is None


def test_dialer_pace_set_and_show_change_the_account_pace(client, redis_server):
    account = new_account()
    env = {"DIALER_REDIS_URL": redis_server.url, "TWILIO_ACCOUNT_SID": account,
           "TWILIO_AUTH_TOKEN": "x", "DIALER_CALLS_PER_SECOND": "1"}
    shown = dialer(env, "pace", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("not set: the first worker to dial stores its "
                                   "DIALER_CALLS_PER_SECOND (1 here)")

    changed = dialer(env, "pace", "set", "2.5")

    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.startswith("2.5 calls/s for every worker")
    assert Pacer(client, account, 1, max_wait=60, margin=MARGIN).pace() == 2.5
    for bad in ("0", "abc", "5000"):
        refused = dialer(env, "pace", "set", bad)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines()[-1].lower().startswith(
            ("error: calls_per_second:", "error: invalid value for 'calls_per_second'")), bad
    assert "2.5 calls/s" in dialer(env, "pace", "show").stdout


def departed(client: redis.Redis, account: str) -> int:
    """The account's last recorded departure, µs on the Redis clock (time.time()'s here)."""
    return int(client.get(f"dialer:pace:{account}:departed"))


def test_creates_never_leave_within_an_interval_and_the_margin(client):
    account = new_account()
    first, second = (Pacer(client, account, 5, max_wait=60, margin=MARGIN) for _ in range(2))
    # Both slots are free at once: a late wake-up of one worker can make this happen.
    assert first.depart() == 0
    recorded = [departed(client, account)]
    for pacer in (second, first, second):
        asked = 0
        while (wait := pacer.depart()) > 0:  # sleep as the worker does, then ask again
            asked += 1
            assert wait <= spacing(5)
            time.sleep(wait)
        left = time.time()
        recorded.append(departed(client, account))
        assert asked >= 1  # each had to wait for the one before
        assert left * 1_000_000 >= recorded[-1] - 1  # 0 means the departure is reached
    for a, b in itertools.pairwise(recorded):
        assert b - a >= round(spacing(5) * 1_000_000), recorded


def test_a_pace_margin_out_of_bounds_is_refused_naming_the_field(client):
    for value in (-0.001, 0.051, float("nan"), True, "0.01"):
        with pytest.raises(ValueError, match=r"^margin: "):
            Pacer(client, new_account(), 1, max_wait=60, margin=value)
