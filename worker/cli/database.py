"""`dialer db upgrade`."""

from __future__ import annotations

import click

from worker.cli.errors import friendly_errors
from worker.settings import get_settings
from worker.store.database import make_engine, upgrade


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply every migration (idempotent)."""
    upgrade(make_engine(get_settings().database_url))
    click.echo("database is up to date")
