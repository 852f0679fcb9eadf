"""One global pace per Twilio account, shared by every worker on every machine.

No maintained library offers reserve-and-wait on the Redis server clock with a
capacity of one (redis-py's and limits' rate limiters are fixed/sliding windows
or token buckets that allow bursts, and they read the client's clock), so this
is a small Lua script: atomic, and timed by Redis TIME, the clock all machines share.
"""

from __future__ import annotations

import functools
import logging
import math
import time

from redis import Redis

from worker.settings import DEFAULT_PACE_MARGIN, MAX_PACE_MARGIN, Settings

log = logging.getLogger(__name__)

# KEYS[1]: the account's next free slot (µs since the epoch on the Redis clock);
# KEYS[2]: the account's pace (calls per second, as text), set once from ARGV[1] if absent.
# ARGV[1]: this process's initial pace; ARGV[2]: the longest wait we accept (µs);
# ARGV[3]: the safety margin, a fraction of the interval added to every one.
# Returns {reserved (1/0), wait in µs, the pace applied}. A wait beyond the bound reserves
# nothing, so a worker that gives up leaves no hole in the schedule.
_RESERVE_SLOT = """
local pace = redis.call('GET', KEYS[2])
if not pace then
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
  pace = redis.call('GET', KEYS[2])
end
local interval = math.max(1, math.floor(1000000 / tonumber(pace) * (1 + tonumber(ARGV[3])) + 0.5))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
local wait = slot - now
if wait > tonumber(ARGV[2]) then
  return {0, wait, pace}
end
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval),
           'PX', math.ceil((wait + interval) / 1000) + 1000)
return {1, wait, pace}
"""
# KEYS[1]: the account's last departure (µs, Redis clock); KEYS[2]: its pace.
# ARGV[1]: this process's initial pace; ARGV[2]: the safety margin; ARGV[3]: the nearest
# departure we book ahead (µs). The next departure is one interval after the last; if it is
# that near, it is recorded and {1, µs until it} returned, else {0, µs until it}: two
# creates never leave closer than an interval, whatever the slots said (a worker woken late
# leaves late, and the next one waits for it).
_DEPART = """
local pace = redis.call('GET', KEYS[2]) or ARGV[1]
local interval = math.max(1, math.floor(1000000 / tonumber(pace) * (1 + tonumber(ARGV[2])) + 0.5))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local departs = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0') + interval)
local wait = departs - now
if wait > tonumber(ARGV[3]) then
  return {0, wait}
end
redis.call('SET', KEYS[1], string.format('%.0f', departs),
           'PX', math.ceil((wait + interval) / 1000) + 1000)
return {1, wait}
"""
# A departure this near is booked, and waited for by a sleep that ends SPIN_S early and a
# spin through the rest: a sleep on a busy machine wakes an unknown while late, and asking
# again after it costs a round trip; either would add to every gap and lose rate. The spin
# bounds the CPU it costs to SPIN_S a create. A farther departure is slept for, waking
# ASK_EARLY_S early: 1 ms lost rate on a busy 2-core machine (docs/BENCHMARKS.md, section 1).
BOOK_AHEAD_S = 0.005
ASK_EARLY_S = 0.004
SPIN_S = 0.001
# The last checks before a create take a few ms, more on a busy machine. A worker that
# starts them at its slot reaches the departure gate late, and every later departure moves
# by as much for good (the gate never lets one catch up): started this much before the
# slot, they are done in time, and the gate, not the checks, decides when the create leaves.
CHECKS_LEAD_S = 0.05
MAX_CALLS_PER_SECOND = 1000.0


def check_pace(value: object, field_name: str = "calls_per_second") -> float:
    """A pace Twilio could be asked for: a finite number of calls per second, above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field_name}: must be a number of calls per second, got {value!r}")
    if not 0 < value <= MAX_CALLS_PER_SECOND:
        raise ValueError(f"{field_name}: must be above 0 and at most {MAX_CALLS_PER_SECOND:g}, "
                         f"got {value!r}")
    return float(value)


def check_pace_margin(value: object, field_name: str = "margin") -> float:
    """A fraction of the interval from 0 to MAX_PACE_MARGIN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field_name}: must be a fraction of the interval, got {value!r}")
    if not 0 <= value <= MAX_PACE_MARGIN:
        raise ValueError(f"{field_name}: must be from 0 to {MAX_PACE_MARGIN:g}, got {value!r}")
    return float(value)


