"""Which runs and artifacts are a PR's baseline.

Baseline of a cell (model × backend × device class × resolution × batch): the newest
*finalised* run, other than the PR's own, that has results for that cell and belongs to
the baseline branch — its ``meta.branch`` is the baseline, or it is a nightly run (the
nightly matrix runs main) that names no other branch. Different cells may come from
different runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.reports.data import CellKey
from orchestrator.store.models import Job, Result, Run


class BaselineCell(NamedTuple):
    run_id: str
    artifact_key: str


def on_baseline(run: Run, branch: str) -> bool:
    meta = run.meta or {}
    return meta.get("branch") == branch or (run.trigger == "nightly" and meta.get("branch", "main") == branch)


def find_baseline_cells(s: Session, keys: Iterable[CellKey], branch: str = "main",
                        exclude_run: str = "") -> dict[CellKey, BaselineCell]:
    """For each cell key (model, backend, device class, resolution, batch): the newest baseline
    run measuring it, and the artifact that run measured."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = s.execute(
        select(Job, Run).join(Result, Result.job_id == Job.id).join(Run, Run.id == Job.run_id)
        .where(Run.finalized.is_(True), Run.id != exclude_run, Job.purpose == "measure",
               Job.model.in_({k[0] for k in wanted}), Job.backend.in_({k[1] for k in wanted}))
        .order_by(Run.created_at.desc(), Job.repeat_index)).all()
    found: dict[CellKey, BaselineCell] = {}
    for job, run in rows:
        key = CellKey.of(job)
        if key in wanted and key not in found and on_baseline(run, branch):
            found[key] = BaselineCell(run.id, job.artifact_key)
    return found
