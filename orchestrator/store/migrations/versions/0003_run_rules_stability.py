"""Run rules and stability (issue 18): runs.run_rules (the rule a run was measured under) and
results.cv / p99_p50 / max_min (each result's stability, for per-device history).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STABILITY = ("cv", "p99_p50", "max_min")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("run_rules", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("results") as batch:
        for name in _STABILITY:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        for name in reversed(_STABILITY):
            batch.drop_column(name)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("run_rules")
