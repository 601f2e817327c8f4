"""Per-operator profiles in the results store: written when a job's result is recorded,
read by the API, the reports, the verdict and ``benchfarm profile``.

The result document's ``profile`` block (and the A/B baseline arm's) becomes one
``profiles`` row and its operators ``profile_operators`` rows; the operator list is then
dropped from the stored document so it is not kept twice. The raw ETDump stays a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store.models import Profile, ProfileOperator


def _profile_row(job_id: str, arm: str, artifact_key: str, block: dict[str, Any]) -> Profile:
    method = block.get("method_ms") or {}
    error = block.get("error") or {}
    row = Profile(job_id=job_id, arm=arm, artifact_key=artifact_key, status=block["status"],
                  source=block["source"], simulated=bool(block["simulated"]),
                  iterations=int(block.get("iterations") or 0), method_mean_ms=method.get("mean"),
                  method_p50_ms=method.get("p50"), wall_mean_ms=(block.get("wall_ms") or {}).get("mean"),
                  pass_s=block.get("pass_s"), etrecord=bool(block.get("etrecord")),
                  etdump_path=str(block.get("etdump_kept") or ""), error_category=error.get("category", ""),
                  error=error.get("message", ""))
    ops = block.get("operators") or []
    # shares of the method's time; without a Method::execute event, of the operators' sum
    total = method.get("mean") or sum(op["mean_ms"] for op in ops) or 1.0
    row.operators = [ProfileOperator(
        position=int(op.get("order", i)), name=op["name"], kind=op["kind"], p10_ms=op.get("p10_ms"),
        p50_ms=op["p50_ms"], p90_ms=op.get("p90_ms"), mean_ms=op["mean_ms"], share=op["mean_ms"] / total,
        delegated=bool(op["delegated"]), backend=op.get("backend"), module_path=op.get("module_path"),
        debug_handle=op.get("debug_handle")) for i, op in enumerate(ops)]
    return row


def _compact(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "operators"}  # still a valid profile block


def save(s: Session, job_id: str, artifact_key: str, baseline_artifact_key: str, document: dict[str, Any],
         ab: dict[str, Any] | None) -> None:
    """Store the profiles a recorded result of job ``job_id`` (its program ``artifact_key``, its
    A/B baseline's ``baseline_artifact_key``) carries; compacts ``document`` (and ``ab``) in place."""
    arms = [("A", artifact_key, document)]
    if ab and ab.get("baseline_result"):
        arms.append(("B", ab.get("baseline_artifact_key") or baseline_artifact_key, ab["baseline_result"]))
    for arm, key, doc in arms:
        block = doc.get("profile")
        if not block:
            continue
        s.add(_profile_row(job_id, arm, key or "", block))
        doc["profile"] = _compact(block)


@dataclass
class OperatorRow:
    position: int
    name: str
    kind: str
    p50_ms: float
    p90_ms: float | None
    mean_ms: float
    share: float
    delegated: bool
    backend: str | None
    module_path: str | None
    debug_handle: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CellProfile:
    job_id: str
    arm: str
    artifact_key: str
    status: str
    simulated: bool
    source: str
    iterations: int
    method_mean_ms: float | None
    wall_mean_ms: float | None
    etrecord: bool
    etdump_path: str
    error_category: str
    error: str
    operators: list[OperatorRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "operators"},
                "operators": [op.as_dict() for op in self.operators]}


def _cell(p: Profile) -> CellProfile:
    return CellProfile(
        job_id=p.job_id, arm=p.arm, artifact_key=p.artifact_key, status=p.status, simulated=p.simulated,
        source=p.source, iterations=p.iterations, method_mean_ms=p.method_mean_ms, wall_mean_ms=p.wall_mean_ms,
        etrecord=p.etrecord, etdump_path=p.etdump_path, error_category=p.error_category, error=p.error,
        operators=[OperatorRow(o.position, o.name, o.kind, o.p50_ms, o.p90_ms, o.mean_ms, o.share, o.delegated,
                               o.backend, o.module_path, o.debug_handle) for o in p.operators])


def for_jobs(s: Session, job_ids: list[str], arm: str = "A") -> dict[str, CellProfile]:
    """The profiles of these jobs (one arm), by job id; jobs without one are absent."""
    if not job_ids:
        return {}
    rows = s.scalars(select(Profile).where(Profile.job_id.in_(job_ids), Profile.arm == arm))
    return {p.job_id: _cell(p) for p in rows}


def for_job(s: Session, job_id: str, arm: str = "A") -> CellProfile | None:
    return for_jobs(s, [job_id], arm).get(job_id)
