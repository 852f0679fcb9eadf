"""The do-not-call list: checked when a job is enqueued or imported, and right before dialing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from worker.db import session_scope
from worker.models import DoNotCall
from worker.validation import normalize_to


def is_listed(session: Session, number: str) -> bool:
    return session.get(DoNotCall, number) is not None


def listed_numbers(session: Session) -> set[str]:
    return set(session.scalars(select(DoNotCall.number)))


def add(numbers: Iterable[str]) -> int:
    """Add numbers (normalised to E.164); returns how many were new. A bad one adds none."""
    wanted = {normalize_to(n, "number") for n in numbers}
    with session_scope() as session:
        new = sorted(wanted - listed_numbers(session))
        if new:
            session.execute(insert(DoNotCall), [{"number": n} for n in new])
    return len(new)


def remove(numbers: Iterable[str]) -> int:
    wanted = [normalize_to(n, "number") for n in numbers]
    with session_scope() as session:
        return session.execute(delete(DoNotCall).where(DoNotCall.number.in_(wanted))).rowcount


def all_numbers() -> list[str]:
    with session_scope() as session:
        return sorted(listed_numbers(session))


def read_numbers(path: Path) -> list[str]:
    """A `to` or `number` column of a CSV with a header, else the first column of each line."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip()]
    if not rows:
        raise ValueError(f"{path}: no numbers in it")
    header = [c.strip().lower() for c in rows[0]]
    column = next((header.index(n) for n in ("to", "number") if n in header), None)
    if column is not None:
        return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]
    return [r[0].strip() for r in rows]
