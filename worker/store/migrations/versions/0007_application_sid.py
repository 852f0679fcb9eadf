"""a TwiML application as the third way to say what a call does

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

A job (or a campaign, for its jobs) names exactly one of url, twiml or application_sid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("jobs", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("application_sid", sa.String(length=34), nullable=True))


def downgrade() -> None:
    for table in ("jobs", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("application_sid")
