"""A run as the API and the CLI show it: its jobs, their states, how many results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from orchestrator.store.db import session as db_session
from orchestrator.store.models import Job, Result, Run


class RunNotFound(LookupError):
    pass


def run_state(run_id: str) -> dict[str, Any]:
    with db_session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        jobs = [{"id": j.id, "model": j.model, "backend": j.backend, "device_class": j.device_class,
                 "input_resolution": j.input_resolution, "batch_size": j.batch_size, "repeat": j.repeat_index,
                 "state": j.state, "reason": j.reason, "attempts": j.attempt_count, "purpose": j.purpose,
                 "ab": bool(j.baseline_artifact_key)} for j in run.jobs]
        results = s.scalar(select(func.count()).select_from(Result).join(Job).where(Job.run_id == run_id))
        return {"id": run.id, "name": run.name, "trigger": run.trigger, "status": run.status,
                "finalized": run.finalized, "created_at": run.created_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "summary": run.summary, "results": results, "jobs": jobs}
