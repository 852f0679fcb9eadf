"""`dialer db upgrade`."""

from __future__ import annotations

import click

from worker.cli.errors import friendly_errors
from worker.store.database import upgrade
from worker.wiring import default_context


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply every migration (idempotent)."""
    upgrade(default_context().database.engine)
    click.echo("database is up to date")
