"""recordings, and the time answering machine detection took

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A call's recordings are stored once each, keyed by RecordingSid, and join their attempt by
CallSid. An attempt keeps how long asynchronous AMD took beside its answered_by.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("machine_detection_duration", sa.Integer(), nullable=True))
    op.create_table(
        "recordings",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("track", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_recordings_call_sid", "recordings", ["call_sid"])


def downgrade() -> None:
    op.drop_index("ix_recordings_call_sid", table_name="recordings")
    op.drop_table("recordings")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("machine_detection_duration")
