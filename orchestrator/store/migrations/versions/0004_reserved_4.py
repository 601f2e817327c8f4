"""Reserved for issue 21 (trust: scopes, ownership, audit): empty until that work lands, so the chain stays linear.

Revision ID: 0004
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
