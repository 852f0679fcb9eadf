"""attempt ids are never reused on SQLite

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

SQLite gives a new row the highest rowid plus one, so deleting the newest attempt (a
released claim) handed its id to the next claim, and a stalled worker still holding the
old id would settle the new claim's attempt. AUTOINCREMENT never hands an id out twice,
as PostgreSQL's sequences already don't.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate_attempts(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("attempts", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _recreate_attempts(True)


def downgrade() -> None:
    _recreate_attempts(False)
