"""Bearer API keys: checked before a request's body is read, so a refused request stores
nothing; scope `read` for GET, `write` for everything that changes state."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from api.problems import Problem
from api.state import context
from worker.producer.api_keys import ApiKeyInfo, authenticate

View = TypeVar("View", bound=Callable[..., Any])


def _caller() -> ApiKeyInfo:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Problem(401, "Authorization: a Bearer API key is required",
                      {"WWW-Authenticate": 'Bearer realm="dialer"'})
    key = authenticate(context(), token.strip()) if scheme.lower() == "bearer" else None
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
