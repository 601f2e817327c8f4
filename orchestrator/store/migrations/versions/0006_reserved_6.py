"""Reserved for issue 19 (coordinator core): empty until that work lands, so the chain stays linear.

Revision ID: 0006
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
