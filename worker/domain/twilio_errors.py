"""Which failed creates may be retried: pure classification, so it is unit-tested on its own.

Retrying a create is only safe when Twilio surely created no call; Twilio's
create is not idempotent, so anything ambiguous goes to the reconciler instead.
"""

from __future__ import annotations

from enum import Enum

import requests
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import ConnectTimeoutError

# Twilio answers these when a create was refused for good: bad numbers (21210 to
# 21219), bad credentials (20003), unknown resource (20404), missing or invalid
# parameters (212xx). Any other 4xx is treated the same: the request was refused.
PERMANENT_EXAMPLES = frozenset({20003, 20404, 21201, 21205, 21210, 21211, 21212, 21213,
                                21214, 21215, 21216, 21217, 21219})
TOO_MANY_REQUESTS = 20429

# A create's transient failures are retried this many times, each try with its own pacing
# slot, backing off up to this long between tries.
CREATE_TRIES = 8
CREATE_BACKOFF_MAX_S = 5.0


def longest_create_s(max_pacing_wait: float, twilio_timeout: float) -> float:
    """The longest a live worker can hold an attempt in `creating`: every try waiting for
    its slot, timing out and backing off. The reconciler waits longer than this."""
    return CREATE_TRIES * (max_pacing_wait + twilio_timeout + CREATE_BACKOFF_MAX_S)


class CreateFailure(Enum):
    TRANSIENT = "transient"  # surely no call was created: retry with backoff
    AMBIGUOUS = "ambiguous"  # a call may exist: never retry blindly; reconcile
    PERMANENT = "permanent"  # refused for good: the job fails with the code


def classify_create_error(exc: BaseException) -> CreateFailure:
    if isinstance(exc, TwilioRestException):
        if exc.status == 429 or exc.code == TOO_MANY_REQUESTS or exc.status == 503:
            return CreateFailure.TRANSIENT
        if exc.status == 408:  # a timeout somewhere on Twilio's side: the create may have run
            return CreateFailure.AMBIGUOUS
        if 400 <= exc.status < 500:
            return CreateFailure.PERMANENT
        return CreateFailure.AMBIGUOUS
    if isinstance(exc, requests.ConnectTimeout):
        return CreateFailure.TRANSIENT
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return CreateFailure.TRANSIENT
    return CreateFailure.AMBIGUOUS


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Connection refused, DNS failure or connect timeout: the request never left."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3's NewConnectionError and NameResolutionError subclass ConnectTimeoutError.
    return isinstance(reason, ConnectTimeoutError)


def error_code(exc: BaseException) -> int | None:
    return exc.code if isinstance(exc, TwilioRestException) else None


def error_message(exc: BaseException) -> str:
    if isinstance(exc, TwilioRestException):
        return f"HTTP {exc.status}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"[:500]
