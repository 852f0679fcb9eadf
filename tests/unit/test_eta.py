"""A campaign's ETA counts its calling window (the hours it is closed while the pace works
through the list included) and its jobs' scheduled times, not only its pace."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from worker.domain.eta import eta_seconds
from worker.domain.windows import Window

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
ALL_DAY = Window()


def test_nothing_pending_has_no_eta() -> None:
    assert eta_seconds(NOW, 0, {}, ALL_DAY, "UTC", 60) is None


def test_due_jobs_in_an_open_window_take_what_the_pace_needs() -> None:
    assert eta_seconds(NOW, 120, {("UTC",): NOW}, ALL_DAY, "UTC", 60) == 120


def test_jobs_due_later_are_dialed_at_the_pace_from_their_time() -> None:
    later = {("UTC",): NOW + timedelta(hours=11, minutes=30)}
    assert eta_seconds(NOW, 2, later, ALL_DAY, "UTC", 6) == 11.5 * 3600 + 20


def test_a_closed_window_waits_for_its_opening_in_the_recipients_zone() -> None:
    nine_to_five = Window(time(9), time(17))
    # 12:00 UTC is 04:00 in Los Angeles: the window opens at 09:00 there, 17:00 UTC.
    eta = eta_seconds(NOW, 1, {("America/Los_Angeles",): NOW}, nine_to_five, "UTC", 60)
    assert eta == 5 * 3600 + 1


def test_the_slowest_bound_wins_and_never_open_zones_are_left_out() -> None:
    eleven_to_one = Window(time(11), time(13))  # open now in UTC
    due = {("UTC",): NOW, ("Asia/Tokyo", "America/New_York"): NOW}  # never both 11-13
    assert eta_seconds(NOW, 10, due, eleven_to_one, "UTC", 0.5) == 1200
    due[("UTC",)] = NOW + timedelta(hours=2)  # 14:00: after today's window, tomorrow 11:00
    assert eta_seconds(NOW, 10, due, eleven_to_one, "UTC", 0.5) == 23 * 3600 + 1200


def test_an_unknown_pace_leaves_the_schedule_as_the_only_bound() -> None:
    assert eta_seconds(NOW, 3, {("UTC",): NOW + timedelta(minutes=5)}, ALL_DAY, "UTC", 0) == 300


NINE_TO_FIVE = Window(time(9), time(17))
NINE_AM = NOW.replace(hour=9)  # a Tuesday, the window opening


def test_jobs_due_hours_apart_wait_for_the_last_one_not_only_the_pace() -> None:
    due = {("UTC",): NOW + timedelta(hours=6, minutes=30),
           ("Europe/London",): NOW + timedelta(hours=11, minutes=30)}
    assert eta_seconds(NOW, 2, due, ALL_DAY, "UTC", 200) == 11.5 * 3600


def test_a_list_longer_than_a_day_of_window_adds_each_closed_night() -> None:
    # 10,000 calls at 10 a minute: 16 h 40 min of calling, 8 h a day from 09:00.
    eta = eta_seconds(NOW.replace(hour=9), 10_000, {("UTC",): NINE_AM}, NINE_TO_FIVE, "UTC", 10)
    assert eta == timedelta(days=2, minutes=40).total_seconds()


def test_the_closed_days_of_the_week_are_added_too() -> None:
    friday = NINE_AM + timedelta(days=3)
    weekdays = Window(time(9), time(17), frozenset(range(5)))
    eta = eta_seconds(friday, 10_000, {("UTC",): friday}, weekdays, "UTC", 10)
    # Friday 8 h, Monday 8 h, Tuesday 09:00-09:40.
    assert eta == timedelta(days=4, minutes=40).total_seconds()


def test_several_zone_sets_are_one_queue_through_the_window_that_opens_first() -> None:
    due = {("UTC",): NINE_AM, ("America/New_York",): NINE_AM}  # New York opens 14:00 UTC
    eta = eta_seconds(NINE_AM, 10_000, due, NINE_TO_FIVE, "UTC", 10)
    assert eta == timedelta(days=2, minutes=40).total_seconds()
    # A window open in New York first (Tokyo's 09:00 has passed for the day) walks there.
    due = {("Asia/Tokyo",): NINE_AM, ("America/New_York",): NINE_AM}
    eta = eta_seconds(NINE_AM, 9_600, due, NINE_TO_FIVE, "UTC", 10)
    # 16 h of calling: 14:00-22:00 UTC today and tomorrow.
    assert eta == timedelta(days=1, hours=13).total_seconds()
