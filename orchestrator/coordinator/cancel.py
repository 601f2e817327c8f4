"""Cancel a run: its open jobs and their attempts, under the same locks as recording."""

from __future__ import annotations

from device_inventory.fleet import Fleet
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.coordinator.record import lock_open_attempt
from orchestrator.coordinator.run_state import RunNotFound
from orchestrator.store import audit
from orchestrator.store.audit import Actor
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Run, utcnow
from orchestrator.store.states import ATTEMPT_OPEN, JOB_TERMINAL


def cancel(run_id: str, fleet: Fleet, actor: Actor | None = None) -> int:
    """Cancel the run's open jobs; return how many. With ``actor`` (an API caller) the audit
    row is written in the same transaction."""
    outbox = Outbox()
    with db_session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        n = 0
        for job in run.jobs:
            if job.state in JOB_TERMINAL:
                continue
            opened = [a for a in job.attempts if a.state in ATTEMPT_OPEN]
            locked = [a for a in opened if lock_open_attempt(s, a.id) is not None]
            s.refresh(job)  # under the locks: a report recorded meanwhile has made it terminal
            if job.state in JOB_TERMINAL:
                continue
            for a in locked:
                a.state = "cancelled"
                fleet.cancel_attempt(a.id)
            job.state, job.reason, job.finished_at = "cancelled", "run cancelled", utcnow()
            n += 1
        run.meta = dict(run.meta or {}, cancelled=True)
        if actor is not None:
            audit.record(s, actor, "run.cancel", run_id=run_id, cancelled_jobs=n, owner=run.owner)
        finalize_if_done(s, run_id, outbox)
    outbox.send()
    return n

