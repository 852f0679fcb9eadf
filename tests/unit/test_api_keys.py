"""API keys: the token is handed out once and only its hash is kept; a malformed, unknown or
revoked token authenticates no one; bad input names its field and stores nothing."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from time_machine import TimeMachineFixture

from worker.engine.context import Context
from worker.producer.api_keys import (
    SCOPES,
    ApiKeyInfo,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from worker.settings import Settings, SettingsError
from worker.store.models import ApiKey

TOKEN = re.compile(r"dk_[A-Za-z0-9_-]{43}")


def last_used(ctx: Context, key_id: str) -> datetime | None:
    with ctx.database.session() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))


def test_the_token_is_returned_once_and_only_its_hash_is_stored(engine_ctx: Context) -> None:
    info, token = create_api_key(engine_ctx, " billing ")
    assert TOKEN.fullmatch(token)
    assert (info.name, info.prefix, info.scopes, info.revoked_at) == (
        "billing", token[:11], SCOPES, None)
    assert len(info.id) == 32 and info.created_at.tzinfo is not None
    with engine_ctx.database.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert token not in stored and token[11:] not in stored
    assert list_api_keys(engine_ctx) == [info]


def test_each_key_gets_its_own_token(engine_ctx: Context) -> None:
    tokens = {create_api_key(engine_ctx, "billing")[1] for _ in range(5)}
    assert len(tokens) == 5


def test_a_token_authenticates_its_key_until_the_key_is_revoked(engine_ctx: Context) -> None:
    info, token = create_api_key(engine_ctx, "billing", ["write"])
    other, _ = create_api_key(engine_ctx, "reports", ["read"])
    assert authenticate(engine_ctx, token) == info
    revoked = revoke_api_key(engine_ctx, info.id)
    assert revoked.revoked_at is not None and revoked.id == info.id
    assert authenticate(engine_ctx, token) is None
    assert [k.revoked_at is None for k in list_api_keys(engine_ctx)] == [False, True]
    assert list_api_keys(engine_ctx)[1] == other


@pytest.mark.parametrize("mangle", [
    lambda t: "", lambda t: t[:-1], lambda t: t + "x", lambda t: t.upper(),
    lambda t: "Bearer " + t, lambda t: " " + t, lambda t: "xx" + t[2:],
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: None,
], ids=["empty", "short", "long", "upper", "scheme", "space", "other-prefix", "unknown",
        "none"])
def test_a_malformed_or_unknown_token_authenticates_no_one(
        engine_ctx: Context, mangle: object) -> None:
    _, token = create_api_key(engine_ctx, "billing")
    assert authenticate(engine_ctx, mangle(token)) is None  # type: ignore[operator]


def test_revoking_twice_keeps_the_first_time(
        engine_ctx: Context, time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), tick=False)
    info, _ = create_api_key(engine_ctx, "billing")
    first = revoke_api_key(engine_ctx, info.id)
    time_machine.move_to(datetime(2026, 12, 1, 13, 0, tzinfo=UTC), tick=False)
    assert revoke_api_key(engine_ctx, info.id) == first
    assert first.revoked_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_revoking_an_unknown_key_names_the_field(engine_ctx: Context) -> None:
    with pytest.raises(ValueError, match=r"^key_id: no API key 'nope'"):
        revoke_api_key(engine_ctx, "nope")


def test_last_used_is_written_at_most_once_a_minute(
        engine_ctx: Context, time_machine: TimeMachineFixture) -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    time_machine.move_to(start, tick=False)
    info, token = create_api_key(engine_ctx, "billing")
    assert last_used(engine_ctx, info.id) is None
    assert authenticate(engine_ctx, token) is not None
    assert last_used(engine_ctx, info.id) == start
    time_machine.move_to(start + timedelta(seconds=59), tick=False)
    authenticate(engine_ctx, token)
    assert last_used(engine_ctx, info.id) == start
    time_machine.move_to(start + timedelta(seconds=60), tick=False)
    authenticate(engine_ctx, token)
    assert last_used(engine_ctx, info.id) == start + timedelta(seconds=60)


@pytest.mark.parametrize(("scopes", "expected"), [
    (("read",), ("read",)), (["write"], ("write",)),
    (["write", "read", "write"], ("read", "write")), (iter(["read"]), ("read",)),
])
def test_scopes_are_kept_once_each_in_a_fixed_order(
        engine_ctx: Context, scopes: object, expected: tuple[str, ...]) -> None:
    info, token = create_api_key(engine_ctx, "billing", scopes)  # type: ignore[arg-type]
    assert info.scopes == expected
    authenticated = authenticate(engine_ctx, token)
    assert authenticated is not None and authenticated.scopes == expected


@pytest.mark.parametrize(("name", "scopes", "field"), [
    ("", SCOPES, "name"), ("   ", SCOPES, "name"), ("x" * 101, SCOPES, "name"),
    (None, SCOPES, "name"), (7, SCOPES, "name"),
    ("billing", [], "scopes"), ("billing", ["admin"], "scopes"), ("billing", "read", "scopes"),
    ("billing", None, "scopes"), ("billing", ["read", 1], "scopes"),
])
def test_bad_input_names_the_field_and_stores_nothing(
        engine_ctx: Context, name: object, scopes: object, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        create_api_key(engine_ctx, name, scopes)  # type: ignore[arg-type]
    assert list_api_keys(engine_ctx) == []


def test_a_name_of_the_longest_length_is_kept(engine_ctx: Context) -> None:
    info, _ = create_api_key(engine_ctx, "x" * 100)
    assert list_api_keys(engine_ctx)[0].name == info.name == "x" * 100


def test_the_token_is_never_logged(engine_ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    info, token = create_api_key(engine_ctx, "billing")
    authenticate(engine_ctx, token)
    revoke_api_key(engine_ctx, info.id)
    authenticate(engine_ctx, token)
    assert info.id in caplog.text  # the operations are logged, by key id
    assert token not in caplog.text and token[11:20] not in caplog.text


def test_key_info_is_a_frozen_value(engine_ctx: Context) -> None:
    info, _ = create_api_key(engine_ctx, "billing")
    assert isinstance(info, ApiKeyInfo) and hash(info) == hash(list_api_keys(engine_ctx)[0])


# The HTTP API's request size limit.

def test_the_api_body_limit_defaults_to_five_mebibytes() -> None:
    assert Settings.from_env({}).api_max_body == 5 * 1024 * 1024
    assert Settings.from_env({"DIALER_API_MAX_BODY": "1024"}).api_max_body == 1024


@pytest.mark.parametrize("value", ["1023", "0", "-1", "big", "1.5"])
def test_a_bad_api_body_limit_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^DIALER_API_MAX_BODY "):
        Settings.from_env({"DIALER_API_MAX_BODY": value})
