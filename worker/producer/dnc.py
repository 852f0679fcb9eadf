"""The do-not-call list: checked when a job is enqueued or imported, and right before dialing."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from worker.domain.validation import normalize_to
from worker.engine.context import Context
from worker.producer.files import csv_rows, read_text
from worker.store.models import DoNotCall


def listed_numbers(session: Session) -> set[str]:
    return set(session.scalars(select(DoNotCall.number)))


def add_do_not_call(ctx: Context, numbers: Iterable[str]) -> int:
    """Add numbers (normalised to E.164); returns how many were new. A bad one adds none."""
    wanted = {normalize_to(n, "number") for n in numbers}
    with ctx.database.session() as session:
        new = sorted(wanted - listed_numbers(session))
        if new:
            session.execute(insert(DoNotCall), [{"number": n} for n in new])
    return len(new)


def remove_do_not_call(ctx: Context, numbers: Iterable[str]) -> int:
    wanted = [normalize_to(n, "number") for n in numbers]
    with ctx.database.session() as session:
        return session.execute(delete(DoNotCall).where(DoNotCall.number.in_(wanted))).rowcount


def is_on_do_not_call(ctx: Context, number: str) -> bool:
    """Whether the number (normalised to E.164 first) is on the list."""
    wanted = normalize_to(number, "number")
    with ctx.database.session() as session:
        return session.get(DoNotCall, wanted) is not None


def list_do_not_call(ctx: Context) -> list[str]:
    with ctx.database.session() as session:
        return sorted(listed_numbers(session))


def read_numbers(path: Path) -> list[str]:
    numbers = numbers_in_csv(read_text(path), path)
    if not numbers:
        raise ValueError(f"{path}: no numbers in it")
    return numbers


def numbers_in_csv(text: str, source: object) -> list[str]:
    """A `to` or `number` column of a CSV with a header, else the first column of each line;
    a file, or an HTTP body (`source` names it in errors)."""
    rows = [row for _, row in csv_rows(text, source) if row and row[0].strip()]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    column = next((header.index(n) for n in ("to", "number") if n in header), None)
    if column is not None:
        return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]
    return [r[0].strip() for r in rows]
