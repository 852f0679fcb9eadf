"""Bearer API keys: checked before a request's body is read, so a refused request stores
nothing; scope `read` for GET, `write` for everything that changes state."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from api.problems import Problem
from api.state import context
from worker.producer.api_keys import ApiKeyInfo, authenticate

View = TypeVar("View", bound=Callable[..., Any])

# A key this process found valid less than this long ago is taken as valid without a
# database lookup (a transaction per request otherwise); so a revoked key's requests are
# refused within this long. Unknown and revoked tokens are looked up every time.
KEY_CHECKED_FOR_S = 1.0
_CHECKED = "dialer.checked_keys"


def _authenticated(token: str) -> ApiKeyInfo | None:
    """authenticate(), unless this app found the token's key valid within KEY_CHECKED_FOR_S."""
    checked: dict[str, tuple[float, ApiKeyInfo]] = current_app.extensions.setdefault(
        _CHECKED, {})
    now = time.monotonic()
    found = checked.get(token)
    if found is not None and now - found[0] < KEY_CHECKED_FOR_S:
        return found[1]
    key = authenticate(context(), token)
    if key is None:
        checked.pop(token, None)
    else:
        checked[token] = (now, key)
    return key


def _caller() -> ApiKeyInfo:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Problem(401, "Authorization: a Bearer API key is required",
                      {"WWW-Authenticate": 'Bearer realm="dialer"'})
    key = _authenticated(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise Problem(401, "Authorization: the API key is unknown, malformed or revoked",
                      {"WWW-Authenticate": 'Bearer realm="dialer", error="invalid_token"'})
    return key


def require(scope: str) -> Callable[[View], View]:
    """The view runs only for a valid key holding `scope` (else 401, or 403)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            key = _caller()
            if scope not in key.scopes:
                raise Problem(403, f"this API key ({key.prefix}...) lacks the {scope!r} scope")
            g.api_key = key
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate
