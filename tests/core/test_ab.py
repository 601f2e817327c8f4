"""Interleaved A/B launches (agents.ab): the order of the arms and how an arm's launches merge."""

from __future__ import annotations

import copy

import pytest

from agents import ab
from agents.harness.contract import ContractError

JOB = {"job_id": "j1", "attempt_id": "a1", "attempt_token": 7, "iterations": 25, "model_file": "pr.pte",
       "model_sha256": "a" * 64}
PAYLOAD = {"artifact_key": "k" * 64,
           "ab": {"rounds": 2, "baseline": {"artifact_key": "b" * 64, "model_file": "base.pte",
                                            "model_sha256": "c" * 64}}}


def _doc(latencies: list[float], memory: int, thermal: tuple[str, str], energy: float | None = 1.0) -> dict:
    return {"schema_version": 1, "job_id": "j1", "attempt_id": "a1", "attempt_token": 7, "simulated": False,
            "producer": {"name": "host-driver", "version": "1"},
            "device": {"model": "host", "os": "Linux", "os_version": "6.1"}, "backend": "xnnpack",
            "status": "ok", "load_time_ms": 3.0, "latencies_ms": latencies, "warmup_latencies_ms": [9.0],
            "peak_memory_bytes": memory, "energy_mj_per_inference": energy,
            "thermal_before": thermal[0], "thermal_after": thermal[1],
            "started_at": "2026-11-25T10:00:00Z", "finished_at": f"2026-11-25T10:00:0{memory % 10}Z"}


def test_plain_job_is_one_launch_of_its_own_artifact() -> None:
    runs = ab.plan_arms({"artifact_key": "k" * 64}, JOB)
    assert [(r.arm, r.artifact_key, r.job["iterations"]) for r in runs] == [("A", "k" * 64, 25)]


def test_ab_alternates_abba_and_splits_iterations() -> None:
    runs = ab.plan_arms(PAYLOAD, JOB)
    assert "".join(r.arm for r in runs) == "ABBA"  # the first arm swaps every round
    assert [r.artifact_key[0] for r in runs] == ["k", "b", "b", "k"]
    assert "".join(r.arm for r in ab.plan_arms(dict(PAYLOAD, ab=dict(PAYLOAD["ab"], rounds=3)), JOB)) == "ABBAAB"
    assert {r.job["iterations"] for r in runs} == {13}  # ceil(25 / 2): each arm gets >= 25 samples
    b = runs[1].job
    assert (b["model_file"], b["model_sha256"]) == ("base.pte", "c" * 64)
    # the attempt's identity is shared: both arms' documents are checked against the lease
    assert {(r.job["job_id"], r.job["attempt_token"]) for r in runs} == {("j1", 7)}
    assert runs[0].job["model_file"] == "pr.pte" and JOB["iterations"] == 25  # the input is not mutated


def test_merge_concatenates_series_and_keeps_worst_memory() -> None:
    first = _doc([1.0, 2.0], 101, ("nominal", "fair"), energy=2.0)
    second = _doc([3.0], 303, ("fair", "serious"), energy=4.0)
    merged = ab.merge_documents([first, second])
    assert merged["latencies_ms"] == [1.0, 2.0, 3.0] and merged["warmup_latencies_ms"] == [9.0, 9.0]
    assert merged["peak_memory_bytes"] == 303 and merged["energy_mj_per_inference"] == 3.0
    assert (merged["thermal_before"], merged["thermal_after"]) == ("nominal", "serious")
    assert merged["finished_at"] == second["finished_at"] != first["finished_at"]


def test_merge_drops_a_stage_series_not_every_launch_has() -> None:
    first, second = _doc([1.0], 1, ("nominal", "nominal")), _doc([2.0], 1, ("nominal", "nominal"))
    first["preprocess_ms"] = [0.5]
    merged = ab.merge_documents([first, second])
    assert "preprocess_ms" not in merged and merged["latencies_ms"] == [1.0, 2.0]


