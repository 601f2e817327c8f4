"""``/runs``: submit (write, token), list, one run, its matrix, cancel (write, token).

Every job, result and cell in these responses carries ``simulated``: numbers from
virtual devices are never shown unlabelled.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.api.auth import has_scope, require
from orchestrator.api.deps import get_fleet, get_session
from orchestrator.api.errors import responses
from orchestrator.api.guard import GuardedRoute
from orchestrator.api.submit import RunMeta, submit_spec_text
from orchestrator.coordinator.cancel import cancel
from orchestrator.coordinator.run_state import RunNotFound, run_state
from orchestrator.store.audit import Actor
from orchestrator.store.models import Job, Result, Run

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: str = Field(min_length=1, max_length=1_000_000, description="the matrix spec, as YAML text")
    source: str = Field(default="spec.yaml", max_length=200, description="file name used in error messages")
    trigger: Literal["manual", "nightly", "pr"] = "manual"
    requested_by: str = Field(default="", max_length=200, description="a label; defaults to the token's principal "
                              "(the run's owner is always the token's principal)")
    meta: RunMeta | None = None


class Submitted(BaseModel):
    id: str
    trigger: str
    jobs: int
    url: str


def _simulated_by_run(s: Session, run_ids: list[str]) -> set[str]:
    """Ids of the runs with at least one simulated result (portable: no MAX over booleans)."""
    return set(s.scalars(select(Job.run_id).distinct().join(Result, Result.job_id == Job.id)
                         .where(Job.run_id.in_(run_ids), Result.simulated.is_(True))))


def _run_summary(run: Run, simulated: bool) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "trigger": run.trigger, "status": run.status,
            "requested_by": run.requested_by, "owner": run.owner, "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "meta": run.meta or {}, "simulated": simulated}


def _not_found(run_id: str) -> HTTPException:
    return HTTPException(404, f"no run {run_id!r}")


@router.post("", status_code=201, response_model=Submitted,
             responses=responses(400, 401, 403, 413, 422, 429, 503))
def submit_run(body: RunRequest, actor: Actor = Depends(require("submit")),
               fleet: Fleet = Depends(get_fleet)) -> Submitted:
    """Validate the spec (422 naming file:line) and queue its jobs; the token's principal owns the run."""
    run_id, jobs = submit_spec_text(body.spec, fleet, source=body.source, trigger=body.trigger,
                                    requested_by=body.requested_by or actor.principal, meta=body.meta, actor=actor)
    return Submitted(id=run_id, trigger=body.trigger, jobs=jobs, url=f"/runs/{run_id}")


@router.get("", responses=responses(422))
def list_runs(limit: int = Query(50, ge=1, le=500), trigger: str | None = None, status: str | None = None,
              s: Session = Depends(get_session)) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(Run).order_by(Run.created_at.desc()).limit(limit)
    if trigger:
        q = q.where(Run.trigger == trigger)
    if status:
        q = q.where(Run.status == status)
    rows = list(s.scalars(q))
    sim = _simulated_by_run(s, [r.id for r in rows])
    return [_run_summary(r, r.id in sim) for r in rows]


@router.get("/{run_id}", responses=responses(404, 422))
def get_run(run_id: str, s: Session = Depends(get_session)) -> dict[str, Any]:
    """The run, every job's state, and each job's result summary (with ``simulated``)."""
    try:
        state = run_state(run_id)
    except RunNotFound:
        raise _not_found(run_id) from None
    results = {r.job_id: r for r in s.scalars(select(Result).join(Job).where(Job.run_id == run_id))}
    for job in state["jobs"]:
        r = results.get(job["id"])
        job["simulated"] = bool(r.simulated) if r else None
        job["result"] = None if r is None else {
            "simulated": bool(r.simulated), "device_id": r.device_id, "device_model": r.device_model,
            "os_version": r.os_version, "median_ms": r.median_ms, "p10_ms": r.p10_ms, "p90_ms": r.p90_ms,
            "mean_ms": r.mean_ms, "load_time_ms": r.load_time_ms, "peak_memory_bytes": r.peak_memory_bytes,
            "energy_mj": r.energy_mj,
            # the device's own figures (DVT sysmontap / energy gauge), each with its source
            "device_metrics": (r.document or {}).get("device_metrics")}
    state["simulated"] = any(r.simulated for r in results.values())
    run = s.get(Run, run_id)
    if run is not None:
        state.update(requested_by=run.requested_by, owner=run.owner, meta=run.meta or {})
    return state


@router.get("/{run_id}/matrix", responses=responses(404, 422))
def get_matrix(run_id: str, s: Session = Depends(get_session)) -> dict[str, Any]:
    """Cells (repeats pooled) as JSON plus the device matrix as markdown."""
    from orchestrator.analysis.stats import summarize
    from orchestrator.reports.data import RunNotFound, load_run
    from orchestrator.reports.matrix import matrix_markdown

    try:
        data = load_run(s, run_id)
    except RunNotFound:
        raise _not_found(run_id) from None
    cells = []
    for c in data.cells:
        st = summarize(c.latencies_ms)
        cells.append({**c.key._asdict(), "state": c.state, "reason": c.reason, "simulated": c.simulated,
                      "repeats": c.repeats, "repeats_ok": c.repeats_ok, "iterations": len(c.latencies_ms),
                      "median_ms": st.median if st else None, "p10_ms": st.p10 if st else None,
                      "p90_ms": st.p90 if st else None, "peak_memory_bytes": c.peak_memory_bytes,
                      "model_size_bytes": c.model_size_bytes, "energy_mj_per_inference": c.energy_mj_per_inference,
                      "energy_sources": c.energy_sources, "device_peak_memory_bytes": c.device_memory_bytes,
                      "device_figures_missing": c.device_missing, "charging": c.charging})
    return {"run_id": run_id, "simulated": data.simulated, "cells": cells,
            "markdown": matrix_markdown(s, run_id)}


@router.delete("/{run_id}", responses=responses(400, 401, 403, 404, 413, 422, 503))
def cancel_run(run_id: str, actor: Actor = Depends(require("cancel-own")), fleet: Fleet = Depends(get_fleet),
               s: Session = Depends(get_session)) -> dict[str, Any]:
    """Cancel every non-terminal job; running attempts are told to stop at the agent.

    ``cancel-own`` cancels the runs the token's principal owns; another's run needs ``admin``."""
    run = s.get(Run, run_id)
    if run is None:
        raise _not_found(run_id)
    if run.owner != actor.principal and not has_scope(actor, "admin"):
        raise HTTPException(403, f"run {run_id} is not yours (owner {run.owner or 'unrecorded'!r}); "
                                 "cancelling another's run needs the 'admin' scope")
    try:
        n = cancel(run_id, fleet, actor)
    except RunNotFound:
        raise _not_found(run_id) from None
    state = run_state(run_id)
    return {"id": run_id, "cancelled_jobs": n, "status": state["status"]}
