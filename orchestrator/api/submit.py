"""Validate a matrix spec and submit it through the coordinator domain (``orchestrator.coordinator``).

Shared by the API routes and ``benchfarm pr submit`` so both record runs the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from device_inventory.fleet import Fleet
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.audit import Actor

TRIGGERS = ("manual", "nightly", "pr")


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

    spec = loads_spec(spec_text, source)
    meta_dict: dict[str, Any] = meta.model_dump(exclude_none=True) if meta else {}
    run_id, outbox = submit(spec, spec_text, fleet, source=source, trigger=trigger,
                            requested_by=requested_by, meta=meta_dict, actor=actor)
    outbox.send()
    return run_id, len(run_state(run_id)["jobs"])