def test_merged_frame_pipeline_summarises_every_launch() -> None:
    from agents.harness.frame import pipeline_block, stage_times

    docs = []
    for lat in ([1.0, 2.0], [30.0]):
        d = _doc(lat, 1, ("nominal", "nominal"))
        d["preprocess_ms"], d["postprocess_ms"] = [5.0] * len(lat), [0.5] * len(lat)
        d["frame_pipeline"] = pipeline_block(d["preprocess_ms"], lat, d["postprocess_ms"], simulated=False,
                                             source="measured", preprocess="p", postprocess="q")
        docs.append(d)
    merged = ab.merge_documents(docs)
    assert merged["frame_pipeline"]["iterations"] == 3
    assert merged["frame_pipeline"]["inference_ms"] == stage_times([1.0, 2.0, 30.0])
    del docs[1]["preprocess_ms"]  # a launch without the stage: no claim about the frame at all
    assert "frame_pipeline" not in ab.merge_documents(docs)


def test_merge_refuses_a_document_it_cannot_vouch_for() -> None:
    bad = copy.deepcopy(_doc([1.0], 1, ("nominal", "nominal")))
    bad["latencies_ms"] = [-1.0]
    with pytest.raises(ContractError):
        ab.merge_documents([bad, _doc([2.0], 1, ("nominal", "nominal"))])


def _drive(plan: ab.RoundPlan, median: dict[str, list[float]], load_ms: float = 3.0) -> str:
    """Run a plan with arm medians taken in turn from ``median``; returns the launch order."""
    order, used = "", {"A": 0, "B": 0}
    for run in plan:
        series = median[run.arm]
        value = series[used[run.arm] % len(series)]
        used[run.arm] += 1
        doc = _doc([value] * 3, 1, ("nominal", "nominal"))
        doc["load_time_ms"] = load_ms
        plan.record(run.arm, doc)
        order += run.arm
    return order


def _adaptive(**kw: object) -> dict:
    return dict(PAYLOAD, ab=dict(PAYLOAD["ab"], **kw))


def test_decided_cell_stops_at_the_minimum_rounds() -> None:
    plan = ab.RoundPlan(_adaptive(rounds=2, max_rounds=8, budget_s=100), JOB)
    assert _drive(plan, {"A": [2.0], "B": [1.0]}) == "ABBA"  # every round says 2x: decided
    assert plan.decision.verdict == "slower" and plan.stop_reason == "decided"
    assert plan.summary()["rounds_done"] == 2 and [r["round"] for r in plan.rounds] == [0, 0, 1, 1]


def test_undecided_cell_gets_rounds_until_the_maximum() -> None:
    plan = ab.RoundPlan(_adaptive(rounds=2, max_rounds=6, budget_s=1000), JOB)
    order = _drive(plan, {"A": [1.3, 0.8, 1.2, 0.9], "B": [1.0]})  # rounds disagree wildly
    assert order == "ABBA" * 3 and plan.stop_reason == "max rounds"
    assert plan.decision.outcome == "unknown" and plan.decision.rounds == 6


def test_budget_stops_the_rounds_before_it_is_overspent() -> None:
    # each launch costs ~1 s of device time (load 1000 ms): 2 s a round, budget 5 s
    plan = ab.RoundPlan(_adaptive(rounds=2, max_rounds=10, budget_s=5), JOB)
    _drive(plan, {"A": [1.3, 0.8], "B": [1.0]}, load_ms=1000.0)
    assert plan.stop_reason == "budget" and len(plan.rounds) == 4 and plan.spent_s <= 5


def test_failed_baseline_stops_after_the_minimum_rounds() -> None:
    plan = ab.RoundPlan(_adaptive(rounds=2, max_rounds=10), JOB)
    order = ""
    for run in plan:
        order += run.arm
        plan.record(run.arm, None if run.arm == "B" else _doc([1.0], 1, ("nominal", "nominal")))
    assert order == "ABBA" and plan.stop_reason == "baseline failed" and plan.decision is None
