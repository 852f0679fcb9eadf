"""worker/domain/windows.py: calling windows in the recipient's local time, as pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from worker.domain.windows import (
    ALL_DAYS,
    Window,
    format_days,
    is_open,
    next_closing,
    next_opening,
    parse_days,
    parse_window,
    zone,
)

PROPERTY = hsettings(derandomize=True, database=None, max_examples=200, deadline=None)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11
WEEKDAYS = frozenset(range(5))
NINE_TO_EIGHT = Window(time(9), time(20))


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# parse_window ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "start", "end"), [
    ("09:00-20:00", time(9), time(20)),
    ("9:00-17:30", time(9), time(17, 30)),
    (" 08:15 - 21:45 ", time(8, 15), time(21, 45)),
    ("00:00-24:00", time(0), None),
    ("20:00-24:00", time(20), None),
    ("23:58-23:59", time(23, 58), time(23, 59)),
])
def test_parse_window_accepts(text: str, start: time, end: time | None) -> None:
    assert parse_window(text) == Window(start, end, ALL_DAYS)


@pytest.mark.parametrize("text", [None, ""])
def test_parse_window_none_is_all_day(text: str | None) -> None:
    window = parse_window(text)
    assert window == Window(time(0), None, ALL_DAYS)
    assert str(window) == "00:00-24:00 every day"


def test_parse_window_with_days() -> None:
    window = parse_window("09:00-17:00", "mon-fri")
    assert window == Window(time(9), time(17), WEEKDAYS)
    assert str(window) == "09:00-17:00 mon,tue,wed,thu,fri"
    assert parse_window(None, "sat,sun") == Window(days=frozenset({5, 6}))


@pytest.mark.parametrize("text", [
    "25:00-08:00",  # no such hour
    "20:00-08:00",  # overnight
    "09:00-09:00",  # empty
    "24:00-24:00",  # 24:00 is only an end
    "09:00-24:30",
    "09:00",  # no end
    "nine-five",
    "09:60-10:00",  # no such minute
    "09:00-10:5",
    "-09:00",
])
def test_parse_window_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^window: "):
        parse_window(text)


def test_parse_window_overnight_says_why() -> None:
    with pytest.raises(ValueError, match=r"^window: '20:00-08:00' .*overnight"):
        parse_window("20:00-08:00")


def test_parse_window_names_the_field_given() -> None:
    with pytest.raises(ValueError, match=r"^hours: "):
        parse_window("nine-five", field_name="hours")


def test_parse_window_bad_days_name_days() -> None:
    with pytest.raises(ValueError, match=r"^days: 'funday'"):
        parse_window("09:00-17:00", "funday")


# parse_days / format_days / zone --------------------------------------------------------


@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}),
    ("sat,sun", {5, 6}),
    ("mon-wed,fri", {0, 1, 2, 4}),
    ("all", set(range(7))),
    ("*", set(range(7))),
    ("mon-sun", set(range(7))),
    ("fri-mon", {4, 5, 6, 0}),  # wraps over the weekend
    ("sun-sun", {6}),
    ("Mon-Fri", {0, 1, 2, 3, 4}),
    (" tue , thu ", {1, 3}),
])
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["funday", "mo", "mon,", "mon-xyz", "", "1-5"])
def test_parse_days_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^days: "):
        parse_days(text)


def test_parse_days_names_the_field_given() -> None:
    with pytest.raises(ValueError, match=r"^weekdays: 'funday'"):
        parse_days("funday", field_name="weekdays")


@pytest.mark.parametrize(("days", "text"), [
    (ALL_DAYS, "every day"),
    ([4, 0], "mon,fri"),
    ({5, 6}, "sat,sun"),
    (set(), ""),
])
def test_format_days(days: set[int], text: str) -> None:
    assert format_days(days) == text


def test_format_days_round_trips() -> None:
    for text in ("mon", "mon,wed,fri", "sat,sun", "tue,wed,thu,fri,sat,sun"):
        assert format_days(parse_days(text)) == text


def test_zone() -> None:
    assert zone("America/New_York") == NY
    with pytest.raises(ValueError, match=r"^timezone: 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(ValueError, match=r"^timezone: '../etc/passwd'"):
        zone("../etc/passwd")
    with pytest.raises(ValueError, match=r"^tz: "):
        zone("Nowhere", field_name="tz")


# is_open --------------------------------------------------------------------------------


def test_is_open_inside_and_outside() -> None:
    window = Window(time(9), time(20), WEEKDAYS)
    assert is_open(window, [NY], local(NY, 2026, 6, 10, 12))  # a Wednesday
    assert not is_open(window, [NY], local(NY, 2026, 6, 10, 8, 59))
    assert not is_open(window, [NY], local(NY, 2026, 6, 10, 21))
    # The same instant given in UTC: it is the local clock that counts.
    assert is_open(window, [NY], utc(2026, 6, 10, 16))  # 12:00 EDT
    assert not is_open(window, [NY], utc(2026, 6, 10, 2))  # 22:00 EDT, Tuesday


def test_is_open_day_of_week_excluded() -> None:
    window = Window(time(9), time(20), WEEKDAYS)
    assert not is_open(window, [NY], local(NY, 2026, 6, 13, 12))  # Saturday
    assert not is_open(window, [NY], local(NY, 2026, 6, 14, 12))  # Sunday
    assert is_open(window, [NY], local(NY, 2026, 6, 12, 12))  # Friday


def test_is_open_uses_the_local_day() -> None:
    window = Window(days=WEEKDAYS)
    saturday_utc_friday_ny = utc(2026, 6, 13, 2)  # Friday 22:00 EDT
    assert is_open(window, [NY], saturday_utc_friday_ny)
    assert not is_open(window, [UTC_ZONE], saturday_utc_friday_ny)


def test_is_open_boundaries() -> None:
    day = (2026, 6, 10)
    assert is_open(NINE_TO_EIGHT, [NY], local(NY, *day, 9))  # start inclusive
    assert not is_open(NINE_TO_EIGHT, [NY], local(NY, *day, 8, 59, 59, 999999))
    assert is_open(NINE_TO_EIGHT, [NY], local(NY, *day, 19, 59, 59, 999999))
    assert not is_open(NINE_TO_EIGHT, [NY], local(NY, *day, 20))  # end exclusive


def test_is_open_until_midnight() -> None:
    evening = Window(time(20), None, frozenset({2}))  # Wednesday 20:00-24:00
    assert is_open(evening, [NY], local(NY, 2026, 6, 10, 23, 59, 59, 999999))
    assert not is_open(evening, [NY], local(NY, 2026, 6, 11, 0))
    all_day = Window()
    assert all(is_open(all_day, [NY, KIRITIMATI], utc(2026, 6, 10) + timedelta(hours=h))
               for h in range(48))


def test_is_open_in_several_zones() -> None:
    """09:00-20:00 in both New York and Los Angeles: open only 12:00-20:00 ET."""
    day = (2026, 6, 10)
    start = local(NY, *day, 0)
    opened = [start + timedelta(minutes=15 * k) for k in range(4 * 24)
              if is_open(NINE_TO_EIGHT, [NY, LA], start + timedelta(minutes=15 * k))]
    assert opened[0] == local(NY, *day, 12)
    assert opened[-1] == local(NY, *day, 19, 45)
    assert len(opened) == 8 * 4
    assert is_open(NINE_TO_EIGHT, [NY], local(NY, *day, 11, 59))
    assert not is_open(NINE_TO_EIGHT, [NY, LA], local(NY, *day, 11, 59))
    assert not is_open(NINE_TO_EIGHT, [LA, NY], local(NY, *day, 11, 59))
    assert is_open(NINE_TO_EIGHT, [LA, NY], local(NY, *day, 12))


# next_opening ---------------------------------------------------------------------------


def test_next_opening_before_the_window_same_day() -> None:
    after = local(NY, 2026, 6, 10, 7)
    opening = next_opening(NINE_TO_EIGHT, [NY], after)
    assert opening == local(NY, 2026, 6, 10, 9)
    assert opening == utc(2026, 6, 10, 13)
    assert opening is not None
    assert opening.utcoffset() == timedelta(0)


def test_next_opening_after_the_window_is_next_days_start() -> None:
    assert next_opening(NINE_TO_EIGHT, [NY], local(NY, 2026, 6, 10, 20)) \
        == local(NY, 2026, 6, 11, 9)
    assert next_opening(NINE_TO_EIGHT, [NY], local(NY, 2026, 6, 10, 23, 30)) \
        == local(NY, 2026, 6, 11, 9)


def test_next_opening_over_a_weekend() -> None:
    window = Window(time(9), time(20), WEEKDAYS)
    monday = local(NY, 2026, 6, 15, 9)
    assert next_opening(window, [NY], local(NY, 2026, 6, 12, 21)) == monday  # Friday 21:00
    assert next_opening(window, [NY], local(NY, 2026, 6, 13, 12)) == monday  # Saturday
    assert next_opening(window, [NY], local(NY, 2026, 6, 15, 8, 59)) == monday


def test_next_opening_when_already_open_is_after_itself() -> None:
    after = local(NY, 2026, 6, 10, 12, 34, 56)
    assert next_opening(NINE_TO_EIGHT, [NY], after) is after
    start = local(NY, 2026, 6, 10, 9)
    assert next_opening(NINE_TO_EIGHT, [NY], start) is start


@pytest.mark.parametrize(("after", "opening"), [
    # America/New_York springs forward on Sunday 2026-03-08: 09:00 EST, then 09:00 EDT.
    (local(NY, 2026, 3, 6, 21), utc(2026, 3, 7, 14)),
    (local(NY, 2026, 3, 7, 21), utc(2026, 3, 8, 13)),
    (utc(2026, 3, 8, 7), utc(2026, 3, 8, 13)),  # 03:00 EDT, just after the jump
    # ...and falls back on Sunday 2026-11-01: 09:00 EDT, then 09:00 EST.
    (local(NY, 2026, 10, 30, 21), utc(2026, 10, 31, 13)),
    (local(NY, 2026, 10, 31, 21), utc(2026, 11, 1, 14)),
    (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 14)),  # 01:30 EDT, the first of two
])
def test_next_opening_across_new_york_dst(after: datetime, opening: datetime) -> None:
    found = next_opening(NINE_TO_EIGHT, [NY], after)
    assert found == opening
    assert found is not None
    assert found.astimezone(NY).time() == time(9)


@pytest.mark.parametrize(("after", "opening"), [
    (local(LONDON, 2026, 3, 27, 21), utc(2026, 3, 28, 9)),  # 09:00 GMT
    (local(LONDON, 2026, 3, 28, 21), utc(2026, 3, 29, 8)),  # 09:00 BST, clocks went forward
    (local(LONDON, 2026, 10, 24, 21), utc(2026, 10, 25, 9)),  # 09:00 GMT again
])
def test_next_opening_across_london_dst(after: datetime, opening: datetime) -> None:
    assert next_opening(NINE_TO_EIGHT, [LONDON], after) == opening


def test_next_opening_for_a_start_inside_the_dst_gap() -> None:
    """On 2026-03-08 New York's clocks go 01:59 EST -> 03:00 EDT; a 02:30 start is
    first reached at the jump (07:00 UTC), not at 02:30 EST (07:30 UTC)."""
    window = Window(time(2, 30), time(20))
    after = local(NY, 2026, 3, 8, 0)
    opening = next_opening(window, [NY], after)
    assert opening == utc(2026, 3, 8, 7)
    assert is_open(window, [NY], opening)
    assert not is_open(window, [NY], opening - timedelta(microseconds=1))
    # The next day it is 02:30 EDT again.
    assert next_opening(window, [NY], local(NY, 2026, 3, 8, 21)) == utc(2026, 3, 9, 6, 30)


def test_next_opening_window_inside_the_dst_gap_skips_the_day() -> None:
    window = Window(time(2, 15), time(2, 45))  # 02:xx never happens on 2026-03-08
    assert next_opening(window, [NY], local(NY, 2026, 3, 8, 0)) \
        == local(NY, 2026, 3, 9, 2, 15)


def test_next_opening_in_several_zones() -> None:
    after = local(NY, 2026, 6, 10, 7)
    assert next_opening(NINE_TO_EIGHT, [NY, LA], after) == local(NY, 2026, 6, 10, 12)
    assert next_opening(NINE_TO_EIGHT, [LA, NY], after) == local(NY, 2026, 6, 10, 12)
    # Friday 21:00 ET is still Friday 18:00 in Los Angeles, but New York has closed.
    window = Window(time(9), time(20), WEEKDAYS)
    assert next_opening(window, [NY, LA], local(NY, 2026, 6, 12, 21)) \
        == local(NY, 2026, 6, 15, 12)


def test_next_opening_never_when_zones_never_overlap() -> None:
    """Kiritimati (UTC+14) and Pago Pago (UTC-11) are 25 hours apart."""
    zones = [KIRITIMATI, PAGO_PAGO]
    after = utc(2026, 6, 10)
    assert next_opening(Window(time(9), time(10)), zones, after) is None
    assert next_opening(Window(time(9), time(10)), zones[::-1], after) is None
    # A day apart: all of Monday in one never meets all of Monday in the other.
    assert next_opening(Window(days=frozenset({0})), zones, after) is None
    # But a whole day on two days does.
    both = next_opening(Window(days=frozenset({0, 1})), zones, after)
    assert both is not None
    assert is_open(Window(days=frozenset({0, 1})), zones, both)


# property -------------------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Sydney",
         "America/Los_Angeles"]
QUARTER = timedelta(minutes=15)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    """Whole hours: a start or end inside a fall-back's repeated hour (01:30) closes and
    reopens the window that night, which next_opening does not look for."""
    start = draw(st.integers(0, 22))
    end = draw(st.integers(start + 1, 24))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return Window(time(start), None if end == 24 else time(end), days)


def quarter_marks(after: datetime, until: datetime) -> list[datetime]:
    """`after`, then every :00/:15/:30/:45 after it, all strictly before `until`."""
    mark = after.replace(minute=after.minute - after.minute % 15, second=0, microsecond=0)
    marks = [after] if after < until else []
    while (mark := mark + QUARTER) < until:
        marks.append(mark)
    return marks


@PROPERTY
@given(after=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
       zone_names=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
       window=windows())
def test_next_opening_is_the_first_open_instant(after: datetime, zone_names: list[str],
                                                window: Window) -> None:
    zones = [ZoneInfo(name) for name in zone_names]
    opening = next_opening(window, zones, after)
    if opening is None:
        # Nothing opens within a week (offsets here stay within a day of each other).
        assert not any(is_open(window, zones, m)
                       for m in quarter_marks(after, after + timedelta(days=7)))
        return
    assert opening >= after
    assert is_open(window, zones, opening)
    assert not any(is_open(window, zones, m) for m in quarter_marks(after, opening))


def test_zones_that_overlap_only_after_a_dst_change_open_then() -> None:
    """Paris and New York share no 09:00-15:00 hour in January (6 hours apart), but from
    2026-03-08 to 2026-03-29 New York is on summer time and Paris is not (5 hours)."""
    zones = [ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")]
    after = datetime(2026, 1, 10, tzinfo=UTC)
    assert next_opening(Window(time(9), time(15)), zones, after) == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC)


TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_next_closing_is_the_first_zone_to_close() -> None:
    nine_to_five = Window(time(9), time(17))
    # 12:00 UTC: 12:00 in London, 07:00 in New York (closed there); London alone closes 17:00.
    assert next_closing(nine_to_five, [LONDON], TUESDAY_NOON) == TUESDAY_NOON.replace(hour=17)
    later = TUESDAY_NOON.replace(hour=15)  # 10:00 in New York: open in both
    assert next_closing(nine_to_five, [LONDON, NY], later) == TUESDAY_NOON.replace(hour=17)


def test_a_whole_day_window_closes_on_its_first_day_off_and_an_always_open_one_never() -> None:
    weekdays = Window(days=frozenset(range(5)))  # all day, Monday to Friday
    assert next_closing(weekdays, [UTC_ZONE], TUESDAY_NOON) == datetime(2026, 12, 5,
                                                                        tzinfo=UTC)
    assert next_closing(Window(), [NY, KIRITIMATI], TUESDAY_NOON) is None


@PROPERTY
@given(st.integers(0, 23), st.integers(1, 24), st.integers(0, 7 * 24 * 60))
def test_next_closing_is_the_first_closed_minute(start: int, length: int, minutes: int) -> None:
    window = Window(time(start), time(start + length) if start + length < 24 else None,
                    frozenset({0, 2, 3, 4}))
    at = TUESDAY_NOON + timedelta(minutes=minutes)
    zones = [NY, LONDON]
    if not is_open(window, zones, at):
        return
    closing = next_closing(window, zones, at)
    assert closing is not None and closing > at and not is_open(window, zones, closing)
    assert is_open(window, zones, closing - timedelta(minutes=1))
    step = timedelta(minutes=30)
    assert all(is_open(window, zones, at + k * step)
               for k in range((closing - at) // step))
