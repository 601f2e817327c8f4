"""The coordinator's domain: submit a run, dispatch attempts, record outcomes, retry,
reap dead leases, cancel, finalise. Celery tasks in ``orchestrator.tasks`` are thin
wrappers around these functions.

Messages are never sent inside a database transaction: functions append them to an
:class:`Outbox` and the caller sends it after the commit, so a worker can never receive
an id whose row is not visible yet.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from device_inventory.fleet import Fleet, attempt_key
from orchestrator import celery_app as capp
from orchestrator.export.artifacts import ArtifactStore, BadArtifactName
from orchestrator.export.registry import registry
from orchestrator.planning import plan
from orchestrator.spec.matrix import MatrixSpec, profile_block
from orchestrator.states import ATTEMPT_OPEN, JOB_TERMINAL, check_job_transition, run_status
from orchestrator.store import profiles
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Attempt, Job, Result, Run, utcnow

MAX_ATTEMPTS = 3
QUARANTINE_AFTER = 3
# seconds before attempt n+1 is offered (exponential backoff, capped)
RETRY_BACKOFF_S = (1, 5, 20, 60)
GOLDEN_SEED = 1234
EXPORTER_KEY = "bf:exporters"
VERIFY_KEY = "bf:verify:"
VERIFY_KEY_TTL_S = 30 * 86400
VERIFY_DECIDE_S = 60
# attempts open this long whose Redis record is gone were lost by the broker (reap_lost)
LOST_GRACE_S = 120
LOST_CHECK_EVERY_S = 60
LOST_BATCH = 5000
_last_lost_check = 0.0


def new_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Message:
    task: str
    args: list[Any]
    queue: str
    priority: int = 5
    countdown: float = 0


@dataclass
class Outbox:
    messages: list[Message] = field(default_factory=list)
    # webhook events (name, payload), delivered after the commit like the messages
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, app: Any = None) -> None:
        from orchestrator.notify import notify

        app = app or capp.app
        for m in self.messages:
            app.send_task(m.task, args=m.args, queue=m.queue, priority=m.priority,
                          countdown=m.countdown or None)
        self.messages.clear()
        for event, payload in self.events:
            notify(event, payload)
        self.events.clear()


class RunNotFound(LookupError):
    pass


# -- exporters ------------------------------------------------------------------------
def exporters_alive(fleet: Fleet) -> set[str]:
    return {p for p, exp in fleet.r.zrangebyscore(EXPORTER_KEY, time.time(), "+inf", withscores=True)}


def exporter_heartbeat(fleet: Fleet, platform: str, ttl: float = 30) -> None:
    fleet.r.zadd(EXPORTER_KEY, {platform: time.time() + ttl})


def _export_route(backend_name: str, alive: set[str]) -> tuple[str | None, str]:
    """Which export queue lowers this backend, or why none can."""
    backend = registry().resolve(backend_name)
    if "linux" in backend.exporters:
        return "linux", ""  # the coordinator stack always ships a Linux exporter
    for platform in backend.exporters:
        if platform in alive:
            return platform, ""
    need = " or ".join({"macos": "macOS", "linux": "Linux"}.get(p, p) for p in backend.exporters)
    return None, f"needs a {need} exporter (none is running)"


# -- submit -----------------------------------------------------------------------------
def _model_file(model: str, backend: str, key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{model}-{backend}")[:100]
    return f"{stem}-{key[:8]}.pte"


def submit(spec: MatrixSpec, spec_text: str, fleet: Fleet, *, source: str = "", trigger: str = "manual",
           requested_by: str = "", meta: dict[str, Any] | None = None,
           store: ArtifactStore | None = None) -> tuple[str, Outbox]:
    """Create the run and its jobs; return the run id and the messages to send after commit."""
    from orchestrator.export.pipeline import artifact_key

    if trigger not in capp.PRIORITY:
        raise ValueError(f"unknown trigger {trigger!r} (known: {', '.join(capp.PRIORITY)})")
    store = store or ArtifactStore()
    the_plan = plan(spec)
    alive = exporters_alive(fleet)
    outbox = Outbox()
    priority = capp.PRIORITY[trigger]
    run_id = new_id()
    with db_session() as s:
        run = Run(id=run_id, name=spec.name, trigger=trigger, requested_by=requested_by, priority=priority,
                  spec_yaml=spec_text, spec_source=source, meta=meta or {},
                  summary={"not_applicable": the_plan.not_applicable})
        s.add(run)
        s.flush()
        requests: dict[str, Any] = {}
        for cell in the_plan.cells:
            req = cell.export_request(spec.parameters.compute_units)
            key = artifact_key(req)
            requests[key] = req
            job = Job(id=new_id(), run_id=run_id, model=cell.model, backend=cell.backend,
                      device_class=cell.device_class, device_selector=cell.device_selector,
                      input_resolution=cell.input_resolution, batch_size=cell.batch_size,
                      iterations=spec.parameters.iterations, warmup=spec.parameters.warmup,
                      repeat_index=cell.repeat_index, compute_units=spec.parameters.compute_units,
                      timeout_s=spec.parameters.timeout_s, artifact_key=key, priority=priority)
            if cell.blocked_reason:
                job.state, job.reason, job.finished_at = "blocked", cell.blocked_reason, utcnow()
            s.add(job)
        s.flush()
        if trigger == "pr":
            _pair_with_baselines(s, run_id, (meta or {}).get("baseline") or "main", spec.parameters, store)
        for key, req in requests.items():
            art = s.get(Artifact, key)
            if art is None:
                art = Artifact(key=key, model=req.model, backend=req.backend,
                               input_resolution=req.input_resolution, batch_size=req.batch_size)
                s.add(art)
            if store.exists(key) and art.status != "ready":
                _mark_artifact_ready(art, store.get(key, verify=False).meta)
            if art.status == "ready":
                _dispatch_waiting(s, key, fleet, outbox)
                continue
            platform, why = _export_route(req.backend, alive)
            if platform is None:
                _block_jobs(s, key, why)
                continue
            art.status = "pending"
            for job in _jobs_for_artifact(s, key, ("queued",)):
                check_job_transition(job.state, "exporting")
                job.state = "exporting"
            outbox.messages.append(Message("benchfarm.export", [key, _request_dict(req)],
                                           capp.export_queue(platform), priority))
        _finalize_if_done(s, run_id, outbox, fleet)
    return run_id, outbox


def _pair_with_baselines(s: Session, run_id: str, branch: str, params: Any, store: ArtifactStore) -> None:
    """Give each PR job its baseline's artifact, to run interleaved with it in one lease
    (device-to-device and thermal drift then cancel). A cell without a stored baseline
    artifact, or whose artifact is the baseline's own, runs plain and is compared with
    the baseline run's results instead."""
    from orchestrator.baselines import find_baseline_cells
    from orchestrator.reports.data import CellKey

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


