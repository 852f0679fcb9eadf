"""API keys for the HTTP producer API: made, listed and revoked by the operator (`dialer
api-key`), checked on every request.

A token is `dk_` and 43 URL-safe characters. It is handed out once, when its key is made;
only its SHA-256 is stored, so a request is matched by hashing its token and looking the
hash up (no secret is compared character by character). Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update

from worker.domain.clock import utcnow
from worker.domain.notifications import api_key_signing_key, as_signing_secret
from worker.engine.context import Context
from worker.store.models import ApiKey

log = logging.getLogger(__name__)

SCOPES = ("read", "write")
TOKEN_PREFIX = "dk_"
# The token's first characters kept for listings: "dk_" and 8 of its 256 random bits' text.
PREFIX_LENGTH = 11
NAME_MAX = 100
_TOKEN = re.compile(r"dk_[A-Za-z0-9_-]{43}")
# last_used_at is a hint for the operator, not an audit trail: writing it at most this often
# keeps a busy key from turning every read request into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


_INFO_COLUMNS = (ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.scopes, ApiKey.created_at,
                 ApiKey.revoked_at)


_BY_HASH = select(*_INFO_COLUMNS, ApiKey.last_used_at).where(
    ApiKey.secret_hash == bindparam("secret_hash"))


def _info(key: Any) -> ApiKeyInfo:
    """From an ApiKey or a row of _INFO_COLUMNS."""
    return ApiKeyInfo(id=key.id, name=key.name, prefix=key.prefix, scopes=tuple(key.scopes),
                      created_at=key.created_at, revoked_at=key.revoked_at)


def api_key_as_dict(info: ApiKeyInfo) -> dict[str, Any]:
    """The key as JSON-ready data, for the CLI's --json."""
    return {"id": info.id, "name": info.name, "prefix": info.prefix,
            "scopes": list(info.scopes), "created_at": info.created_at.isoformat(),
            "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: a name for the key is required (who uses it)")
    text = name.strip()
    if len(text) > NAME_MAX:
        raise ValueError(f"name: at most {NAME_MAX} characters, got {len(text)}")
    return text


def _check_scopes(scopes: object) -> list[str]:
    """The scopes in SCOPES' order, each once."""
    if isinstance(scopes, str) or not isinstance(scopes, Iterable):
        raise ValueError(f"scopes: a list of scopes is expected ({', '.join(SCOPES)})")
    given = list(scopes)
    unknown = [s for s in given if s not in SCOPES]
    if unknown:
        raise ValueError(f"scopes: {unknown[0]!r} is not one of {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"scopes: at least one of {', '.join(SCOPES)} is required")
    return [s for s in SCOPES if s in given]


def create_api_key(ctx: Context, name: str,
                   scopes: Iterable[str] = SCOPES) -> tuple[ApiKeyInfo, str]:
    """Make a key and return it with its token, the only time the token is available."""
    key = ApiKey(id=uuid.uuid4().hex, name=_check_name(name), scopes=_check_scopes(scopes),
                 created_at=utcnow())
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.secret_hash = token[:PREFIX_LENGTH], _hash(token)
    with ctx.database.session() as session:
        session.add(key)
    log.info("API key %s (%s) created with scopes %s", key.id, key.name, ",".join(key.scopes))
    return _info(key), token


def revoke_api_key(ctx: Context, key_id: str) -> ApiKeyInfo:
    """Refuse the key's token from now on (a running HTTP API within a second, as it trusts a
    key it checked for that long); a key already revoked keeps its first revoked_at."""
    with ctx.database.session() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise ValueError(f"key_id: no API key {key_id!r}")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            log.info("API key %s (%s) revoked", key.id, key.name)
        return _info(key)


def list_api_keys(ctx: Context) -> list[ApiKeyInfo]:
    """Every key, revoked ones included, oldest first."""
    with ctx.database.session() as session:
        keys = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
        return [_info(key) for key in keys]


def signing_secret(ctx: Context, key_id: str) -> str:
    """The secret that signs the events of the jobs and campaigns this key makes (whsec_...),
    for the service that holds the key to verify them. Derived, not stored: it can be shown
    again at any time, and changes when DIALER_NOTIFY_SECRET does."""
    if ctx.settings.notify_secret is None:
        raise ValueError("key_id: DIALER_NOTIFY_SECRET is not set, so no event is signed")
    with ctx.database.session() as session:
        if session.get(ApiKey, key_id) is None:
            raise ValueError(f"key_id: no API key {key_id!r}")
    return as_signing_secret(api_key_signing_key(ctx.settings.notify_secret, key_id))


def authenticate(ctx: Context, token: str) -> ApiKeyInfo | None:
    """The key a token belongs to, or None for a malformed, unknown or revoked token."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    now = utcnow()
    # Core, not the ORM: this runs before every request, and loading an ApiKey object into
    # a Session cost more than the lookup itself.
    with ctx.database.transaction() as connection:
        key = connection.execute(_BY_HASH, {"secret_hash": _hash(token)}).one_or_none()
        if key is None or key.revoked_at is not None:
            return None
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            connection.execute(update(ApiKey).where(ApiKey.id == key.id)
                               .values(last_used_at=now))
        return _info(key)
