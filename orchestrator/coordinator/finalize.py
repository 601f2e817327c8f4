"""A run is finalised exactly once, by whichever coordinator sees its last job turn terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.coordinator import events
from orchestrator.coordinator.outbox import Outbox
from orchestrator.store.models import Job, Run, utcnow
from orchestrator.store.states import JOB_OPEN, run_status

_j = cast(Table, Job.__table__)
# one open job is enough to know (ix_jobs_run_id_state): no count over a big run per result. Built
# once (it runs for every recorded result), the open states spelled out (an IN list is expanded
# anew at every execution).
_OPEN_JOB = select(_j.c.id).where(_j.c.run_id == bindparam("b_run"),
                                  or_(*(_j.c.state == st for st in sorted(JOB_OPEN)))).limit(1)


def finalize_if_done(s: Session, run_id: str, outbox: Outbox | None = None, fleet: Fleet | None = None) -> bool:
    """Finalise the run once, when its last job turns terminal (no Celery chords needed).
    With a fleet at hand to dispatch, the ``on_jobs_done`` hooks go first: one that adds jobs
    (a PR run's verify re-runs) keeps the run open until those are done too."""
    s.flush()
    if s.connection().execute(_OPEN_JOB, {"b_run": run_id}).first() is not None:
        return False
    run = s.get(Run, run_id)
    if run is None:  # deleted meanwhile: nothing to finalise
        return False
    if fleet is not None and outbox is not None and events.jobs_done(s, run, fleet, outbox):
        return False
    states = list(s.scalars(select(Job.state).where(Job.run_id == run_id)))
    status = run_status(states, cancelled=bool((run.meta or {}).get("cancelled")))
    counts: dict[str, int] = {}
    for st in states:
        counts[st] = counts.get(st, 0) + 1
    # compare-and-set: only one finaliser wins, whatever races
    won = cast(CursorResult[Any], s.execute(update(Run).where(Run.id == run_id, Run.finalized.is_(False)).values(
        finalized=True, status=status, finished_at=utcnow(),
        summary=dict(run.summary or {}, jobs=counts, finalized_at=datetime.utcnow().isoformat()),
    ).execution_options(synchronize_session=False))).rowcount
    if won == 1 and outbox is not None:
        outbox.events.append(("run_finished", {"run_id": run_id, "name": run.name, "trigger": run.trigger,
                                               "status": status, "jobs": counts}))
    return won == 1