class PacingBacklog(Exception):
    """The next free slot is further away than a worker should wait holding a job."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"next dial slot is {wait:.1f}s away")
        self.wait = wait


class Pacer:
    """The account's pace lives in Redis, beside its schedule, so every worker reserves at
    the same one; a worker's own DIALER_CALLS_PER_SECOND is only the initial value, stored
    by whichever reserves first, and a worker configured otherwise says so in its log.

    `margin` stretches every interval by that fraction (DIALER_PACE_MARGIN): creates reach
    Twilio with a few ms of jitter after they leave, and a gap 0.5 % longer than 1/cps
    keeps a late one followed by a punctual one from arriving closer than 1/cps."""

    def __init__(self, redis: Redis, account_sid: str, calls_per_second: float,
                 max_wait: float, margin: float = DEFAULT_PACE_MARGIN) -> None:
        self._redis = redis
        self._key = f"dialer:pace:{account_sid}"
        self._pace_key = f"{self._key}:cps"
        self._initial = repr(check_pace(calls_per_second, "DIALER_CALLS_PER_SECOND"))
        self._max_wait_us = math.floor(max_wait * 1_000_000)
        self._margin = repr(check_pace_margin(margin))
        self._book_ahead_us = round(BOOK_AHEAD_S * 1_000_000)
        self._departed_key = f"{self._key}:departed"
        self._script = redis.register_script(_RESERVE_SLOT)
        self._depart = redis.register_script(_DEPART)
        self._applied: bytes | None = None

    def reserve(self) -> float:
        """Reserve the next slot and return the seconds to wait for it.

        Raises PacingBacklog when the slot is too far away, and redis errors
        as they are: without Redis there is no pace, so nobody dials (fail closed).
        """
        reserved, wait_us, applied = self._script(
            keys=[self._key, self._pace_key],
            args=[self._initial, self._max_wait_us, self._margin])
        if applied != self._applied:
            self._applied = applied
            if float(applied) != float(self._initial):
                log.warning("the account's pace is %s calls/s (dialer pace set); this "
                            "worker's DIALER_CALLS_PER_SECOND=%s is only the initial value",
                            applied.decode(), self._initial)
        if not reserved:
            raise PacingBacklog(wait_us / 1_000_000)
        return wait_us / 1_000_000

    def depart(self) -> float:
        """Right before the create leaves: 0 once its departure is recorded (and reached),
        else the seconds to sleep before asking again (the last create left less than an
        interval ago).

        A slot is when a create may leave, not when it does: the checks after the wait take
        their time, and a process woken late leaves late. This gate on the same clock keeps
        two departures an interval apart anyway; the schedule keeps the rate."""
        booked, wait_us = self._depart(keys=[self._departed_key, self._pace_key],
                                       args=[self._initial, self._margin, self._book_ahead_us])
        if not booked:
            return wait_us / 1_000_000 - ASK_EARLY_S
        wait = wait_us / 1_000_000
        departs = time.perf_counter() + wait
        if wait > SPIN_S:
            time.sleep(wait - SPIN_S)
        while time.perf_counter() < departs:
            pass
        return 0.0

    def pace(self) -> float | None:
        """The account's pace, or None before anyone has reserved or set one."""
        value = self._redis.get(self._pace_key)
        return None if value is None else float(value)

    def set_pace(self, calls_per_second: float) -> None:
        """Every worker's next reservation is spaced at the new pace."""
        self._redis.set(self._pace_key, repr(check_pace(calls_per_second)))


class AccountPacer:
    """The pace of the account in the settings, made on first use: a producer needs no
    Twilio credentials, and a worker without them fails before it takes anyone's slot."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    @functools.cached_property
    def _pacer(self) -> Pacer:
        account_sid, _ = self._settings.require_twilio()
        return Pacer(self._redis, account_sid, self._settings.calls_per_second,
                     self._settings.max_pacing_wait, self._settings.pace_margin)

    def reserve(self) -> float:
        return self._pacer.reserve()

    def depart(self) -> float:
        return self._pacer.depart()

    def pace(self) -> float | None:
        return self._pacer.pace()

    def set_pace(self, calls_per_second: float) -> None:
        self._pacer.set_pace(calls_per_second)
