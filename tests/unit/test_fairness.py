"""worker/domain/fairness.py: weighted fair queuing of one pace among campaigns, pure."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from worker.domain.fairness import Demand, fair_share

PROPERTY = hsettings(derandomize=True, database=None, max_examples=300, deadline=None)
PLENTY = 10_000


def run(ticks: int, room: int, weights: dict[str, int],
        vtimes: dict[str, float]) -> tuple[Counter[str], dict[str, float]]:
    """`ticks` rounds with every campaign backlogged, carrying virtual times forward the
    way the dispatcher stores them."""
    vtimes = dict(vtimes)
    total: Counter[str] = Counter()
    for _ in range(ticks):
        shares, new = fair_share(room, {c: Demand(w, PLENTY, vtimes[c])
                                        for c, w in weights.items()})
        assert sum(shares.values()) == room
        total.update(shares)
        vtimes.update(new)
    return total, vtimes


def test_shares_follow_weights_over_many_ticks() -> None:
    total, vtimes = run(40, 10, {"light": 1, "heavy": 3}, {"light": 0.0, "heavy": 0.0})
    assert total["light"] + total["heavy"] == 400
    assert abs(total["light"] - 100) <= 1
    assert abs(total["heavy"] - 300) <= 1
    # Virtual time advanced by calls/weight for each.
    assert vtimes["light"] == pytest.approx(total["light"] / 1)
    assert vtimes["heavy"] == pytest.approx(total["heavy"] / 3)


def test_shares_follow_weights_within_every_tick() -> None:
    vtimes = {"light": 0.0, "heavy": 0.0}
    for _ in range(40):
        shares, new = fair_share(10, {"light": Demand(1, PLENTY, vtimes["light"]),
                                      "heavy": Demand(3, PLENTY, vtimes["heavy"])})
        assert shares["light"] in (2, 3)
        assert shares["heavy"] in (7, 8)
        vtimes.update(new)


def test_equal_weights_split_evenly() -> None:
    total, _ = run(7, 9, {"a": 2, "b": 2, "c": 2}, {"a": 5.0, "b": 5.0, "c": 5.0})
    assert total == Counter(a=21, b=21, c=21)


def test_work_conserving_when_a_campaign_has_few_due() -> None:
    shares, vtimes = fair_share(10, {"big": Demand(1, 100, 0.0), "small": Demand(1, 2, 0.0)})
    assert shares == {"big": 8, "small": 2}
    assert vtimes == {"big": 8.0, "small": 2.0}
    # Even a heavy campaign gives away what it cannot use.
    shares, _ = fair_share(10, {"a": Demand(1, 100, 0.0), "b": Demand(1, 100, 0.0),
                                "heavy": Demand(8, 1, 0.0)})
    assert shares == {"a": 5, "b": 4, "heavy": 1}


def test_less_due_than_room_gives_everything_due() -> None:
    shares, _ = fair_share(10, {"a": Demand(1, 3, 0.0), "b": Demand(5, 4, 0.0)})
    assert shares == {"a": 3, "b": 4}


@pytest.mark.parametrize("room", [0, -1])
def test_no_room_is_empty(room: int) -> None:
    assert fair_share(room, {"a": Demand(1, 5, 0.0)}) == ({}, {})


@pytest.mark.parametrize("demands", [
    {},
    {"a": Demand(1, 0, 3.0)},
    {"a": Demand(0, 5, 0.0)},  # weight 0: paused
    {"a": Demand(-1, 5, 0.0), "b": Demand(2, 0, 0.0)},
])
def test_no_demand_is_empty(demands: dict[str, Demand]) -> None:
    assert fair_share(10, demands) == ({}, {})


def test_idle_and_weightless_campaigns_are_left_out() -> None:
    shares, vtimes = fair_share(4, {"idle": Demand(1, 0, 0.0), "paused": Demand(0, 9, 0.0),
                                    "busy": Demand(1, 9, 7.0)})
    assert shares == {"busy": 4}
    assert vtimes == {"busy": 11.0}  # an idle campaign keeps its stored vtime


def test_campaign_back_from_idle_starts_one_unit_behind() -> None:
    """'back' idled at vtime 0 while 'busy' reached 100: it is floored to 99, so it gets its
    next turn at 100 and ties 'busy' at 101 (and wins the tie by name): 6 of 10, not 10."""
    shares, vtimes = fair_share(10, {"back": Demand(1, PLENTY, 0.0),
                                     "busy": Demand(1, PLENTY, 100.0)})
    assert shares == {"back": 6, "busy": 4}
    assert vtimes == {"back": 105.0, "busy": 104.0}
    # Exactly as if it had come back one unit behind.
    assert fair_share(10, {"back": Demand(1, PLENTY, 99.0),
                           "busy": Demand(1, PLENTY, 100.0)}) == (shares, vtimes)


def test_weighted_catch_up_is_capped() -> None:
    """Weight 2 back at vtime 0 against weight 1 at 50. Floored to 49, each call adds 0.5:
    finishes 49.5, 50, 50.5, 51 all come at or before busy's 51 (a tie 'back' wins), so it
    takes 4 in a row, then 2 per busy's 1: 9 of 12, where its share is 8.

    The bound from the algorithm: back's last finish is at most busy's next finish, so
    -1 + g_back / 2 <= (g_busy + 1) / 1, i.e. g_back <= 2 * (g_busy + 2); with
    g_back + g_busy = 12 that is g_back <= 9."""
    shares, vtimes = fair_share(12, {"back": Demand(2, PLENTY, 0.0),
                                     "busy": Demand(1, PLENTY, 50.0)})
    assert shares == {"back": 9, "busy": 3}
    assert vtimes == {"back": 53.5, "busy": 53.0}
    g_back, g_busy = shares["back"], shares["busy"]
    assert g_back <= 2 * (g_busy + 2)


def test_catch_up_over_many_ticks_is_at_most_one_unit() -> None:
    """However far behind it was, a returning campaign ends up at most one unit (weight
    calls) ahead of one that came back level with the others."""
    weights = {"back": 2, "busy": 1}
    level, _ = run(10, 12, weights, {"back": 50.0, "busy": 50.0})
    behind, _ = run(10, 12, weights, {"back": 49.0, "busy": 50.0})
    far_behind, _ = run(10, 12, weights, {"back": -1e9, "busy": 50.0})
    assert far_behind == behind
    assert level["back"] <= behind["back"] <= level["back"] + weights["back"]
    assert abs(level["back"] - 80) <= 1


def test_campaign_ahead_pulls_the_others_up() -> None:
    """A campaign returning with a high vtime does not starve: the others are floored to one
    unit behind it, so it waits at most one unit."""
    shares, vtimes = fair_share(6, {"a": Demand(1, PLENTY, 0.0),
                                    "ahead": Demand(1, PLENTY, 1000.0)})
    assert shares == {"a": 4, "ahead": 2}
    assert vtimes == {"a": 1003.0, "ahead": 1002.0}


def test_ties_go_by_name_whatever_the_order() -> None:
    forward = {"a": Demand(1, PLENTY, 0.0), "b": Demand(1, PLENTY, 0.0)}
    backward = dict(reversed(forward.items()))
    assert fair_share(1, forward) == ({"a": 1}, {"a": 1.0, "b": 0.0})
    assert fair_share(1, backward) == fair_share(1, forward)
    assert fair_share(3, forward)[0] == {"a": 2, "b": 1}
    assert fair_share(3, backward)[0] == {"a": 2, "b": 1}


def test_same_input_same_output() -> None:
    demands = {f"c{i}": Demand(i % 3 + 1, 5 + i, i * 0.37) for i in range(6)}
    first = fair_share(17, demands)
    assert all(fair_share(17, demands) == first for _ in range(5))


# properties -----------------------------------------------------------------------------

demand = st.builds(Demand, weight=st.integers(1, 5), due=st.integers(0, 20),
                   vtime=st.floats(0, 1000, allow_nan=False, allow_infinity=False))
demands = st.dictionaries(st.sampled_from("abcdefg"), demand, max_size=6)


@PROPERTY
@given(room=st.integers(0, 60), demands=demands)
def test_allocation_is_complete_and_bounded(room: int, demands: dict[str, Demand]) -> None:
    shares, vtimes = fair_share(room, demands)
    assert sum(shares.values()) == min(room, sum(d.due for d in demands.values()))
    for campaign, given_calls in shares.items():
        assert 0 < given_calls <= demands[campaign].due
    backlogged = {c for c, d in demands.items() if d.due > 0}
    assert set(shares) <= backlogged
    if room > 0:
        assert set(vtimes) == backlogged
    # Order of the mapping does not matter.
    assert fair_share(room, dict(reversed(demands.items()))) == (shares, vtimes)


@PROPERTY
@given(room=st.integers(1, 60), demands=demands)
def test_virtual_times(room: int, demands: dict[str, Demand]) -> None:
    shares, vtimes = fair_share(room, demands)
    if not vtimes:
        return
    top = max(demands[c].vtime for c in vtimes)
    for campaign, vtime in vtimes.items():
        d = demands[campaign]
        start = max(d.vtime, top - 1.0)
        assert vtime == pytest.approx(start + shares.get(campaign, 0) / d.weight)
    # Each call went to the lowest finish: no campaign that got calls is past one that
    # could still take more by more than that one's step.
    still_ready = [c for c in vtimes if shares.get(c, 0) < demands[c].due]
    for campaign in shares:
        for other in still_ready:
            assert vtimes[campaign] <= vtimes[other] + 1 / demands[other].weight