def _request_dict(req: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(req)


def _jobs_for_artifact(s: Session, key: str, states: tuple[str, ...]) -> list[Job]:
    return list(s.scalars(select(Job).where(Job.artifact_key == key, Job.state.in_(states))))


def _block_jobs(s: Session, key: str, reason: str) -> None:
    for job in _jobs_for_artifact(s, key, ("queued", "exporting")):
        job.state, job.reason, job.finished_at = "blocked", reason, utcnow()


def _mark_artifact_ready(art: Artifact, meta: dict[str, Any]) -> None:
    art.status = "ready"
    art.file_sha256 = meta.get("file_sha256", "")
    art.size_bytes = int(meta.get("size_bytes", 0))
    art.export_time_s = float(meta.get("export_time_s", 0.0))
    art.info = {k: v for k, v in meta.items() if k not in ("recipe",)}


# -- export outcome -------------------------------------------------------------------
def export_done(key: str, outcome: str, meta: dict[str, Any], fleet: Fleet) -> Outbox:
    """outcome: 'ok' | 'failed' (the model cannot be exported) | 'unavailable' (wrong exporter)."""
    outbox = Outbox()
    with db_session() as s:
        art = s.get(Artifact, key)
        if art is None:
            return outbox
        if outcome == "ok":
            _mark_artifact_ready(art, meta)
            _dispatch_waiting(s, key, fleet, outbox)
        else:
            art.status = "blocked" if outcome == "unavailable" else "failed"
            art.reason = str(meta.get("error", ""))[:4000]
            for job in _jobs_for_artifact(s, key, ("queued", "exporting")):
                job.state = "blocked" if outcome == "unavailable" else "failed"
                job.reason = f"export failed: {art.reason}" if outcome == "failed" else art.reason
                job.finished_at = utcnow()
        for run_id in {j.run_id for j in s.scalars(select(Job).where(Job.artifact_key == key))}:
            _finalize_if_done(s, run_id, outbox, fleet)
    return outbox


# -- dispatch -----------------------------------------------------------------------------
def _dispatch_waiting(s: Session, key: str, fleet: Fleet, outbox: Outbox) -> None:
    for job in _jobs_for_artifact(s, key, ("queued", "exporting")):
        dispatch(s, job, fleet, outbox)


def dispatch(s: Session, job: Job, fleet: Fleet, outbox: Outbox, countdown: float = 0) -> Attempt:
    art = s.get(Artifact, job.artifact_key)
    check_job_transition(job.state, "waiting-for-device")
    job.state = "waiting-for-device"
    job.queued_at = job.queued_at or utcnow()
    job.attempt_count += 1
    attempt = Attempt(id=new_id(), job_id=job.id, number=job.attempt_count)
    s.add(attempt)
    fleet.dispatch_attempt(attempt.id)
    backend = registry().resolve(job.backend)
    payload = {
        "run_id": job.run_id, "job_id": job.id, "attempt_id": attempt.id, "artifact_key": job.artifact_key,
        "model_file": _model_file(job.model, job.backend, job.artifact_key),
        "model_sha256": art.file_sha256 if art else "", "backend": job.backend, "runtime": backend.runtime,
        "compute_units": job.compute_units,
        "input_shape": [job.batch_size, 3, job.input_resolution, job.input_resolution],
        "input_resolution": job.input_resolution, "batch_size": job.batch_size,
        "warmup": job.warmup, "iterations": job.iterations, "timeout_s": job.timeout_s,
        "device_class": job.device_class, "device_selector": job.device_selector,
        # a retry prefers another device: the ones that failed this job step aside first
        "avoid_devices": sorted({a.device_id for a in job.attempts
                                 if a.device_id and a.state in ("infra_failed", "fenced")}),
        "golden_seed": GOLDEN_SEED, "model_info": {k: (art.info or {}).get(k) for k in ("params", "macs")}
        if art else {},
    }
    profile = profile_block(job.run.spec_yaml)
    if profile:
        payload["profile"] = profile
    base = s.get(Artifact, job.baseline_artifact_key) if job.baseline_artifact_key else None
    if base is not None and job.ab_rounds > 0:
        payload["ab"] = {"rounds": job.ab_rounds, **(job.ab_plan or {}), "baseline": {
            "artifact_key": base.key, "model_sha256": base.file_sha256,
            "model_file": _model_file(job.model + "-baseline", job.backend, base.key)}}
    outbox.messages.append(Message("benchfarm.run_job", [payload], capp.device_queue(job.device_class),
                                   job.priority, countdown))
    return attempt


# -- agent reports --------------------------------------------------------------------------
def _lock_open_attempt(s: Session, attempt_id: str) -> Attempt | None:
    """The attempt, read under a write lock, if it is still open; else None.

    Every change of an attempt's state goes through here. The no-op UPDATE takes SQLite's
    write lock / PostgreSQL's row lock (which re-checks the state once a concurrent writer
    commits) before the row is read, so the read-modify-write that follows cannot lose a
    concurrent one — e.g. a late ``attempt_started`` overwriting ``succeeded`` with
    ``running`` when both messages are consumed at once after a broker restart."""
    won = s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state.in_(ATTEMPT_OPEN))
                    .values(state=Attempt.state).execution_options(synchronize_session=False)).rowcount
    if won != 1:
        return None
    return s.get(Attempt, attempt_id, populate_existing=True)


