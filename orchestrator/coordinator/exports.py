"""Which exporter lowers an artifact (``fleet.exporters`` says which are alive), what an export's
outcome does, and when a zoo model's export need not be asked for again (:func:`remembered_artifact`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator.coordinator.dispatch import dispatch_waiting
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.export.artifacts import ArtifactError, ArtifactStore
from orchestrator.export.registry import registry
from orchestrator.export.request import ExportRequest
from orchestrator.export.sources import Source
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


def remembered_artifact(s: Session, fleet: Fleet, request: str, req: ExportRequest, live: dict[str, set[str]],
                        store: ArtifactStore) -> str:
    """The artifact an exporter keyed zoo request ``request`` to, when asking again cannot change
    the answer; '' when unsure, and the request goes to an exporter as usual.

    Sure means: the exporter remembered the key with its code identity (``fleet.export_memo``),
    every live exporter of the request's platform advertises exactly that identity (same code,
    same packages: same key), and the artifact is whole in the store (its sha256, hashed once per
    process) with its row ready. Only a zoo model qualifies: an ``import:`` package's files can
    change on disk between two runs without any exporter restarting, and a program is keyed here.
    ``live``: ``fleet.exporters.live()``."""
    if Source.parse(req.source).kind != "zoo":
        return ""
    platform, _ = export_route(req.backend, set(live))
    memo = fleet.export_memo.recall(request) if platform else None
    if platform is None or memo is None:
        return ""
    key, identity = memo
    if live.get(platform, set()) != {identity}:
        return ""  # no exporter to vouch for it, or one running other code (a deploy under way)
    art = s.get(Artifact, key)
    if art is None or art.status != "ready":
        return ""
    try:
        store.get(key)
    except ArtifactError:  # gone or corrupted: the exporter removes it and exports again
        return ""
    return key


def jobs_for_request(s: Session, request: str) -> list[Job]:
    return list(s.scalars(select(Job).where(Job.request_key == request, Job.state.in_(("queued", "exporting")))))


def block_jobs(jobs: list[Job], reason: str) -> None:
    for job in jobs:
        job.state, job.reason, job.finished_at = "blocked", reason, utcnow()


def mark_artifact_ready(art: Artifact, meta: dict[str, Any]) -> None:
    art.status = "ready"
    art.file_sha256 = meta.get("file_sha256", "")
    art.size_bytes = int(meta.get("size_bytes", 0))
    art.export_time_s = float(meta.get("export_time_s", 0.0))
    art.info = {k: v for k, v in meta.items() if k not in ("recipe",)}


def export_done(request: str, outcome: str, meta: dict[str, Any], fleet: Fleet) -> Outbox:
    """The exporter's answer to export request ``request`` (a request key, ``recipe.request_key``).

    outcome: 'ok' (``meta["artifact_key"]`` names the stored program) | 'failed' (the model
    cannot be exported) | 'unavailable' (wrong exporter). The exporter, not the coordinator,
    keys a torch source (its fingerprint imports the model's code): the waiting jobs learn
    their artifact key here."""
    outbox = Outbox()
    with db_session() as s:
        jobs = jobs_for_request(s, request)
        if not jobs:
            return outbox
        if outcome == "ok":
            key = str(meta.get("artifact_key", ""))
            art = s.get(Artifact, key)
            if art is None:
                art = Artifact(key=key, model=jobs[0].model, backend=jobs[0].backend,
                               input_resolution=jobs[0].input_resolution, batch_size=jobs[0].batch_size)
                s.add(art)
            mark_artifact_ready(art, meta)
            for job in jobs:
                if job.artifact_key and job.artifact_key != key:  # a program file, keyed at submit
                    job.state, job.finished_at = "failed", utcnow()
                    job.reason = (f"exporter stored {key}, coordinator expected {job.artifact_key}: "
                                  "exporter and coordinator run different versions")
                job.artifact_key = key
            dispatch_waiting(s, key, fleet, outbox)
        else:
            reason = str(meta.get("error", ""))[:4000]
            for job in jobs:
                art = s.get(Artifact, job.artifact_key) if job.artifact_key else None
                if art is not None:
                    art.status, art.reason = ("blocked" if outcome == "unavailable" else "failed"), reason
                job.state = "blocked" if outcome == "unavailable" else "failed"
                job.reason = f"export failed: {reason}" if outcome == "failed" else reason
                job.finished_at = utcnow()
        for run_id in {j.run_id for j in jobs}:
            finalize_if_done(s, run_id, outbox, fleet)
        outbox.stage(s)
    return outbox
