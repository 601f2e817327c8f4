"""Issue 21 trust: token scopes and principal, run owner, the audit table.

Tokens made before scopes could submit and cancel any run; they become ``read submit
cancel-own`` (their principal is their name): they keep submitting and downloading, but
cancelling another's run — or any run made before ownership, whose owner is "" — now needs
an ``admin`` token (``benchfarm tokens create NAME --scope admin``).

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LEGACY_SCOPES = "read submit cancel-own"


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("principal", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("scopes", sa.String(200), nullable=False, server_default=LEGACY_SCOPES))
    op.execute("UPDATE api_tokens SET principal = name WHERE principal = ''")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=False, server_default=""))
        batch.create_index("ix_runs_owner", ["owner"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(16), nullable=False, server_default=""),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("target_token_id", sa.String(16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    for col in ("at", "actor", "action", "run_id"):
        op.create_index(f"ix_audit_events_{col}", "audit_events", [col])


def downgrade() -> None:
    op.drop_table("audit_events")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_owner")
        batch.drop_column("owner")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
        batch.drop_column("principal")
