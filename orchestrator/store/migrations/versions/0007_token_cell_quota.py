"""Issue 21 bounds: a per-token cell quota (``api_tokens.max_cells``).

NULL (every token made before this) keeps the deployment's per-spec limit
(``BENCHFARM_MAX_CELLS``) and no quota on unfinished work.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("max_cells", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("max_cells")
