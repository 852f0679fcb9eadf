"""kombu's Redis transport with one `redis.Redis` per channel, for the worker and the webhook.

kombu's Redis channel builds a new `redis.Redis` in `conn_or_acquire` for every command it
sends outside its consumer loop: each publish's LPUSH, and each late acknowledgement's and
delivery's bookkeeping of unacked messages. Building one is mostly filling its table of
response callbacks: about a quarter of a publish's CPU. The client only wraps the
channel's own connection pool and is thread-safe, so holding one changes nothing else: the
same pool, sockets, timeouts and errors. kombu offers no setting for this, hence a
subclass; it overrides that one method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis
from kombu.transport import redis as kombu_redis


class HeldClientChannel(kombu_redis.Channel):
    """A channel lives in one connection, made lazily in the process that uses it (never
    across a fork); when kombu replaces the channel's pool (a disconnect), a new client is
    made on the new one."""

    _held_client: redis.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        if client:
            yield client
            return
        held = self._held_client
        if held is None or held.connection_pool is not self.pool:
            held = self._held_client = self._create_client()
        yield held


class HeldClientTransport(kombu_redis.Transport):
    Channel = HeldClientChannel


def transport_for(broker_url: str) -> type[kombu_redis.Transport] | None:
    """The transport class for a Celery app's `broker_transport`, or None for kombu's own.

    Only plain redis://: kombu picks rediss:// (and its SSL defaults) by the scheme name.
    """
    return HeldClientTransport if urlsplit(broker_url).scheme == "redis" else None
