"""Validate a matrix spec and submit it through the coordinator domain (``orchestrator.coordinator``).

Shared by the API routes and ``benchfarm pr submit`` so both record runs the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from device_inventory.fleet import Fleet
from orchestrator.spec.bounds import max_cells, planned_cells
from orchestrator.spec.matrix import MatrixSpec, loads_spec
from orchestrator.store.audit import Actor
from orchestrator.store.db import session
from orchestrator.store.models import Job, Run
from orchestrator.store.states import JOB_TERMINAL

TRIGGERS = ("manual", "nightly", "pr")


class QuotaExceeded(Exception):
    """A token's cell quota would be exceeded (the API answers 429: wait for earlier runs)."""


class RunMeta(BaseModel):
    """What a run records about where it came from (PR runs: repo and number)."""

    model_config = ConfigDict(extra="forbid")
    repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    pr: int | None = Field(default=None, ge=1)
    branch: str | None = Field(default=None, max_length=250)
    baseline: str | None = Field(default=None, max_length=250, description="baseline branch, e.g. main")
    commit: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,40}$")
    schedule: str | None = Field(default=None, max_length=200)


def submit_spec_text(spec_text: str, fleet: Fleet, *, source: str, trigger: str, requested_by: str,
                     meta: RunMeta | None = None, actor: Actor | None = None) -> tuple[str, int]:
    """Validate (raises ``SpecError`` naming source:line), submit, send; return (run id, job count).

    ``actor``: the API caller, who owns the run (and is audited with it)."""
    from orchestrator.coordinator.run_state import run_state
    from orchestrator.coordinator.submit import submit

    spec = _load_within_quota(spec_text, source, actor)
    meta_dict: dict[str, Any] = meta.model_dump(exclude_none=True) if meta else {}
    run_id, outbox = submit(spec, spec_text, fleet, source=source, trigger=trigger,
                            requested_by=requested_by, meta=meta_dict, actor=actor)
    outbox.send()
    return run_id, len(run_state(run_id)["jobs"])


def open_cells(principal: str) -> int:
    """Jobs of the principal's runs that are not finished (queued, exporting, running)."""
    with session() as s:
        return s.scalar(select(func.count(Job.id)).join(Run, Run.id == Job.run_id)
                        .where(Run.owner == principal, Job.state.not_in(JOB_TERMINAL))) or 0


def _load_within_quota(spec_text: str, source: str, actor: Actor | None) -> MatrixSpec:
    """The spec, validated under the smaller of the deployment's per-spec limit and the token's
    quota; with a quota, the principal's unfinished cells plus these must fit in it.

    Two submissions checked at the same moment can both pass (the count is not locked): the
    quota bounds a token's work to a few specs' worth, it is not an exact reservation."""
    if actor is None or actor.max_cells is None:
        return loads_spec(spec_text, source)
    quota = actor.max_cells
    if quota >= max_cells():
        spec = loads_spec(spec_text, source)
    else:
        spec = loads_spec(spec_text, source, quota, limit_name=f"the max_cells of token {actor.token_id}")
    cells, busy = planned_cells(spec), open_cells(actor.principal)
    if busy + cells > quota:
        raise QuotaExceeded(f"this spec plans {cells:,} cells and {actor.principal!r} has {busy:,} unfinished: "
                            f"over the {quota:,} cells token {actor.token_id} may have queued or running; "
                            "submit again when earlier runs finish, or ask an admin for a larger --max-cells")
    return spec
