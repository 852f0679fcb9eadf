"""worker/domain/lifecycle.py: the attempt state order and the retry policy, as pure functions."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from worker.domain.lifecycle import (
    RETRY_JITTER,
    JobPolicy,
    decide,
    is_terminal,
    moves_forward,
    retry_delay,
)
from worker.domain.statuses import (
    CALL_STATUSES,
    TERMINAL_CALL_STATUSES,
    AttemptStatus,
    JobStatus,
)

PROPERTY = hsettings(derandomize=True, database=None, max_examples=300, deadline=None)

# Twilio's call lifecycle in order; our pre-create states sit below queued, and every terminal
# status (Twilio's five, and our `rejected` for a refused create) is the top.
LEVELS: list[set[str]] = [
    {"creating", "unknown"},
    {"queued"},
    {"initiated"},
    {"ringing"},
    {"in-progress"},
    {"completed", "busy", "no-answer", "failed", "canceled", "rejected"},
]
LEVEL = {status: i for i, level in enumerate(LEVELS) for status in level}
TWILIO_TERMINAL = ["completed", "busy", "no-answer", "failed", "canceled"]
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_the_levels_cover_every_attempt_status():
    assert set(LEVEL) == {s.value for s in AttemptStatus}


def test_terminal_and_twilio_statuses():
    assert set(TERMINAL_CALL_STATUSES) == set(TWILIO_TERMINAL)
    assert set(CALL_STATUSES) == {"queued", "initiated", "ringing", "in-progress",
                                  *TWILIO_TERMINAL}
    for status in TWILIO_TERMINAL:
        assert is_terminal(status)
    for status in ("creating", "unknown", "queued", "initiated", "ringing", "in-progress"):
        assert not is_terminal(status)


@pytest.mark.parametrize("current", sorted(LEVEL))
@pytest.mark.parametrize("incoming", sorted(LEVEL))
def test_moves_forward_over_every_pair(current, incoming):
    assert moves_forward(current, incoming) is (LEVEL[incoming] > LEVEL[current])


def test_moves_forward_accepts_the_enum_as_well_as_strings():
    assert moves_forward(AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)
    assert not moves_forward(AttemptStatus.COMPLETED, "ringing")


@pytest.mark.parametrize("terminal", TWILIO_TERMINAL)
def test_a_terminal_status_is_never_replaced(terminal):
    for incoming in LEVEL:
        assert not moves_forward(terminal, incoming)


def test_the_in_order_path_always_moves_forward():
    path = ["creating", "queued", "initiated", "ringing", "in-progress", "completed"]
    for current, incoming in itertools.pairwise(path):
        assert moves_forward(current, incoming)
    assert moves_forward("unknown", "completed")
    assert moves_forward("unknown", "queued")


@pytest.mark.parametrize("path", [["creating", "queued", "in-progress", "completed"],
                                  ["creating", "queued", "busy"],
                                  ["creating", "queued", "no-answer"]])
def test_the_default_callbacks_path_skips_initiated_and_ringing(path):
    # The dialer asks for `answered` and `completed` only: a queued attempt hears one of
    # them first.
    for current, incoming in itertools.pairwise(path):
        assert moves_forward(current, incoming)


# --- retry_delay --------------------------------------------------------------------------


@pytest.mark.parametrize(("attempts_made", "expected"),
                         [(1, 300), (2, 900), (3, 3600), (4, 3600), (50, 3600)])
def test_retry_delay_uses_the_delay_for_the_attempt_and_repeats_the_last(attempts_made, expected):
    assert retry_delay([300, 900, 3600], attempts_made) == expected


@pytest.mark.parametrize("attempts_made", [1, 2, 7])
def test_a_single_retry_delay_always_applies(attempts_made):
    assert retry_delay([45], attempts_made) == 45


# --- decide -------------------------------------------------------------------------------

POLICY = JobPolicy(max_attempts=3, retry_on=["busy", "no-answer", "failed"],
                   retry_delays=[300, 900, 3600])


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("attempts_made", [1, 2, 3, 10])
def test_completed_completes_the_job(attempts_made):
    decision = decide(POLICY, attempts_made, "completed", NOW)
    assert decision.status == JobStatus.COMPLETED
    assert decision.outcome == "completed"
    assert decision.next_attempt_at is None


@pytest.mark.parametrize("attempts_made", [1, 3])
def test_canceled_cancels_the_job_even_with_attempts_left(attempts_made):
    policy = JobPolicy(max_attempts=5, retry_on=["busy", "no-answer", "failed"],
                       retry_delays=[1])
    decision = decide(policy, attempts_made, "canceled", NOW)
    assert decision.status == JobStatus.CANCELED
    assert decision.outcome == "canceled"
    assert decision.next_attempt_at is None


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
@pytest.mark.parametrize(("attempts_made", "delay"), [(1, 300), (2, 900)])
def test_retryable_with_attempts_left_is_scheduled_after_the_delay(status, attempts_made, delay):
    low = decide(POLICY, attempts_made, status, NOW, rng=FixedRandom(0.0))
    assert low.status == JobStatus.SCHEDULED
    assert low.outcome == status
    assert low.next_attempt_at == NOW + timedelta(seconds=delay)

    high = decide(POLICY, attempts_made, status, NOW, rng=FixedRandom(0.999999))
    assert high.status == JobStatus.SCHEDULED
    assert NOW + timedelta(seconds=delay) < high.next_attempt_at
    assert high.next_attempt_at <= NOW + timedelta(seconds=delay * 1.1)


def test_the_jitter_is_at_most_ten_percent():
    assert 0 < RETRY_JITTER <= 0.1


@PROPERTY
@given(delays=st.lists(st.integers(0, 86_400), min_size=1, max_size=5),
       attempts_made=st.integers(1, 9), seed=st.integers(0, 2**32),
       status=st.sampled_from(["busy", "no-answer", "failed"]),
       offset_hours=st.integers(-12, 14))
def test_next_attempt_is_now_plus_delay_plus_jitter(delays, attempts_made, seed, status,
                                                    offset_hours):
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=offset_hours)))
    policy = JobPolicy(max_attempts=10, retry_on=[status], retry_delays=delays)
    decision = decide(policy, attempts_made, status, now, rng=random.Random(seed))
    delay = delays[min(attempts_made, len(delays)) - 1]
    assert decision.status == JobStatus.SCHEDULED
    assert decision.outcome == status
    assert decision.next_attempt_at.tzinfo is not None
    waited = (decision.next_attempt_at - now).total_seconds()
    assert delay <= waited <= delay * 1.1 + 1e-6


def test_without_an_rng_the_jitter_still_stays_in_bounds():
    for _ in range(50):
        decision = decide(POLICY, 1, "busy", NOW)
        assert NOW + timedelta(seconds=300) <= decision.next_attempt_at
        assert decision.next_attempt_at <= NOW + timedelta(seconds=330)


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
@pytest.mark.parametrize("attempts_made", [3, 4])
def test_retryable_without_attempts_left_fails(status, attempts_made):
    decision = decide(POLICY, attempts_made, status, NOW)
    assert decision.status == JobStatus.FAILED
    assert decision.outcome == status
    assert decision.next_attempt_at is None


def test_a_single_attempt_is_never_retried():
    policy = JobPolicy(max_attempts=1, retry_on=["busy"], retry_delays=[1])
    decision = decide(policy, 1, "busy", NOW)
    assert decision.status == JobStatus.FAILED
    assert decision.outcome == "busy"


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
def test_a_status_not_in_retry_on_fails_with_that_outcome(status):
    others = [s for s in ("busy", "no-answer", "failed") if s != status]
    policy = JobPolicy(max_attempts=5, retry_on=others, retry_delays=[10])
    decision = decide(policy, 1, status, NOW)
    assert decision.status == JobStatus.FAILED
    assert decision.outcome == status
    assert decision.next_attempt_at is None


def test_an_empty_retry_on_never_retries():
    policy = JobPolicy(max_attempts=5, retry_on=[], retry_delays=[10])
    for status in ("busy", "no-answer", "failed"):
        assert decide(policy, 1, status, NOW).status == JobStatus.FAILED


def test_a_zero_delay_retries_at_once():
    policy = JobPolicy(max_attempts=2, retry_on=["busy"], retry_delays=[0])
    decision = decide(policy, 1, "busy", NOW, rng=FixedRandom(0.9))
    assert decision.next_attempt_at == NOW


# --- out of order and repeated callbacks --------------------------------------------------

# A call's status reports in the order they happen: a subset of the progress
# statuses, in order, then (unless it is still live) one terminal status.
_PROGRESS = ["queued", "initiated", "ringing", "in-progress"]


@st.composite
def call_histories(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    progress = [s for s in _PROGRESS if draw(st.booleans())]
    terminal = draw(st.one_of(st.none(), st.sampled_from(TWILIO_TERMINAL)))
    in_order = progress + ([terminal] if terminal else [])
    if not in_order:
        in_order = ["queued"]
    # Every report arrives at least once, some more than once, in any order.
    extra = draw(st.lists(st.sampled_from(in_order), max_size=10))
    delivered = draw(st.permutations(in_order + extra))
    return in_order, delivered


def fold(statuses: list[str], start: str = "creating") -> tuple[str, int]:
    """The attempt's final status, and how many times it entered a terminal status."""
    current, terminal_entries = start, 0
    for incoming in statuses:
        if moves_forward(current, incoming):
            current = incoming
            terminal_entries += is_terminal(incoming)
    return current, terminal_entries


@PROPERTY
@given(history=call_histories(), start=st.sampled_from(["creating", "unknown"]))
def test_any_delivery_order_reaches_the_same_final_status(history, start):
    in_order, delivered = history
    expected, entries_in_order = fold(in_order, start)
    assert expected == in_order[-1]
    final, entries = fold(delivered, start)
    assert final == expected
    # A terminal status is acted on exactly once, however often it is delivered.
    assert entries == entries_in_order == (1 if is_terminal(expected) else 0)