def attempt_started(payload: dict[str, Any]) -> bool:
    with db_session() as s:
        attempt = _lock_open_attempt(s, payload["attempt_id"])
        if attempt is None:
            return False
        attempt.state = "running"
        attempt.device_id = payload.get("device_id", "")
        attempt.host = payload.get("host", "")
        attempt.lease_token = int(payload.get("lease_token", 0))
        attempt.started_at = utcnow()
        job = attempt.job
        if job.state == "waiting-for-device":
            job.state = "running"
            job.started_at = job.started_at or utcnow()
        return True


@dataclass(frozen=True)
class RecordOutcome:
    accepted: bool
    reason: str = ""
    retried: bool = False


def record_attempt(payload: dict[str, Any], fleet: Fleet) -> tuple[RecordOutcome, Outbox]:
    """Record what an agent reports for one attempt. Exactly one result per job: a late
    report from a fenced-off attempt, or a duplicate, is rejected and changes nothing."""
    from agents.harness.contract import ContractError, runtime_refusal, validate_result
    from orchestrator.stats import latency_stats

    outbox = Outbox()
    try:
        with db_session() as s:
            attempt = _lock_open_attempt(s, payload["attempt_id"]) or s.get(Attempt, payload["attempt_id"])
            if attempt is None:
                return RecordOutcome(False, "unknown attempt"), outbox
            job = attempt.job
            if attempt.state not in ATTEMPT_OPEN or job.state in JOB_TERMINAL:
                return RecordOutcome(False, f"attempt is {attempt.state}, job is {job.state}: fenced off"), outbox
            attempt.timeline = payload.get("timeline", [])
            attempt.device_id = payload.get("device_id", attempt.device_id)
            attempt.lease_token = int(payload.get("lease_token", attempt.lease_token))
            attempt.finished_at = utcnow()
            outcome = payload["outcome"]
            doc = payload.get("result")
            if outcome == "ok":
                try:
                    validate_result(doc)
                    if (doc["job_id"], doc["attempt_id"]) != (job.id, attempt.id):
                        raise ContractError("result document names another job/attempt")
                    ab_block = _ab_block(payload.get("ab"), job, attempt)
                except ContractError as exc:
                    outcome, payload = "infra", dict(payload, category="bad_result", message=str(exc))
            if outcome in ("ok", "model") and isinstance(doc, dict):
                if refusal := runtime_refusal(doc, _exporter_executorch(s, job)):
                    outcome, payload = "infra", dict(payload, category="runtime_mismatch", message=refusal)
            if outcome == "ok":
                st = latency_stats(doc["latencies_ms"])
                profiles.save(s, job, doc, payload.get("ab"))  # operator tables; compacts doc
                s.add(Result(job_id=job.id, attempt_id=attempt.id, simulated=bool(doc["simulated"]),
                             device_id=attempt.device_id, device_model=doc["device"]["model"],
                             os_version=doc["device"]["os_version"], load_time_ms=doc["load_time_ms"],
                             median_ms=st.median, p10_ms=st.p10, p90_ms=st.p90, mean_ms=st.mean,
                             peak_memory_bytes=doc["peak_memory_bytes"],
                             energy_mj=doc.get("energy_mj_per_inference"), document=doc, ab=ab_block))
                attempt.state = "succeeded"
                job.state, job.finished_at, job.reason = "succeeded", utcnow(), ""
                s.flush()  # the unique constraint speaks here, inside the transaction
                retried = False
            elif outcome == "model":
                attempt.state = "model_failed"
                attempt.error_category = payload.get("category", "")
                attempt.error = payload.get("message", "")[:4000]
                job.state, job.finished_at = "failed", utcnow()
                job.reason = f"model failure ({attempt.error_category}): {attempt.error}"[:4000]
                retried = False
            else:
                attempt.state = "infra_failed"
                attempt.error_category = payload.get("category", "other")
                attempt.error = payload.get("message", "")[:4000]
                retried = _retry_or_fail(s, job, fleet, outbox, attempt.error_category, attempt.error)
            _finalize_if_done(s, job.run_id, outbox, fleet)
            return RecordOutcome(True, retried=retried), outbox
    except IntegrityError:
        return RecordOutcome(False, "duplicate result for this job"), Outbox()


