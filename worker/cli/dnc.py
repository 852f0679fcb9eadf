"""`dialer dnc add|remove|list|import`: the do-not-call list."""

from __future__ import annotations

import json
from pathlib import Path

import click

from worker import api
from worker.cli.errors import friendly_errors
from worker.producer.dnc import read_numbers


@click.group()
def dnc() -> None:
    """The do-not-call list."""


@dnc.command("add")
@click.argument("numbers", nargs=-1, required=True)
@friendly_errors
def dnc_add(numbers: tuple[str, ...]) -> None:
    click.echo(f"{api.add_do_not_call(numbers)} added")


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@friendly_errors
def dnc_remove(numbers: tuple[str, ...]) -> None:
    click.echo(f"{api.remove_do_not_call(numbers)} removed")


@dnc.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def dnc_list(as_json: bool) -> None:
    numbers = api.list_do_not_call()
    click.echo(json.dumps(numbers) if as_json else "\n".join(numbers))


@dnc.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@friendly_errors
def dnc_import(file: Path) -> None:
    """One number per line, or a CSV whose first column (or `to`/`number` column) holds them."""
    click.echo(f"{api.add_do_not_call(read_numbers(file))} added")
