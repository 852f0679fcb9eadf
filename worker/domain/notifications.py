"""Result notifications as pure rules: the event types, the delivery states, when to try
again, and the Standard Webhooks signature (https://www.standardwebhooks.com/).

The signer is written out here (a few lines of hmac) rather than imported: the tests verify
it with the reference `standardwebhooks` library, which the worker does not need to carry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Callable, Sequence
from enum import StrEnum


class NotificationType(StrEnum):
    CALL_FINISHED = "call.finished"
    ATTEMPT_ENDED = "call.attempt_ended"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"


# The wait before each retry, in seconds, after the 1st, 2nd, ... failed delivery: 37.6 hours
# in all, so a receiver that is down for a day still gets every event. After the last, the
# event gives up. The default of DIALER_NOTIFY_RETRY_DELAYS.
RETRY_DELAYS_S = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)
RETRY_JITTER = 0.1  # up to +10%, so receivers that failed together do not come back together
SIGNING_SECRET_PREFIX = "whsec_"
# A 410 Gone says the endpoint is gone for good: no retry.
GONE = 410
# Events one deliver_notification message carries: Celery's cost per task is most of an
# event's, and a message of a few events still spreads a burst over every worker process.
# Its events are POSTed one after another, so the message's claim holds them all for this
# many POSTs' leases: a worker that dies midway leaves them to the relay that much later.
NOTIFICATIONS_PER_MESSAGE = 20


def retry_delay(failures: int, delays: Sequence[int] = RETRY_DELAYS_S,
                rand: Callable[[], float] = random.random) -> float | None:
    """Seconds until the next try after `failures` failed deliveries, or None: give up.

    The delays grow roughly exponentially and are spelled out, so the schedule is readable;
    the jitter only adds, so the whole schedule lasts at least their sum.
    """
    if failures < 1 or failures > len(delays):
        return None
    return delays[failures - 1] * (1 + RETRY_JITTER * rand())


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def signature(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def api_key_signing_key(secret: bytes, api_key_id: str) -> bytes:
    """The signing key of the events of jobs an API key enqueued: derived from
    DIALER_NOTIFY_SECRET and the key's id, so each producing service verifies with a secret
    of its own, one leaked secret reveals no other, and nothing secret is stored per key."""
    return hmac.new(secret, b"dialer api key " + api_key_id.encode(), hashlib.sha256).digest()


def as_signing_secret(key: bytes) -> str:
    """A key as Standard Webhooks writes a signing secret: whsec_ and its base64."""
    return SIGNING_SECRET_PREFIX + base64.b64encode(key).decode()


def signed_headers(key: bytes, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery; a retry signs again with its own timestamp."""
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, event_id, timestamp, body),
    }
