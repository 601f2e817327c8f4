"""jobs.request_key: what a job's exporter was asked for, before it names the artifact.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("request_key", sa.String(64), nullable=False, server_default=""))
        batch.create_index("ix_jobs_request_key", ["request_key"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_request_key")
        batch.drop_column("request_key")
