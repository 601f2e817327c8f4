"""Agent reports: an attempt started, an attempt finished (result, model failure, infra failure).

Every change of an attempt's state reads the row under a write lock (:func:`lock_open_attempt`),
and a job gets exactly one result whatever redeliveries happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from agents.harness.contract import ContractError, runtime_refusal, validate_result
from device_inventory.fleet import Fleet
from orchestrator.analysis import stability
from orchestrator.analysis.stats import Stats, summarize
from orchestrator.coordinator.dispatch import retry_or_fail
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.store import profiles
from orchestrator.store.db import session as db_session
from orchestrator.store.models import Artifact, Attempt, Job, Result, Run, utcnow
from orchestrator.store.states import ATTEMPT_OPEN, JOB_TERMINAL


def lock_open_attempt(s: Session, attempt_id: str) -> Attempt | None:
    """The attempt, read under a write lock, if it is still open; else None.

    Every change of an attempt's state goes through here. The no-op UPDATE takes SQLite's
    write lock / PostgreSQL's row lock (which re-checks the state once a concurrent writer
    commits) before the row is read, so the read-modify-write that follows cannot lose a
    concurrent one — e.g. a late ``attempt_started`` overwriting ``succeeded`` with
    ``running`` when both messages are consumed at once after a broker restart."""
    if not lock_attempt(s, attempt_id):
        return None
    # the job comes in the same query: every caller goes on to it
    return s.get(Attempt, attempt_id, populate_existing=True, options=[joinedload(Attempt.job)])


def lock_attempt(s: Session, attempt_id: str) -> bool:
    """Take the attempt's write lock (see :func:`lock_open_attempt`); True if it is still open."""
    lock = (update(Attempt).where(Attempt.id == attempt_id, Attempt.state.in_(ATTEMPT_OPEN))
            .values(state=Attempt.state).execution_options(synchronize_session=False))
    return cast(CursorResult[Any], s.execute(lock)).rowcount == 1


def attempt_started(payload: dict[str, Any]) -> bool:
    """An agent took a lease for the attempt. Two conditional UPDATEs and no ORM loads: this
    runs once per job, and the state filter is the write lock (a late ``attempt_started``
    cannot reopen an attempt that already finished)."""
    attempt_id, now = payload["attempt_id"], utcnow()
    with db_session() as s:
        won = cast(CursorResult[Any], s.execute(
            update(Attempt).where(Attempt.id == attempt_id, Attempt.state.in_(ATTEMPT_OPEN)).values(
                state="running", device_id=payload.get("device_id", ""), host=payload.get("host", ""),
                lease_token=int(payload.get("lease_token", 0)), started_at=now)
            .execution_options(synchronize_session=False))).rowcount
        if won != 1:
            return False
        s.execute(update(Job).where(Job.id == select(Attempt.job_id).where(Attempt.id == attempt_id)
                                    .scalar_subquery(), Job.state == "waiting-for-device")
                  .values(state="running", started_at=func.coalesce(Job.started_at, now))
                  .execution_options(synchronize_session=False))
        return True


@dataclass(frozen=True)
class AttemptStart:
    """An attempt's lease, as the fleet's ``leased`` event tells it."""
    attempt_id: str
    device_id: str
    host: str
    token: int
    at: datetime


def attempts_started(s: Session, starts: list[AttemptStart]) -> None:
    """Mark a batch of attempts running (and their jobs, if waiting): what ``attempt_started``
    does for one, as two executemany UPDATEs. The same state filters make it a no-op for an
    attempt that finished, was fenced or was cancelled meanwhile (a copy that comes late)."""
    if not starts:
        return
    a, j = cast(Table, Attempt.__table__), cast(Table, Job.__table__)
    params = [{"b_id": st.attempt_id, "b_device": st.device_id, "b_host": st.host, "b_token": st.token,
               "b_at": st.at} for st in starts]
    # executemany takes no expanding IN: the open states spelled out
    is_open = or_(*(a.c.state == state for state in sorted(ATTEMPT_OPEN)))
    conn = s.connection()
    conn.execute(update(a).where(a.c.id == bindparam("b_id"), is_open).values(
        state="running", device_id=bindparam("b_device"), host=bindparam("b_host"),
        lease_token=func.coalesce(func.nullif(bindparam("b_token"), 0), a.c.lease_token),
        started_at=func.coalesce(a.c.started_at, bindparam("b_at"))), params)
    open_attempt = select(a.c.job_id).where(a.c.id == bindparam("b_id"), is_open)
    conn.execute(update(j).where(j.c.id == open_attempt.scalar_subquery(), j.c.state == "waiting-for-device")
                 .values(state="running", started_at=func.coalesce(j.c.started_at, bindparam("b_at"))), params)


