"""One global pace per Twilio account, shared by every worker on every machine.

No maintained library offers reserve-and-wait on the Redis server clock with a
capacity of one (redis-py's and limits' rate limiters are fixed/sliding windows
or token buckets that allow bursts, and they read the client's clock), so this
is a small Lua script: atomic, and timed by Redis TIME, the clock all machines share.
"""

from __future__ import annotations

import functools
import math

from redis import Redis

from worker.settings import Settings

# KEYS[1]: the account's next free slot (µs since the epoch on the Redis clock).
# ARGV[1]: interval between creates (µs); ARGV[2]: the longest wait we accept (µs).
# Returns {reserved (1/0), wait in µs}. A wait beyond the bound reserves nothing,
# so a worker that gives up leaves no hole in the schedule.
_RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
local wait = slot - now
if wait > tonumber(ARGV[2]) then
  return {0, wait}
end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval),
           'PX', math.ceil((wait + interval) / 1000) + 1000)
return {1, wait}
"""


class PacingBacklog(Exception):
    """The next free slot is further away than a worker should wait holding a job."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"next dial slot is {wait:.1f}s away")
        self.wait = wait


class Pacer:
    def __init__(self, redis: Redis, account_sid: str, calls_per_second: float,
                 max_wait: float) -> None:
        self._key = f"dialer:pace:{account_sid}"
        self._interval_us = max(1, round(1_000_000 / calls_per_second))
        self._max_wait_us = math.floor(max_wait * 1_000_000)
        self._script = redis.register_script(_RESERVE_SLOT)

    def reserve(self) -> float:
        """Reserve the next slot and return the seconds to wait for it.

        Raises PacingBacklog when the slot is too far away, and redis errors
        as they are: without Redis there is no pace, so nobody dials (fail closed).
        """
        reserved, wait_us = self._script(keys=[self._key],
                                         args=[self._interval_us, self._max_wait_us])
        if not reserved:
            raise PacingBacklog(wait_us / 1_000_000)
        return wait_us / 1_000_000


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
                     self._settings.max_pacing_wait)

    def reserve(self) -> float:
        return self._pacer.reserve()
