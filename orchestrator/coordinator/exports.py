"""Which exporter lowers an artifact (``fleet.exporters`` says which are alive), and what an export's outcome does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.coordinator.dispatch import dispatch_waiting, jobs_for_artifact
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.export.registry import registry
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Job, utcnow


def export_route(backend_name: str, alive: set[str]) -> tuple[str | None, str]:
    """Which export queue lowers this backend, or why none can."""
    backend = registry().resolve(backend_name)
    if "linux" in backend.exporters:
        return "linux", ""  # the coordinator stack always ships a Linux exporter
    for platform in backend.exporters:
        if platform in alive:
            return platform, ""
    need = " or ".join({"macos": "macOS", "linux": "Linux"}.get(p, p) for p in backend.exporters)
    return None, f"needs a {need} exporter (none is running)"



def block_jobs(s: Session, key: str, reason: str) -> None:
    for job in jobs_for_artifact(s, key, ("queued", "exporting")):
        job.state, job.reason, job.finished_at = "blocked", reason, utcnow()


def mark_artifact_ready(art: Artifact, meta: dict[str, Any]) -> None:
    art.status = "ready"
    art.file_sha256 = meta.get("file_sha256", "")
    art.size_bytes = int(meta.get("size_bytes", 0))
    art.export_time_s = float(meta.get("export_time_s", 0.0))
    art.info = {k: v for k, v in meta.items() if k not in ("recipe",)}



def export_done(key: str, outcome: str, meta: dict[str, Any], fleet: Fleet) -> Outbox:
    """outcome: 'ok' | 'failed' (the model cannot be exported) | 'unavailable' (wrong exporter)."""
    outbox = Outbox()
    with db_session() as s:
        art = s.get(Artifact, key)
        if art is None:
            return outbox
        if outcome == "ok":
            mark_artifact_ready(art, meta)
            dispatch_waiting(s, key, fleet, outbox)
        else:
            art.status = "blocked" if outcome == "unavailable" else "failed"
            art.reason = str(meta.get("error", ""))[:4000]
            for job in jobs_for_artifact(s, key, ("queued", "exporting")):
                job.state = "blocked" if outcome == "unavailable" else "failed"
                job.reason = f"export failed: {art.reason}" if outcome == "failed" else art.reason
                job.finished_at = utcnow()
        for run_id in {j.run_id for j in s.scalars(select(Job).where(Job.artifact_key == key))}:
            finalize_if_done(s, run_id, outbox, fleet)
    return outbox