def _exporter_executorch(s: Session, job: Job) -> str | None:
    """The executorch release that exported the job's program (artifact meta), if recorded."""
    art = s.get(Artifact, job.artifact_key)
    return ((art.info or {}).get("exporter") or {}).get("versions", {}).get("executorch") if art else None


def _ab_block(ab: dict[str, Any] | None, job: Job, attempt: Attempt) -> dict[str, Any] | None:
    """The baseline arm of an interleaved A/B attempt, checked like the result itself
    (raises ``ContractError``): what the verdict compares the PR's samples with."""
    from agents.harness.contract import ContractError, validate_result
    from orchestrator.stats import latency_stats

    if not ab:
        return None
    if not isinstance(ab, dict) or ab.get("baseline_artifact_key") != job.baseline_artifact_key:
        raise ContractError("A/B block does not name this job's baseline artifact")
    order = str(ab.get("order", ""))[:64]
    base = ab.get("baseline_result")
    block: dict[str, Any] = {"order": order, "rounds": list(ab.get("rounds") or [])[:64],
                             "baseline_artifact_key": job.baseline_artifact_key,
                             "baseline_error": str(ab.get("baseline_error") or "")[:2000],
                             "adaptive": _adaptive_summary(ab.get("adaptive"))}
    if base is None:
        return block
    validate_result(base)
    if (base["job_id"], base["attempt_id"]) != (job.id, attempt.id) or base["status"] != "ok":
        raise ContractError("A/B baseline document names another job/attempt or is not ok")
    st = latency_stats(base["latencies_ms"])
    return block | {"latencies_ms": base["latencies_ms"], "median_ms": st.median, "p10_ms": st.p10,
                    "p90_ms": st.p90, "load_time_ms": base["load_time_ms"],
                    "peak_memory_bytes": base["peak_memory_bytes"],
                    "energy_mj_per_inference": base.get("energy_mj_per_inference"),
                    "simulated": bool(base["simulated"])}


