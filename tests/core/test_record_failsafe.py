"""No report leaves a job stuck: implausible numbers are refused by the contract (and retried as
bad results), and any other permanent error in the recording path fails the attempt with its
reason instead of escaping the task (which Celery acknowledged, leaving the job running for ever)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.coordinator.record import record_attempt
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result
from tests.core.test_runs import dispatch_ready, fleet, result_doc, submit  # noqa: F401 (fixture)


def _attempts(job_id: str) -> list[Attempt]:
    with session() as s:
        return list(s.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)))


@pytest.mark.parametrize(("fields", "where"), [
    ({"peak_memory_bytes": 2**63}, "peak_memory_bytes"),  # OverflowError in the driver before: job running for ever
    ({"latencies_ms": [10.0, 1e308]}, "latencies_ms[1]"),  # stored as an infinite median before
])
def test_implausible_results_are_bad_results_and_retried(fleet, fields, where):  # noqa: F811
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    doc = result_doc(job_id, attempt_id, **fields)
    out, outbox = record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d1",
                                  "lease_token": 1, "result": doc}, fleet)
    assert out.accepted and out.retried and len(outbox.messages) == 1
    first, retry = _attempts(job_id)
    assert (first.state, first.error_category, retry.state) == ("infra_failed", "bad_result", "dispatched")
    assert where in first.error
    with session() as s:
        assert s.scalars(select(Result)).all() == []


def test_a_permanent_error_while_recording_fails_the_attempt_with_its_reason(fleet):  # noqa: F811
    from orchestrator import tasks

    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    report = {"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d1",
              "lease_token": "not a number", "result": result_doc(job_id, attempt_id)}
    with pytest.raises(ValueError):  # the domain function still raises...
        record_attempt(report, fleet)
    tasks.record_attempt(report)  # ...the task fails the attempt instead of dropping the report
    first, retry = _attempts(job_id)
    assert (first.state, first.error_category) == ("infra_failed", "unrecordable")
    assert "ValueError" in first.error and retry.state == "dispatched"
    with session() as s:
        assert s.get(Job, job_id).state == "waiting-for-device"


def test_an_export_answer_that_cannot_be_applied_fails_its_jobs(fleet):  # noqa: F811
    from orchestrator import tasks
    from tests.core.test_runs import make_ready

    run_id, _ = submit(fleet)
    [request] = make_ready(run_id)
    tasks.export_done(request, "ok", {"artifact_key": "b" * 64, "size_bytes": "many"})
    with session() as s:
        job = s.scalars(select(Job).where(Job.run_id == run_id, Job.request_key == request)).one()
        assert job.state == "failed" and "export answer could not be recorded: ValueError" in job.reason
