"""A report's checks, split around the record path's write lock: what needs no row runs before
it, and the outcomes and messages are what the checks in their order give (the first failing
check names the failure, whichever half found it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.analysis.stats import summarize
from orchestrator.coordinator import record, report_checks
from orchestrator.coordinator.report_checks import checked, precheck
from tests.core.test_runs import dispatch_ready, fleet, result_doc, submit  # noqa: F401 (fixture)

ROW = SimpleNamespace(job_id="j1", baseline_artifact_key="base-key", info=None)


def _report(doc: dict[str, Any], ab: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"attempt_id": "a1", "outcome": "ok", "result": doc, **({"ab": ab} if ab is not None else {})}


def _outcome(payload: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    outcome, out, block = checked(payload, precheck(payload), ROW, "a1")  # type: ignore[arg-type]
    return outcome, out.get("message", ""), block


def test_an_ab_report_gets_its_baseline_block() -> None:
    base = result_doc("j1", "a1", latencies_ms=[20.0, 21.0, 22.0])
    outcome, _, block = _outcome(_report(result_doc("j1", "a1"), {
        "baseline_artifact_key": "base-key", "order": "ABBA", "rounds": [1, 2], "baseline_result": base,
        "adaptive": {"rounds_done": 2, "stop_reason": "decided", "junk": 1}}))
    st = summarize([20.0, 21.0, 22.0])
    assert outcome == "ok" and block is not None
    assert (block["baseline_artifact_key"], block["order"], block["rounds"], block["adaptive"]) == (
        "base-key", "ABBA", [1, 2], {"rounds_done": 2, "stop_reason": "decided"})
    assert (block["median_ms"], block["p10_ms"], block["p90_ms"]) == (st.median, st.p10, st.p90)


@pytest.mark.parametrize(("doc", "ab", "message"), [
    # the document's ids come before the A/B block
    (result_doc("j1", "other"), {"baseline_artifact_key": "wrong"}, "result document names another job/attempt"),
    # the block's baseline key before its baseline document
    (result_doc("j1", "a1"), {"baseline_artifact_key": "wrong", "baseline_result": {"status": "ok"}},
     "A/B block does not name this job's baseline artifact"),
    (result_doc("j1", "a1"), {"baseline_artifact_key": "base-key", "baseline_result": {"status": "ok"}},
     "result document invalid"),
    (result_doc("j1", "a1"), {"baseline_artifact_key": "base-key", "baseline_result": result_doc("j1", "other")},
     "A/B baseline document names another job/attempt or is not ok"),
    (result_doc("j1", "a1", latencies_ms="fast"), {"baseline_artifact_key": "wrong"}, "result document invalid"),
])
def test_the_first_failing_check_names_the_bad_result(doc: dict[str, Any], ab: dict[str, Any],
                                                      message: str) -> None:
    outcome, got, block = _outcome(_report(doc, ab))
    assert (outcome, block) == ("infra", None) and got.startswith(message), got


def test_a_failure_report_is_not_checked_ahead() -> None:
    assert precheck({"attempt_id": "a1", "outcome": "model", "result": {"bad": 1}}) == report_checks.Prechecked()


def test_the_documents_are_checked_before_the_write_lock(fleet, monkeypatch) -> None:  # noqa: F811
    run_id, _ = submit(fleet)
    job_id, attempt_id, _ = dispatch_ready(fleet, run_id)
    calls: list[str] = []
    validate, lock = report_checks.validate_result, record.lock_attempt
    monkeypatch.setattr(report_checks, "validate_result", lambda doc: (calls.append("validate"), validate(doc))[1])
    monkeypatch.setattr(record, "lock_attempt", lambda s, a: (calls.append("lock"), lock(s, a))[1])
    out, _ = record_attempt_ok(fleet, job_id, attempt_id)
    assert out.accepted and calls == ["validate", "lock"]


def record_attempt_ok(fleet, job_id: str, attempt_id: str):  # noqa: F811
    return record.record_attempt({"attempt_id": attempt_id, "job_id": job_id, "outcome": "ok", "device_id": "d1",
                                  "lease_token": 1, "result": result_doc(job_id, attempt_id)}, fleet)