def _adaptive_summary(raw: Any) -> dict[str, Any]:
    """The agent's account of its adaptive rounds (``agents.ab.RoundPlan.summary``), kept
    to known keys and bounded sizes: it is input from an agent, stored as is."""
    raw = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {}
    for key in ("rounds_done", "device_s"):
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9:
            out[key] = value
    for key in ("stop_reason", "agent_outcome", "agent_verdict"):
        if isinstance(raw.get(key), str):
            out[key] = raw[key][:64]
    return out


def _retry_or_fail(s: Session, job: Job, fleet: Fleet, outbox: Outbox, category: str, message: str) -> bool:
    if job.attempt_count < MAX_ATTEMPTS:
        delay = RETRY_BACKOFF_S[min(job.attempt_count - 1, len(RETRY_BACKOFF_S) - 1)]
        dispatch(s, job, fleet, outbox, countdown=delay)
        return True
    job.state, job.finished_at = "failed", utcnow()
    job.reason = f"infrastructure failure after {job.attempt_count} attempts ({category}): {message}"[:4000]
    return False


# -- lease reaping ----------------------------------------------------------------------------
def reap(fleet: Fleet) -> tuple[list[str], Outbox]:
    """Requeue the jobs of every attempt whose device lease expired (agent dead, device lost)."""
    outbox = Outbox()
    fenced = []
    for lease in fleet.reap_expired():
        with db_session() as s:
            attempt = _lock_open_attempt(s, lease.attempt_id)
            if attempt is None:
                continue
            attempt.state = "fenced"
            attempt.error_category = "device_lost"
            attempt.error = f"lease on {lease.device_id} expired (token {lease.token}): no heartbeat"
            attempt.finished_at = utcnow()
            job = attempt.job
            if job.state not in JOB_TERMINAL:
                _retry_or_fail(s, job, fleet, outbox, "device_lost", attempt.error)
            _finalize_if_done(s, job.run_id, outbox, fleet)
            fenced.append(attempt.id)
    global _last_lost_check
    if time.monotonic() - _last_lost_check >= LOST_CHECK_EVERY_S:
        _last_lost_check = time.monotonic()
        fenced += reap_lost(fleet, outbox)
    finalize_stragglers(fleet, outbox)
    return fenced, outbox


