"""Twilio's request signature, computed from Twilio's side of the wire.

Written by hand on purpose: the simulator plays Twilio, so it signs with its own
implementation of the published algorithm, and the tests then check it against
twilio's RequestValidator and Twilio's documented example. Signing with the library
that later validates would prove nothing about either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """HMAC-SHA1 over the URL followed by every key+value, sorted by key then value."""
    by_key: dict[str, set[str]] = {}
    for key, value in params:
        by_key.setdefault(key, set()).add(value)
    payload = url + "".join(key + value for key in sorted(by_key) for value in sorted(by_key[key]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
