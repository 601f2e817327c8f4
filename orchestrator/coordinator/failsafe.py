"""What the coordinator does with a report it cannot process: never nothing.

A coordinator task that raises a transient error (database or Redis unreachable) is retried by
Celery (``orchestrator.tasks.TRANSIENT``). Anything else is permanent — the same report would
fail the same way on every redelivery — and used to leave its job ``running`` for ever (a
``peak_memory_bytes`` of 2^63 raised OverflowError in the database driver). Here the attempt
fails, as an infrastructure failure carrying the exception, so its job is retried on another
device or failed with that reason; an export answer that cannot be applied fails its jobs.
"""

from __future__ import annotations

from typing import Any

from device_inventory.fleet import Fleet
from orchestrator.coordinator.dispatch import retry_or_fail
from orchestrator.coordinator.exports import jobs_for_request
from orchestrator.coordinator.finalize import finalize_if_done
from orchestrator.coordinator.outbox import Outbox
from orchestrator.coordinator.record import RecordOutcome, lock_open_attempt
from orchestrator.store.db import session as db_session
from orchestrator.store.models import utcnow
from orchestrator.store.states import JOB_TERMINAL

CATEGORY = "unrecordable"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:1000]}"


def fail_attempt(payload: Any, exc: BaseException, fleet: Fleet) -> tuple[RecordOutcome, Outbox]:
    """Fail the reported attempt because its report could not be recorded (``exc``)."""
    outbox = Outbox()
    attempt_id = str(payload.get("attempt_id", "")) if isinstance(payload, dict) else ""
    with db_session() as s:
        attempt = lock_open_attempt(s, attempt_id) if attempt_id else None
        if attempt is None:
            return RecordOutcome(False, f"unrecordable report for no open attempt: {describe(exc)}"), outbox
        attempt.state, attempt.error_category, attempt.finished_at = "infra_failed", CATEGORY, utcnow()
        attempt.error = f"the coordinator could not record this attempt's report: {describe(exc)}"
        job = attempt.job
        retried = False
        if job.state not in JOB_TERMINAL:
            retried = retry_or_fail(s, job, fleet, outbox, CATEGORY, attempt.error)
        finalize_if_done(s, job.run_id, outbox, fleet)
        outbox.stage(s)
    return RecordOutcome(True, attempt.error, retried), outbox


def fail_export(request: str, exc: BaseException, fleet: Fleet) -> Outbox:
    """Fail the jobs waiting for export ``request`` whose answer could not be applied."""
    outbox = Outbox()
    with db_session() as s:
        jobs = jobs_for_request(s, request)
        for job in jobs:
            job.state, job.finished_at = "failed", utcnow()
            job.reason = f"export answer could not be recorded: {describe(exc)}"
        for run_id in {j.run_id for j in jobs}:
            finalize_if_done(s, run_id, outbox, fleet)
        outbox.stage(s)
    return outbox