def reap_lost(fleet: Fleet, outbox: Outbox, grace_s: float = LOST_GRACE_S) -> list[str]:
    """Retry attempts whose Redis record is gone: the broker lost its data (a restart
    without persistence), and with it the queued message and any lease. An open attempt's
    record is written before its row commits, so a missing one is never a race; without
    this pass such a job would wait for a message that no longer exists, for ever. Should
    the agent of a "running" one still be alive, its late report is rejected (fenced)."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db_session() as s:
        rows = s.execute(select(Attempt.id).where(Attempt.state.in_(ATTEMPT_OPEN), Attempt.dispatched_at < cutoff)
                         .order_by(Attempt.dispatched_at).limit(LOST_BATCH)).scalars().all()
    if not rows:
        return []
    pipe = fleet.r.pipeline(transaction=False)
    for attempt_id in rows:
        pipe.exists(attempt_key(attempt_id))
    lost = [a for a, present in zip(rows, pipe.execute(), strict=True) if not present]
    done = []
    for attempt_id in lost:
        with db_session() as s:
            attempt = _lock_open_attempt(s, attempt_id)
            if attempt is None or fleet.attempt_state(attempt_id):
                continue
            attempt.state, attempt.error_category, attempt.finished_at = "fenced", "broker_lost", utcnow()
            attempt.error = "the broker lost this attempt's message and claim (Redis data loss): retried"
            job = attempt.job
            if job.state not in JOB_TERMINAL:
                _retry_or_fail(s, job, fleet, outbox, "broker_lost", attempt.error)
            _finalize_if_done(s, job.run_id, outbox, fleet)
            done.append(attempt_id)
    return done


def finalize_stragglers(fleet: Fleet, outbox: Outbox) -> list[str]:
    """Finalise runs whose jobs are all terminal but that nobody finalised: under READ
    COMMITTED two coordinators recording a run's last two jobs at once each still see the
    other's job open, and neither finalises. The reaper's pass closes that gap."""
    open_job = select(Job.id).where(Job.run_id == Run.id, Job.state.not_in(JOB_TERMINAL)).exists()
    with db_session() as s:
        stuck = list(s.scalars(select(Run.id).where(Run.finalized.is_(False), ~open_job).limit(100)))
    done = []
    for run_id in stuck:
        with db_session() as s:
            if _finalize_if_done(s, run_id, outbox, fleet):
                done.append(run_id)
    return done


# -- cancel and finalise ---------------------------------------------------------------------
def cancel(run_id: str, fleet: Fleet) -> int:
    outbox = Outbox()
    with db_session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        n = 0
        for job in run.jobs:
            if job.state in JOB_TERMINAL:
                continue
            opened = [a for a in job.attempts if a.state in ATTEMPT_OPEN]
            locked = [a for a in opened if _lock_open_attempt(s, a.id) is not None]
            s.refresh(job)  # under the locks: a report recorded meanwhile has made it terminal
            if job.state in JOB_TERMINAL:
                continue
            for a in locked:
                a.state = "cancelled"
                fleet.cancel_attempt(a.id)
            job.state, job.reason, job.finished_at = "cancelled", "run cancelled", utcnow()
            n += 1
        run.meta = dict(run.meta or {}, cancelled=True)
        _finalize_if_done(s, run_id, outbox)
    outbox.send()
    return n


def _finalize_if_done(s: Session, run_id: str, outbox: Outbox | None = None, fleet: Fleet | None = None) -> bool:
    """Finalise the run once, when its last job turns terminal (no Celery chords needed).
    A PR run with a suspected regression first gets its verify jobs (when a fleet is at
    hand to dispatch them) and is finalised when those are done."""
    s.flush()
    open_jobs = s.scalar(select(func.count()).select_from(Job).where(
        Job.run_id == run_id, Job.state.not_in(JOB_TERMINAL)))
    if open_jobs:
        return False
    run = s.get(Run, run_id)
    if fleet is not None and outbox is not None and _request_verify(s, run, fleet, outbox):
        return False
    states = list(s.scalars(select(Job.state).where(Job.run_id == run_id)))
    status = run_status(states, cancelled=bool((run.meta or {}).get("cancelled")))
    counts: dict[str, int] = {}
    for st in states:
        counts[st] = counts.get(st, 0) + 1
    # compare-and-set: only one finaliser wins, whatever races
    won = s.execute(update(Run).where(Run.id == run_id, Run.finalized.is_(False)).values(
        finalized=True, status=status, finished_at=utcnow(),
        summary=dict(run.summary or {}, jobs=counts, finalized_at=datetime.utcnow().isoformat()),
    ).execution_options(synchronize_session=False)).rowcount
    if won == 1 and outbox is not None:
        outbox.events.append(("run_finished", {"run_id": run_id, "name": run.name, "trigger": run.trigger,
                                               "status": status, "jobs": counts}))
        verify = (run.meta or {}).get("verify") or {}
        if run.trigger == "pr" and verify.get("cells"):  # only a suspected regression can be a confirmed one
            from orchestrator.verify import compare_pr_run

            meta = run.meta or {}
            slower = [c.key.label() for c in compare_pr_run(s, run_id, meta.get("baseline") or "main").comparisons
                      if c.verdict.verdict == "slower"]
            if slower:
                outbox.events.append(("regression_found", {"run_id": run_id, "repo": meta.get("repo"),
                                                           "pr": meta.get("pr"), "cells": slower}))
    return won == 1


def _request_verify(s: Session, run: Run, fleet: Fleet, outbox: Outbox) -> bool:
    """Once per PR run: re-run each cell whose first measurement looks slower than its
    baseline (one more job, a fresh lease). True when verify jobs were dispatched.

    The decision is taken exactly once: a Redis ``SET NX`` per run, so two coordinators
    finishing the last two jobs at once add one set of jobs. The loser defers (True) while
    the winner's transaction may still be in flight; a decision that never committed is
    given up after ``VERIFY_DECIDE_S`` and the run is finalised without a verify round
    (the reaper's straggler pass gets there), rather than never."""
    from orchestrator.reports.data import CellKey
    from orchestrator.verify import suspected_regressions

    meta = dict(run.meta or {})
    if run.trigger != "pr" or run.finalized or "verify" in meta or meta.get("cancelled"):
        return False
    key = f"{VERIFY_KEY}{run.id}"
    if not fleet.r.set(key, str(time.time()), nx=True, ex=VERIFY_KEY_TTL_S):
        return time.time() - float(fleet.r.get(key) or 0) < VERIFY_DECIDE_S
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
                    repeat_index=next_repeat, artifact_key=job.artifact_key,
                    baseline_artifact_key=job.baseline_artifact_key, ab_rounds=job.ab_rounds,
                    ab_plan=job.ab_plan, purpose="verify", priority=job.priority)
        s.add(again)
        s.flush()
        dispatch(s, again, fleet, outbox)
    return bool(seen)


def run_state(run_id: str) -> dict[str, Any]:
    with db_session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        jobs = [{"id": j.id, "model": j.model, "backend": j.backend, "device_class": j.device_class,
                 "input_resolution": j.input_resolution, "batch_size": j.batch_size, "repeat": j.repeat_index,
                 "state": j.state, "reason": j.reason, "attempts": j.attempt_count, "purpose": j.purpose,
                 "ab": bool(j.baseline_artifact_key)} for j in run.jobs]
        results = s.scalar(select(func.count()).select_from(Result).join(Job).where(Job.run_id == run_id))
        return {"id": run.id, "name": run.name, "trigger": run.trigger, "status": run.status,
                "finalized": run.finalized, "created_at": run.created_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "summary": run.summary, "results": results, "jobs": jobs}
