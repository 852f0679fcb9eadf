"""Fixtures for the HTTP API's tests: one real gunicorn running "api:create_app()" per
backend and test module, this process's context on the same database (to make API keys
as an operator would), and clients that check every response against the OpenAPI document."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from harness.servers import RedisServer
from harness.stack import CALLER_ID, start_api
from tests.support.stack_fixtures import BACKENDS
from worker.demo.processes import Process, stop_all
from worker.engine.context import Context
from worker.producer.api_keys import SCOPES, create_api_key, list_api_keys
from worker.settings import Settings
from worker.wiring import build_context

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "api" / "openapi.json"
# Small, so a test can send a body past it cheaply.
API_MAX_BODY = 65536


@cache
def openapi_document() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text())


def _text(data: bytes, charset: str = "utf-8", **parameters: str) -> str:
    return data.decode(charset)


@cache
def _openapi() -> OpenAPI:
    # openapi-core reads application/json itself; RFC 9457's type is JSON too, and a CSV
    # export is checked as the text it is.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads,
                                                    "text/csv": _text})
    return OpenAPI.from_dict(openapi_document(), config=config)


# What the document answers for a request no operation of it matches (openapi-core finds no
# operation to check such a response against).
UNMATCHED_RESPONSES = {404: "NoSuchPath", 405: "MethodNotAllowed"}


def check_generic_error(response: requests.Response, name: str) -> None:
    """The response as `components.responses[name]` describes it: its media type, its
    required headers, and a body valid against the schema given there."""
    described = openapi_document()["components"]["responses"][name]
    media_type = response.headers["Content-Type"].split(";")[0]
    assert media_type in described["content"], media_type
    for header, spec in described.get("headers", {}).items():
        assert not spec.get("required") or header in response.headers, header
    pointer = (f"#/components/responses/{name}/content/"
               f"{media_type.replace('/', '~1')}/schema")
    # The document is the root resource, so the schema's own $refs resolve in it.
    jsonschema.Draft202012Validator({**openapi_document(), "$ref": pointer}).validate(
        response.json())


def check_against_openapi(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A requests response hook: the document must describe every answer the API gives."""
    try:
        _openapi().validate_response(RequestsOpenAPIRequest(response.request),
                                     RequestsOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound) as exc:
        name = UNMATCHED_RESPONSES.get(response.status_code)
        if name is None or isinstance(exc, OperationNotFound) != (response.status_code == 405):
            raise
        check_generic_error(response, name)


class ApiClient(requests.Session):
    """requests against the API's base URL, with a key (or none), every response checked."""

    def __init__(self, base_url: str, token: str | None) -> None:
        super().__init__()
        self.base_url = base_url
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self.hooks["response"].append(check_against_openapi)

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return super().request(method, f"{self.base_url}{url!s}", *args, **kwargs)


@dataclass
class ApiServer:
    url: str
    ctx: Context
    process: Process
    backend: str

    def key(self, scopes: Iterable[str] = SCOPES, name: str = "tests") -> str:
        """A new API key's token, made in this process as `dialer api-key create` does."""
        _, token = create_api_key(self.ctx, name, scopes)
        return token

    def client(self, token: str | None = None) -> ApiClient:
        return ApiClient(self.url, token)


@pytest.fixture(scope="module", params=BACKENDS)
def api_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               redis_server: RedisServer) -> Iterator[ApiServer]:
    """The API on a fresh database of each backend, shared by a module's tests: each test
    makes its own key and data, and asserts on those only."""
    workdir = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        database_url = f"sqlite:///{workdir / 'dialer.db'}"
    else:
        database_url = request.getfixturevalue("postgres_server").create_database(
            "api" + uuid.uuid4().hex[:16], template=request.getfixturevalue("migrated_postgres"))
    env = {"DIALER_DATABASE_URL": database_url, "DIALER_REDIS_URL": redis_server.url,
           "DIALER_DEFAULT_FROM": CALLER_ID, "DIALER_API_MAX_BODY": str(API_MAX_BODY)}
    ctx = build_context(Settings.from_env(env))
    # SQLite migrates itself on first use: here, before gunicorn could race this process.
    list_api_keys(ctx)
    process, url = start_api(workdir, env)
    yield ApiServer(url, ctx, process, request.param)
    stop_all([process])
    ctx.database.dispose()


@pytest.fixture
def api(api_server: ApiServer) -> ApiClient:
    """A client holding a new read-and-write key."""
    return api_server.client(api_server.key())


PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def number() -> str:
    """A number no other test of a module uses (they share the server's database)."""
    return f"+1415{random.randint(2, 9)}{random.randint(0, 999999):06d}"


def problem(response: requests.Response, status: int) -> str:
    """The problem's detail, after checking it is one, with no traceback in it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == PROBLEM_FIELDS and body["status"] == status
    assert "Traceback" not in response.text
    return body["detail"]
