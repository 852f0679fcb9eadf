"""Migrations on a database that already holds data: nothing lost, nothing unlinked."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from worker.store.database import alembic_config, make_engine, upgrade


def test_making_attempt_ids_autoincrement_keeps_every_row_and_link(tmp_path: Path):
    """0003 recreates `attempts` on SQLite; the events pointing at attempts (ON DELETE SET
    NULL) must keep their links, and a deleted newest id must not come back."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0002")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO jobs (id, \"to\", \"from\", url, call_options, max_attempts, retry_on,"
            " retry_delays, priority, status, next_attempt_at, attempts, metadata, created_at,"
            " updated_at, timezones) VALUES ('j1', '+14155552301', '+14155550100', 'u', '{}', 3,"
            " '[]', '[]', 0, 'dialing', '2026-11-25', 2, '{}', '2026-11-25', '2026-11-25', '[]')"))
        for number in (1, 2):
            connection.execute(text(
                "INSERT INTO attempts (job_id, number, call_sid, status, created_at, updated_at)"
                f" VALUES ('j1', {number}, 'CA{number}', 'busy', '2026-11-25', '2026-11-25')"))
        connection.execute(text(
            "INSERT INTO events (call_sid, sequence_number, call_status, attempt_id, source,"
            " payload, received_at) VALUES ('CA2', 3, 'busy', 2, 'callback', '{}', '2026-11-25')"))

    upgrade(engine)

    with engine.begin() as connection:
        assert connection.execute(text("SELECT attempt_id FROM events")).scalars().all() == [2]
        assert connection.execute(text("SELECT id FROM attempts ORDER BY id")).scalars().all() \
            == [1, 2]
        connection.execute(text("DELETE FROM attempts WHERE id = 2"))
        connection.execute(text(
            "INSERT INTO attempts (job_id, number, status, created_at, updated_at)"
            " VALUES ('j1', 2, 'creating', '2026-11-25', '2026-11-25')"))
        assert connection.execute(text("SELECT max(id) FROM attempts")).scalar() == 3
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
