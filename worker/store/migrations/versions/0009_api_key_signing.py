"""the API key a job, a campaign and an event belong to

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Events of jobs enqueued over HTTP are signed with a secret of their API key's own; rows
stored before have none, and their events keep DIALER_NOTIFY_SECRET.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("jobs", "campaigns", "notifications")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("api_key_id")
