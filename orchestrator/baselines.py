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

from orchestrator.store.models import Job, Result, Run


class BaselineCell(NamedTuple):
    run_id: str
    artifact_key: str


def on_baseline(run: Run, branch: str) -> bool:
    meta = run.meta or {}
    return meta.get("branch") == branch or (run.trigger == "nightly" and meta.get("branch", "main") == branch)


def find_baseline_cells(s: Session, keys: Iterable[tuple[str, str, str, int, int]], branch: str = "main",
                        exclude_run: str = "") -> dict[tuple[str, str, str, int, int], BaselineCell]:
    """For each cell key (model, backend, device class, resolution, batch): the newest baseline
    run measuring it, and the artifact that run measured."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = s.execute(
        select(Job.model, Job.backend, Job.device_class, Job.input_resolution, Job.batch_size, Job.artifact_key,
               Run)
        .join(Result, Result.job_id == Job.id).join(Run, Run.id == Job.run_id)
        .where(Run.finalized.is_(True), Run.id != exclude_run, Job.purpose == "measure",
               Job.model.in_({k[0] for k in wanted}), Job.backend.in_({k[1] for k in wanted}))
        .order_by(Run.created_at.desc(), Job.repeat_index)).all()
    found: dict[tuple[str, str, str, int, int], BaselineCell] = {}
    for model, backend, device_class, res, batch, artifact_key, run in rows:
        key = (model, backend, device_class, res, batch)
        if key in wanted and key not in found and on_baseline(run, branch):
            found[key] = BaselineCell(run.id, artifact_key)
    return found
