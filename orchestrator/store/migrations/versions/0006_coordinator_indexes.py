"""Coordinator core (issue 19): indexes for the per-result finalise check and the reaper.

- ``ix_jobs_run_id_state`` (jobs.run_id, jobs.state): every recorded result asks whether its run
  still has an open job; with it that is an index lookup, not a walk over the run's jobs.
- ``ix_attempts_state_dispatched_at`` (attempts.state, attempts.dispatched_at): the reaper's
  "open attempts dispatched before the cutoff" (lost-publish recovery).

Revision ID: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_run_id_state", "jobs", ["run_id", "state"])
    op.create_index("ix_attempts_state_dispatched_at", "attempts", ["state", "dispatched_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_state_dispatched_at", table_name="attempts")
    op.drop_index("ix_jobs_run_id_state", table_name="jobs")
