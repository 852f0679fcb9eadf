"""the relay's lease on a notification

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

A published deliver_notification message holds its event until relayed_until: the relay
publishes a due event again only once that has passed, whatever else waits in the queue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("relayed_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("relayed_until")
