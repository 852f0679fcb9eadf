"""`dialer api-key` as an operator runs it: the token once on stdout and nowhere else, keys
listed without secrets, revocation that the API's check sees; `dialer api` serving the HTTP
API from the same settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness.stack import clean_environ, dialer
from harness.waiting import free_port, port_open, wait_for
from worker.producer.api_keys import authenticate
from worker.wiring import default_context

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"dk_[A-Za-z0-9_-]{43}")


def listing(env: dict[str, str]) -> list[str]:
    """`dialer api-key list` as lines: the header, then a key a line."""
    result = dialer(env, "api-key", "list")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_create_list_revoke(producer_env: dict[str, str]) -> None:
    created = dialer(producer_env, "api-key", "create", "--name", "billing")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert TOKEN.fullmatch(token), created.stdout
    assert "not shown again" in created.stderr and token not in created.stderr
    key = authenticate(default_context(), token)
    assert key is not None and (key.name, key.scopes) == ("billing", ("read", "write"))

    listed = json.loads(dialer(producer_env, "api-key", "list", "--json").stdout)
    assert listed == [{"id": key.id, "name": "billing", "prefix": token[:11],
                       "scopes": ["read", "write"], "created_at": key.created_at.isoformat(),
                       "revoked_at": None}]
    header, line = listing(producer_env)
    assert header.split() == ["id", "name", "prefix", "scopes", "created", "revoked"]
    created = key.created_at.strftime("%Y-%m-%d %H:%MZ")
    assert line.split() == [key.id, "billing", token[:11], "read,write", *created.split(), "-"]

    revoked = dialer(producer_env, "api-key", "revoke", key.id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"{key.id} revoked at ")
    assert authenticate(default_context(), token) is None
    (row,) = json.loads(dialer(producer_env, "api-key", "list", "--json").stdout)
    assert row["revoked_at"] is not None
    _, line = listing(producer_env)
    assert line.endswith(row["revoked_at"][:16].replace("T", " ") + "Z"), line


def test_create_with_a_scope_as_json(producer_env: dict[str, str]) -> None:
    created = dialer(producer_env, "api-key", "create", "--name", "reports", "--scope", "read",
                     "--json")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert TOKEN.fullmatch(body["token"]) and body["scopes"] == ["read"]
    assert body["prefix"] == body["token"][:11] and body["revoked_at"] is None
    assert body["token"] not in created.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["api-key", "create", "--name", " "], "name:"),
    (["api-key", "create", "--name", "x" * 101], "name:"),
    (["api-key", "create", "--name", "b", "--scope", "admin"], "--scope"),
    (["api-key", "create"], "--name"),
    (["api-key", "revoke", "nope"], "key_id: no API key 'nope'"),
    (["api", "--workers", "0"], "--workers"),
])
def test_bad_input_is_one_line_and_nonzero(producer_env: dict[str, str], args: list[str],
                                           message: str) -> None:
    result = dialer(producer_env, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and message in result.stderr, result.stderr
    assert json.loads(dialer(producer_env, "api-key", "list", "--json").stdout) == []


def test_api_with_a_bad_setting_is_one_line(producer_env: dict[str, str]) -> None:
    result = dialer({**producer_env, "DIALER_API_MAX_BODY": "10"}, "api")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: DIALER_API_MAX_BODY ") and "Traceback" not in \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_api_serves_the_http_api_with_the_cli_s_keys(producer_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    token = dialer(producer_env, "api-key", "create", "--name", "billing").stdout.strip()
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "api", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"], env={**clean_environ(), **producer_env}, cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=30,
                 what="dialer api to listen")
        assert proc.poll() is None, (tmp_path / "api.log").read_text()
        base = f"http://127.0.0.1:{port}/v1"
        assert requests.get(f"{base}/openapi.json", timeout=10).status_code == 200
        assert requests.get(f"{base}/calls", timeout=10).status_code == 401
        listed = requests.get(f"{base}/calls", timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
        assert "gunicorn" in (tmp_path / "api.log").read_text().lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()
    assert token not in (tmp_path / "api.log").read_text()
