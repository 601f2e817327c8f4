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


def test_merge_refuses_a_document_it_cannot_vouch_for() -> None:
    bad = copy.deepcopy(_doc([1.0], 1, ("nominal", "nominal")))
    bad["latencies_ms"] = [-1.0]
    with pytest.raises(ContractError):
        ab.merge_documents([bad, _doc([2.0], 1, ("nominal", "nominal"))])
