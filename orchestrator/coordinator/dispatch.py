"""An attempt and its message: what a device worker needs to run one job, and the retry policy."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet
from orchestrator import celery_app as capp
from orchestrator.coordinator.outbox import Message, Outbox, new_id
from orchestrator.export.registry import registry
from orchestrator.export.request import GOLDEN_SEED
from orchestrator.spec import run_rules
from orchestrator.spec.matrix import profile_block
from orchestrator.store.models import Artifact, Attempt, Job, utcnow
from orchestrator.store.states import check_job_transition

MAX_ATTEMPTS = 3
# seconds before attempt n+1 is offered (exponential backoff, capped)
RETRY_BACKOFF_S = (1, 5, 20, 60)


def model_file(model: str, backend: str, key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{model}-{backend}")[:100]
    return f"{stem}-{key[:8]}.pte"



def jobs_for_artifact(s: Session, key: str, states: tuple[str, ...]) -> list[Job]:
    return list(s.scalars(select(Job).where(Job.artifact_key == key, Job.state.in_(states))))



def expected_work(job: Job) -> int:
    """A job's relative cost for ordering dispatch: pixels per inference times batch times inferences
    (the device's speed is the same for every job of a class queue, so it cancels out)."""
    return job.input_resolution ** 2 * max(job.batch_size, 1) * (job.iterations + job.warmup)


def dispatch_waiting(s: Session, key: str, fleet: Fleet, outbox: Outbox) -> None:
    """Dispatch every job waiting for artifact ``key``: the attempts' Redis claims in one round trip.
    Longest first: a device class's queue is served first in, first out, so sending the long jobs
    first leaves short ones for the end, where they fill the devices evenly (LPT scheduling: a
    matrix's makespan stays near its lower bound instead of waiting on one late long job)."""
    waiting = sorted(jobs_for_artifact(s, key, ("queued", "exporting")), key=expected_work, reverse=True)
    attempts = [dispatch(s, job, fleet, outbox, claim=False) for job in waiting]
    fleet.attempts.dispatch_many([a.id for a in attempts])


def dispatch(s: Session, job: Job, fleet: Fleet, outbox: Outbox, countdown: float = 0,
             claim: bool = True) -> Attempt:
    """A new attempt of ``job`` and its run_job message. ``claim=False``: the caller writes the
    attempt's Redis claim itself (in a batch), before the commit like this would."""
    art = s.get(Artifact, job.artifact_key)
    check_job_transition(job.state, "waiting-for-device")
    job.state = "waiting-for-device"
    job.queued_at = job.queued_at or utcnow()
    job.attempt_count += 1
    # a first attempt has no earlier ones to step aside from: no load of the job's attempts
    avoid = sorted({a.device_id for a in job.attempts if a.device_id and a.state in ("infra_failed", "fenced")}) \
        if job.attempt_count > 1 else []
    attempt = Attempt(id=new_id(), job_id=job.id, number=job.attempt_count)
    s.add(attempt)
    if claim:
        fleet.dispatch_attempt(attempt.id)
    backend = registry().resolve(job.backend)
    payload = {
        "run_id": job.run_id, "job_id": job.id, "attempt_id": attempt.id, "artifact_key": job.artifact_key,
        "model_file": model_file(job.model, job.backend, job.artifact_key),
        "model_sha256": art.file_sha256 if art else "", "backend": job.backend, "runtime": backend.runtime,
        "compute_units": job.compute_units,
        "input_shape": [job.batch_size, 3, job.input_resolution, job.input_resolution],
        "input_resolution": job.input_resolution, "batch_size": job.batch_size,
        "warmup": job.warmup, "iterations": job.iterations, "timeout_s": job.timeout_s,
        "device_class": job.device_class, "device_selector": job.device_selector,
        "avoid_devices": avoid,  # a retry prefers another device: the ones that failed this job step aside first
        "golden_seed": GOLDEN_SEED, "model_info": {k: (art.info or {}).get(k) for k in ("params", "macs")}
        if art else {},
    }
    rule = run_rules.of_run(job.run.run_rules)
    if rule.min_duration_s:
        payload["min_duration_s"] = rule.min_duration_s
    payload["cool_down"] = {"to": rule.cool_down_to, "max_s": rule.cool_down_max_s}
    profile = profile_block(job.run.spec_yaml)
    if profile:
        payload["profile"] = profile
    base = s.get(Artifact, job.baseline_artifact_key) if job.baseline_artifact_key else None
    if base is not None and job.ab_rounds > 0:
        payload["ab"] = {"rounds": job.ab_rounds, **(job.ab_plan or {}), "baseline": {
            "artifact_key": base.key, "model_sha256": base.file_sha256,
            "model_file": model_file(job.model + "-baseline", job.backend, base.key)}}
    outbox.messages.append(Message("benchfarm.run_job", [payload], capp.device_queue(job.device_class),
                                   job.priority, countdown))
    return attempt



def retry_or_fail(s: Session, job: Job, fleet: Fleet, outbox: Outbox, category: str, message: str) -> bool:
    if job.attempt_count < MAX_ATTEMPTS:
        delay = RETRY_BACKOFF_S[min(job.attempt_count - 1, len(RETRY_BACKOFF_S) - 1)]
        dispatch(s, job, fleet, outbox, countdown=delay)
        return True
    job.state, job.finished_at = "failed", utcnow()
    job.reason = f"infrastructure failure after {job.attempt_count} attempts ({category}): {message}"[:4000]
    return False


