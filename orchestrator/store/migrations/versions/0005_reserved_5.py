"""Reserved for issue 21 (bounds, outbox, reconciler): empty until that work lands, so the chain stays linear.

Revision ID: 0005
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
