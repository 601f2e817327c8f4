"""Issue 21 robustness: the database outbox (messages committed with their transaction, sent
after it, resent by the reconciler) and results.peak_memory_bytes as BIGINT.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    with op.batch_alter_table("results") as batch:
        batch.alter_column("peak_memory_bytes", type_=sa.BigInteger(), existing_type=sa.Integer(),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.alter_column("peak_memory_bytes", type_=sa.Integer(), existing_type=sa.BigInteger(),
                           existing_nullable=False)
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_table("outbox")
