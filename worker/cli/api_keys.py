"""`dialer api-key create|list|revoke|signing-secret`: the keys of the HTTP producer API,
and `dialer api`, which serves it.

`dialer api` execs gunicorn with the app's import string: the `api` package is the web
layer, above this CLI, and is loaded only by gunicorn's workers.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

import click

from worker import api
from worker.cli.errors import friendly_errors
from worker.producer.api_keys import SCOPES, api_key_as_dict
from worker.settings import get_settings

API_APP = "api:create_app()"


@click.group("api-key")
def api_key() -> None:
    """Keys for the HTTP producer API."""


@api_key.command("create")
@click.option("--name", required=True, help="Who uses the key, e.g. billing.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES),
              help="read, write; repeat for both (default: both).")
@click.option("--json", "as_json", is_flag=True, help="The key and its token as JSON.")
@friendly_errors
def api_key_create(name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Make a key; its token goes to stdout, this once."""
    info, token = api.create_api_key(name, scopes or SCOPES)
    if as_json:
        click.echo(json.dumps({**api_key_as_dict(info), "token": token}))
    else:
        click.echo(token)
    click.echo(f"API key {info.id} ({info.name}, {', '.join(info.scopes)}) created; its token "
               "is not shown again: store it now. The events of what it enqueues are signed "
               f"with `dialer api-key signing-secret {info.id}`.", err=True)


@api_key.command("signing-secret")
@click.argument("key_id")
@friendly_errors
def api_key_signing_secret(key_id: str) -> None:
    """The whsec_ secret that signs the result notifications of this key's calls."""
    click.echo(api.api_key_signing_secret(key_id))


@api_key.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def api_key_list(as_json: bool) -> None:
    """Every key, revoked ones included, oldest first; never a token."""
    keys = api.list_api_keys()
    if as_json:
        click.echo(json.dumps([api_key_as_dict(info) for info in keys]))
        return
    rows = [("id", "name", "prefix", "scopes", "created", "revoked")]
    rows += [(info.id, info.name, info.prefix, ",".join(info.scopes), _minute(info.created_at),
              _minute(info.revoked_at) or "-") for info in keys]
    # Plain aligned columns rather than a table fitted to the terminal: the id (what
    # `revoke` takes) and the prefix are never cut short, and grep sees whole lines.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                              row[-1]]))


def _minute(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if value else ""


@api_key.command("revoke")
@click.argument("key_id")
@friendly_errors
def api_key_revoke(key_id: str) -> None:
    """Refuse the key's token from now on."""
    revoked = api_key_as_dict(api.revoke_api_key(key_id))
    click.echo(f"{revoked['id']} revoked at {revoked['revoked_at']}")


@click.command("api")
@click.option("--bind", default="127.0.0.1:8000", show_default=True,
              help="HOST:PORT (or unix:PATH) gunicorn listens on.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@friendly_errors
def serve_api(bind: str, workers: int) -> None:
    """Serve the HTTP producer API under gunicorn."""
    get_settings()  # a bad setting is one line here, not a traceback from every worker
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
            API_APP]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)
