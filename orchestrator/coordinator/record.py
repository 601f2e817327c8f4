"""Agent reports: an attempt started, an attempt finished (result, model failure, infra failure).

Every change of an attempt's state reads the row under a write lock (:func:`lock_open_attempt`),
and a job gets exactly one result whatever redeliveries happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import DateTime, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from device_inventory.fleet import Fleet
from orchestrator.coordinator.dispatch import retry_or_fail
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.coordinator.report_checks import Prechecked, checked, precheck
from orchestrator.store import profiles
from orchestrator.store.db import session as db_session
from orchestrator.store.db import write_gate
from orchestrator.store.models import Artifact, Attempt, Job, Result, Run, utcnow
from orchestrator.store.states import ATTEMPT_OPEN, JOB_TERMINAL

# The record path's statements, built once: building and coercing a statement per message cost
# more CPU than executing it (SQLAlchemy caches the compiled form by the statement's cache key,
# which a prebuilt statement also computes only once).
_a, _j = cast(Table, Attempt.__table__), cast(Table, Job.__table__)
_run, _art = cast(Table, Run.__table__), cast(Table, Artifact.__table__)
# the open states spelled out (an IN list is expanded anew at every execution)
_ATTEMPT_IS_OPEN = or_(*(_a.c.state == state for state in sorted(ATTEMPT_OPEN)))
_LOCK = update(_a).where(_a.c.id == bindparam("b_id"), _ATTEMPT_IS_OPEN).values(state=_a.c.state)
_READ = (select(_a.c.state.label("attempt_state"), _a.c.device_id, _a.c.host, _a.c.lease_token,
                _a.c.started_at.label("attempt_started_at"), _j.c.id.label("job_id"), _j.c.run_id,
                _j.c.state.label("job_state"), _j.c.device_class, _j.c.artifact_key, _j.c.baseline_artifact_key,
                _j.c.queued_at, _j.c.started_at.label("job_started_at"), _art.c.info, _run.c.trigger)
         .select_from(_a.join(_j, _a.c.job_id == _j.c.id).join(_run, _j.c.run_id == _run.c.id)
                      .outerjoin(_art, _art.c.key == _j.c.artifact_key))
         .where(_a.c.id == bindparam("b_id")))
# SET from the parameters' keys (state and the reported fields)
_FINISH_ATTEMPT = update(_a).where(_a.c.id == bindparam("b_id"))
_JOB_SUCCEEDED = update(_j).where(_j.c.id == bindparam("b_id")).values(
    state="succeeded", reason="", finished_at=bindparam("b_finished", type_=DateTime()),
    started_at=func.coalesce(_j.c.started_at, bindparam("b_started", type_=DateTime())))
_INSERT_RESULT = insert(cast(Table, Result.__table__))
# attempts_started's executemany UPDATEs (executemany takes no expanding IN either)
_STARTED_ATTEMPT = update(_a).where(_a.c.id == bindparam("b_id"), _ATTEMPT_IS_OPEN).values(
    state="running", device_id=bindparam("b_device"), host=bindparam("b_host"),
    lease_token=func.coalesce(func.nullif(bindparam("b_token"), 0), _a.c.lease_token),
    started_at=func.coalesce(_a.c.started_at, bindparam("b_at", type_=DateTime())))
_STARTED_JOB = update(_j).where(
    _j.c.id == select(_a.c.job_id).where(_a.c.id == bindparam("b_id"), _ATTEMPT_IS_OPEN).scalar_subquery(),
    _j.c.state == "waiting-for-device").values(
    state="running", started_at=func.coalesce(_j.c.started_at, bindparam("b_at", type_=DateTime())))


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
    return cast(CursorResult[Any], s.connection().execute(_LOCK, {"b_id": attempt_id})).rowcount == 1


def attempt_started(payload: dict[str, Any]) -> bool:
    """An agent took a lease for the attempt: what :func:`attempts_started` does for a batch, for one
    (the same prebuilt UPDATEs, no ORM loads: this runs once per job). The state filter is the write
    lock: a late ``attempt_started`` cannot reopen an attempt that already finished. ``started_at``:
    when the agent took the lease (the message may come a little later)."""
    params = {"b_id": payload["attempt_id"], "b_device": str(payload.get("device_id", "")),
              "b_host": str(payload.get("host", "")), "b_token": int(payload.get("lease_token", 0)),
              "b_at": _reported_start(payload.get("started_at"), utcnow())}
    with db_session() as s:
        conn = s.connection()
        if cast(CursorResult[Any], conn.execute(_STARTED_ATTEMPT, params)).rowcount != 1:
            return False
        conn.execute(_STARTED_JOB, params)
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
    params = [{"b_id": st.attempt_id, "b_device": st.device_id, "b_host": st.host, "b_token": st.token,
               "b_at": st.at} for st in starts]
    conn = s.connection()
    conn.execute(_STARTED_ATTEMPT, params)
    conn.execute(_STARTED_JOB, params)


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


def _span(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def record_attempt(payload: dict[str, Any], fleet: Fleet) -> tuple[RecordOutcome, Outbox]:
    """Record what an agent reports for one attempt. Exactly one result per job: a late
    report from a fenced-off attempt, or a duplicate, is rejected and changes nothing.

    The common case (a valid result) is Core SQL on prebuilt statements: the lock, one read of
    the columns it needs, two UPDATEs and the INSERT, no ORM objects (their loading, change
    tracking and flush were most of this function's CPU). A failure report takes the ORM path:
    a retry dispatches a new attempt, which wants the job's objects anyway. What needs no row
    (the documents' schema checks, the summaries) is done before the write lock: with two
    coordinators on SQLite, everything under it runs one at a time."""
    outbox = Outbox()
    pre = precheck(payload)
    try:
        with db_session() as s:
            s.connection()  # the pool's checkout outside the gate (its return comes with the commit)
            with write_gate():  # the lock, the rows, the writes and the commit: one writer at a time
                outcome = _record_locked(s, payload, pre, fleet, outbox)
                s.commit()
            return outcome, outbox
    except IntegrityError:
        return RecordOutcome(False, "duplicate result for this job"), Outbox()


def _record_locked(s: Session, payload: dict[str, Any], pre: Prechecked, fleet: Fleet,
                   outbox: Outbox) -> RecordOutcome:
    attempt_id = payload["attempt_id"]
    lock_attempt(s, attempt_id)  # the write lock; then the rows, in one query
    row = s.connection().execute(_READ, {"b_id": attempt_id}).one_or_none()
    if row is None:
        return RecordOutcome(False, "unknown attempt")
    if row.attempt_state not in ATTEMPT_OPEN or row.job_state in JOB_TERMINAL:
        return RecordOutcome(False, f"attempt is {row.attempt_state}, job is {row.job_state}: fenced off")
    finished = utcnow()
    # a report that came before its lease event was copied says when the lease was taken
    started = row.attempt_started_at or _reported_start(payload.get("started_at"), finished)
    fields = {"timeline": payload.get("timeline", []), "device_id": payload.get("device_id", row.device_id),
              "host": str(payload.get("host") or row.host)[:200],
              "lease_token": int(payload.get("lease_token", row.lease_token)),
              "finished_at": finished, "started_at": started}
    outcome, payload, ab_block = checked(payload, pre, row, attempt_id)
    if outcome == "ok":
        recorded = _record_ok(s, row, attempt_id, fields, payload, pre, ab_block)
        retried = False
    else:
        recorded, retried = _record_failure(s, row, attempt_id, fields, outcome, payload, fleet, outbox)
    finalize_if_done(s, row.run_id, outbox, fleet)
    outbox.stage(s)  # a retry's message survives this process
    return RecordOutcome(True, retried=retried, job=recorded)


def _record_ok(s: Session, row: Row[*tuple[Any, ...]], attempt_id: str, fields: dict[str, Any], payload: dict[str, Any],
               pre: Prechecked, ab_block: dict[str, Any] | None) -> Recorded:
    """A valid result: the attempt and the job succeed, the result row is inserted (its unique
    constraint refuses a second one for the job: ``IntegrityError``, inside the transaction)."""
    doc = payload["result"]
    assert pre.summary is not None  # prechecked: the document passed
    st, stab = pre.summary.get()
    profiles.save(s, row.job_id, row.artifact_key, row.baseline_artifact_key, doc, payload.get("ab"))  # compacts doc
    conn = s.connection()
    conn.execute(_FINISH_ATTEMPT, {"b_id": attempt_id, "state": "succeeded", **fields})
    finished = utcnow()
    job_started = row.job_started_at or fields["started_at"]
    conn.execute(_JOB_SUCCEEDED, {"b_id": row.job_id, "b_started": job_started, "b_finished": finished})
    conn.execute(_INSERT_RESULT, {
        "job_id": row.job_id, "attempt_id": attempt_id, "simulated": bool(doc["simulated"]),
        "device_id": fields["device_id"], "device_model": doc["device"]["model"],
        "os_version": doc["device"]["os_version"], "load_time_ms": doc["load_time_ms"],
        "median_ms": st.median, "p10_ms": st.p10, "p90_ms": st.p90, "mean_ms": st.mean,
        "peak_memory_bytes": doc["peak_memory_bytes"], "energy_mj": doc.get("energy_mj_per_inference"),
        "document": doc, "ab": ab_block, "cv": stab.cv if stab else None,
        "p99_p50": stab.p99_p50 if stab else None, "max_min": stab.max_min if stab else None,
        "recorded_at": finished})
    return Recorded("succeeded", row.device_class, row.trigger, _span(row.queued_at, job_started),
                    _span(job_started, finished))


def _record_failure(s: Session, row: Row[*tuple[Any, ...]], attempt_id: str, fields: dict[str, Any], outcome: str,
                    payload: dict[str, Any], fleet: Fleet, outbox: Outbox) -> tuple[Recorded, bool]:
    """A model or infrastructure failure: on the ORM objects (a retry dispatches from them)."""
    attempt = s.get(Attempt, attempt_id, options=[joinedload(Attempt.job)])
    assert attempt is not None  # locked and read above, in this transaction
    job = attempt.job
    for key, value in fields.items():
        setattr(attempt, key, value)
    job.started_at = job.started_at or attempt.started_at
    if outcome == "model":
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
    return Recorded(job.state, job.device_class, row.trigger, _span(job.queued_at, job.started_at),
                    _span(job.started_at, job.finished_at)), retried


def _reported_start(value: Any, finished_at: datetime) -> datetime:
    """The agent's lease time (epoch seconds) from a report, within reason; else the finish."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = datetime.fromtimestamp(value, UTC).replace(tzinfo=None) if 0 < value < 1e11 else finished_at
        return min(at, finished_at)
    return finished_at
