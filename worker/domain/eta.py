"""When a campaign can be done: its pending jobs' scheduled times, the calling window in
their time zones, and its pace. Pure arithmetic, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from worker.domain.windows import Window, next_open_for


def eta_seconds(now: datetime, pending: int, latest_due: Mapping[Sequence[str], datetime],
                window: Window, default_zone: str, calls_per_minute: float) -> int | None:
    """Seconds until the last pending job can have been dialed, or None if nothing is pending.

    `latest_due` holds, per recipient time-zone set, the latest time a pending job of it is
    due. The answer is the later of two bounds: the last of those jobs' calling window
    opening, and the time the pace needs for every pending job, from the first of those
    openings. Jobs whose window never opens are left out (the dispatcher fails them). It is
    a lower bound: hours the window is closed while the pace works through are not added.
    """
    if pending <= 0:
        return None
    openings = [o for o in (next_open_for(window, zones, default_zone, max(now, due))
                            for zones, due in latest_due.items()) if o is not None]
    by_window = (max(openings, default=now) - now).total_seconds()
    start = (min(openings, default=now) - now).total_seconds()
    by_pace = start + pending / calls_per_minute * 60 if calls_per_minute > 0 else 0.0
    return round(max(by_window, by_pace))
