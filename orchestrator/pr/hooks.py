"""PR runs' part in the coordinator, as hooks it calls (``orchestrator.coordinator.events``):

- at submit, each PR job gets its baseline's artifact to run interleaved with (A/B in one lease);
- when all of a PR run's jobs are done, a suspected regression gets one verify re-run;
- after a PR run is finalised, a confirmed regression is the ``regression_found`` webhook.

The coordinator does not import this module; the composition roots call :func:`install`.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory import keys
from device_inventory.fleet import Fleet
from orchestrator.coordinator import events
from orchestrator.coordinator.dispatch import dispatch
from orchestrator.coordinator.outbox import Outbox, new_id
from orchestrator.export.artifacts import ArtifactStore, BadArtifactName
from orchestrator.observability.notify import notify
from orchestrator.pr.baselines import find_baseline_cells
from orchestrator.pr.verify import compare_pr_run, suspected_regressions
from orchestrator.reports.data import CellKey
from orchestrator.spec.matrix import MatrixSpec
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Job, Run, utcnow

VERIFY_KEY_TTL_S = 30 * 86400
VERIFY_DECIDE_S = 60


def install() -> None:
    events.on_submitted("pr.pair_with_baselines", pair_with_baselines)
    events.on_jobs_done("pr.request_verify", request_verify)
    events.subscribe("pr.regression_found", regression_found)


def pair_with_baselines(s: Session, run: Run, spec: MatrixSpec, store: ArtifactStore) -> None:
    if run.trigger == "pr":
        _pair_with_baselines(s, run.id, (run.meta or {}).get("baseline") or "main", spec.parameters, store)


def _pair_with_baselines(s: Session, run_id: str, branch: str, params: Any, store: ArtifactStore) -> None:
    """Give each PR job its baseline's artifact, to run interleaved with it in one lease
    (device-to-device and thermal drift then cancel). A cell without a stored baseline
    artifact, or whose artifact is the baseline's own, runs plain and is compared with
    the baseline run's results instead."""

    jobs = list(s.scalars(select(Job).where(Job.run_id == run_id, Job.state == "queued")))
    found = find_baseline_cells(s, {CellKey.of(j) for j in jobs}, branch, exclude_run=run_id)
    for job in jobs:
        base = found.get(CellKey.of(job))
        if base is None or base.artifact_key == job.artifact_key:
            continue
        art = s.get(Artifact, base.artifact_key)
        try:
            usable = art is not None and art.status == "ready" and store.exists(base.artifact_key)
        except BadArtifactName:  # a row no exporter wrote (imported results): nothing to run
            usable = False
        if not usable:
            continue
        job.baseline_artifact_key, job.ab_rounds = base.artifact_key, params.ab_rounds
        job.ab_plan = {"max_rounds": max(params.ab_rounds, params.ab_max_rounds), "budget_s": params.ab_budget_s,
                       "min_effect": params.ab_min_effect}



def request_verify(s: Session, run: Run, fleet: Fleet, outbox: Outbox) -> bool:
    """Once per PR run: re-run each cell whose first measurement looks slower than its
    baseline (one more job, a fresh lease). True when verify jobs were dispatched.

    The decision is taken exactly once: a Redis ``SET NX`` per run, so two coordinators
    finishing the last two jobs at once add one set of jobs. The loser defers (True) while
    the winner's transaction may still be in flight; a decision that never committed is
    given up after ``VERIFY_DECIDE_S`` and the run is finalised without a verify round
    (the reaper's straggler pass gets there), rather than never."""

    meta = dict(run.meta or {})
    if run.trigger != "pr" or run.finalized or "verify" in meta or meta.get("cancelled"):
        return False
    decision = keys.verify_decision(run.id)
    if not fleet.claims.claim(decision, str(time.time()), VERIFY_KEY_TTL_S):
        return time.time() - float(fleet.claims.get(decision) or 0) < VERIFY_DECIDE_S
    suspects = suspected_regressions(s, run.id, meta.get("baseline") or "main")
    run.meta = dict(meta, verify={"cells": [k.label() for k in suspects], "requested_at": utcnow().isoformat()})
    if not suspects:
        return False
    wanted = set(suspects)
    seen: set[CellKey] = set()
    next_repeat = max(j.repeat_index for j in run.jobs) + 1
    for job in sorted(run.jobs, key=lambda j: j.repeat_index):
        key = CellKey.of(job)
        if key not in wanted or key in seen or job.purpose != "measure" or job.state != "succeeded":
            continue
        seen.add(key)
        again = Job(id=new_id(), run_id=run.id, model=job.model, backend=job.backend,
                    device_class=job.device_class, device_selector=job.device_selector,
                    input_resolution=job.input_resolution, batch_size=job.batch_size, iterations=job.iterations,
                    warmup=job.warmup, compute_units=job.compute_units, timeout_s=job.timeout_s,
                    repeat_index=next_repeat, artifact_key=job.artifact_key, request_key=job.request_key,
                    baseline_artifact_key=job.baseline_artifact_key, ab_rounds=job.ab_rounds,
                    ab_plan=job.ab_plan, purpose="verify", priority=job.priority)
        s.add(again)
        s.flush()
        dispatch(s, again, fleet, outbox)
    return bool(seen)




def regression_found(event: str, payload: dict[str, Any]) -> None:
    """After a PR run is finalised: its verify round confirmed a regression -> the webhook."""
    if event != "run_finished" or payload.get("trigger") != "pr":
        return

    with db_session() as s:
        run = s.get(Run, payload["run_id"])
        meta = (run.meta or {}) if run is not None else {}
        # only a suspected regression can be a confirmed one
        if run is None or not (meta.get("verify") or {}).get("cells"):
            return
        slower = [c.key.label() for c in compare_pr_run(s, run.id, meta.get("baseline") or "main").comparisons
                  if c.verdict.verdict == "slower"]
    if slower:
        notify("regression_found", {"run_id": payload["run_id"], "repo": meta.get("repo"), "pr": meta.get("pr"),
                                    "cells": slower})
