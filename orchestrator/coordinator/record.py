"""Agent reports: an attempt started, an attempt finished (result, model failure, infra failure).

Every change of an attempt's state reads the row under a write lock (:func:`lock_open_attempt`),
and a job gets exactly one result whatever redeliveries happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.harness.contract import ContractError, runtime_refusal, validate_result
from device_inventory.fleet import Fleet
from orchestrator.analysis.stats import Stats, summarize
from orchestrator.coordinator.dispatch import retry_or_fail
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.store import profiles
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Attempt, Job, Result, utcnow
from orchestrator.store.states import ATTEMPT_OPEN, JOB_TERMINAL


def lock_open_attempt(s: Session, attempt_id: str) -> Attempt | None:
    """The attempt, read under a write lock, if it is still open; else None.

    Every change of an attempt's state goes through here. The no-op UPDATE takes SQLite's
    write lock / PostgreSQL's row lock (which re-checks the state once a concurrent writer
    commits) before the row is read, so the read-modify-write that follows cannot lose a
    concurrent one — e.g. a late ``attempt_started`` overwriting ``succeeded`` with
    ``running`` when both messages are consumed at once after a broker restart."""
    lock = (update(Attempt).where(Attempt.id == attempt_id, Attempt.state.in_(ATTEMPT_OPEN))
            .values(state=Attempt.state).execution_options(synchronize_session=False))
    won = cast(CursorResult[Any], s.execute(lock)).rowcount
    if won != 1:
        return None
    return s.get(Attempt, attempt_id, populate_existing=True)


def attempt_started(payload: dict[str, Any]) -> bool:
    with db_session() as s:
        attempt = lock_open_attempt(s, payload["attempt_id"])
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


def _summary(samples: list[float]) -> Stats:
    """The stored median/p10/p90/mean of a result: the same definition (and outlier policy) as every
    report, CSV and API figure of that name (``orchestrator.analysis.stats``)."""
    st = summarize(samples)
    if st is None:
        raise ContractError("no latency samples")
    return st


@dataclass(frozen=True)
class RecordOutcome:
    accepted: bool
    reason: str = ""
    retried: bool = False


def record_attempt(payload: dict[str, Any], fleet: Fleet) -> tuple[RecordOutcome, Outbox]:
    """Record what an agent reports for one attempt. Exactly one result per job: a late
    report from a fenced-off attempt, or a duplicate, is rejected and changes nothing."""
    outbox = Outbox()
    try:
        with db_session() as s:
            attempt = lock_open_attempt(s, payload["attempt_id"]) or s.get(Attempt, payload["attempt_id"])
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
            doc: Any = payload.get("result")  # the harness's document, validated below
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
                st = _summary(doc["latencies_ms"])
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
                retried = retry_or_fail(s, job, fleet, outbox, attempt.error_category, attempt.error)
            finalize_if_done(s, job.run_id, outbox, fleet)
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
    st = _summary(base["latencies_ms"])
    return block | {"latencies_ms": base["latencies_ms"], "median_ms": st.median, "p10_ms": st.p10,
                    "p90_ms": st.p90, "load_time_ms": base["load_time_ms"],
                    "peak_memory_bytes": base["peak_memory_bytes"],
                    "energy_mj_per_inference": base.get("energy_mj_per_inference"),
                    "device_metrics": base.get("device_metrics"),  # schema-checked with the document
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
