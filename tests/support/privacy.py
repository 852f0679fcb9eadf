"""Where a number is still written: every text and JSON column of every table, searched."""

from __future__ import annotations

from sqlalchemy import JSON, String, Text, cast, func, select

from worker.store.database import Database
from worker.store.models import Base


def columns_holding(database: Database, number: str) -> list[str]:
    """`table.column` of each column where some row holds `number`."""
    found = []
    with database.session() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (String, Text, JSON)):
                    continue
                held = session.scalar(select(func.count()).select_from(table).where(
                    cast(column, Text).contains(number, autoescape=True)))
                if held:
                    found.append(f"{table.name}.{column.name}")
    return found