def _summary(samples: list[float]) -> Stats:
    """The stored median/p10/p90/mean of a result: the same definition (and outlier policy) as every
    report, CSV and API figure of that name (``orchestrator.analysis.stats``)."""
    st = summarize(samples)
    if st is None:
        raise ContractError("no latency samples")
    return st


@dataclass(frozen=True)
class Recorded:
    """What the metrics want of a recorded job, read while it was at hand (no second load)."""
    state: str
    device_class: str
    trigger: str
    queued_s: float | None  # queued -> started
    run_s: float | None  # started -> finished


@dataclass(frozen=True)
class RecordOutcome:
    accepted: bool
    reason: str = ""
    retried: bool = False
    job: Recorded | None = None


def _recorded(job: Job, trigger: str) -> Recorded:
    def span(a: Any, b: Any) -> float | None:
        return (b - a).total_seconds() if a and b else None

    return Recorded(job.state, job.device_class, trigger, span(job.queued_at, job.started_at),
                    span(job.started_at, job.finished_at))


def record_attempt(payload: dict[str, Any], fleet: Fleet) -> tuple[RecordOutcome, Outbox]:
    """Record what an agent reports for one attempt. Exactly one result per job: a late
    report from a fenced-off attempt, or a duplicate, is rejected and changes nothing."""
    outbox = Outbox()
    try:
        with db_session() as s:
            lock_attempt(s, payload["attempt_id"])  # the write lock; then the rows, in one query
            row = s.execute(select(Attempt, Job, Artifact.info, Run.trigger).join(Job, Attempt.job_id == Job.id)
                            .join(Run, Job.run_id == Run.id).outerjoin(Artifact, Artifact.key == Job.artifact_key)
                            .where(Attempt.id == payload["attempt_id"])
                            .execution_options(populate_existing=True)).one_or_none()
            if row is None:
                return RecordOutcome(False, "unknown attempt"), outbox
            attempt, job, art_info, trigger = row
            if attempt.state not in ATTEMPT_OPEN or job.state in JOB_TERMINAL:
                return RecordOutcome(False, f"attempt is {attempt.state}, job is {job.state}: fenced off"), outbox
            attempt.timeline = payload.get("timeline", [])
            attempt.device_id = payload.get("device_id", attempt.device_id)
            attempt.host = str(payload.get("host") or attempt.host)[:200]
            attempt.lease_token = int(payload.get("lease_token", attempt.lease_token))
            attempt.finished_at = utcnow()
            if attempt.started_at is None:  # the report came before its lease event was copied
                attempt.started_at = _reported_start(payload.get("started_at"), attempt.finished_at)
            job.started_at = job.started_at or attempt.started_at
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
                if refusal := runtime_refusal(doc, _exporter_executorch(art_info)):
                    outcome, payload = "infra", dict(payload, category="runtime_mismatch", message=refusal)
            if outcome == "ok":
                st = _summary(doc["latencies_ms"])
                stab = stability.of_samples(doc["latencies_ms"])
                profiles.save(s, job, doc, payload.get("ab"))  # operator tables; compacts doc
                s.add(Result(job_id=job.id, attempt_id=attempt.id, simulated=bool(doc["simulated"]),
                             device_id=attempt.device_id, device_model=doc["device"]["model"],
                             os_version=doc["device"]["os_version"], load_time_ms=doc["load_time_ms"],
                             median_ms=st.median, p10_ms=st.p10, p90_ms=st.p90, mean_ms=st.mean,
                             peak_memory_bytes=doc["peak_memory_bytes"],
                             energy_mj=doc.get("energy_mj_per_inference"), document=doc, ab=ab_block,
                             cv=stab.cv if stab else None, p99_p50=stab.p99_p50 if stab else None,
                             max_min=stab.max_min if stab else None))
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
            outbox.stage(s)  # a retry's message survives this process
            return RecordOutcome(True, retried=retried, job=_recorded(job, trigger)), outbox
    except IntegrityError:
        return RecordOutcome(False, "duplicate result for this job"), Outbox()


def _reported_start(value: Any, finished_at: datetime) -> datetime:
    """The agent's lease time (epoch seconds) from a report, within reason; else the finish."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = datetime.fromtimestamp(value, UTC).replace(tzinfo=None) if 0 < value < 1e11 else finished_at
        return min(at, finished_at)
    return finished_at


def _exporter_executorch(art_info: dict[str, Any] | None) -> str | None:
    """The executorch release that exported the job's program (artifact meta), if recorded."""
    return ((art_info or {}).get("exporter") or {}).get("versions", {}).get("executorch")


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
