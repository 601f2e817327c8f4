"""Interleaved A/B inside one lease: the PR's program (A) and its baseline's (B) take turns
on the same device (ABBA ABBA...: the first arm swaps every round), so device-to-device
differences, thermal drift and launch order hit both arms alike instead of masquerading as
a regression (the complaint about ExecuTorch's benchmark CI comparing numbers from
different phones on different days).

Each arm run is a full harness launch (warm-up included) with ``ceil(iterations / rounds)``
iterations, so an A/B job costs about twice a plain one whatever the number of rounds.
The arms' documents are merged per arm: A becomes the job's result document, B travels
beside it as the ``ab`` block of the report.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from agents.harness.contract import validate_result

# concatenated per-iteration series; anything else is taken from the first or last run
_SERIES = ("latencies_ms", "warmup_latencies_ms", "preprocess_ms", "postprocess_ms")


@dataclass(frozen=True)
class ArmRun:
    arm: str  # "A" (the job's own artifact) | "B" (the baseline's)
    artifact_key: str
    job: dict[str, Any]  # the job document for this launch


def plan_arms(payload: dict[str, Any], job: dict[str, Any]) -> list[ArmRun]:
    """The launches of one attempt: just A, or A and B alternating for ``rounds`` rounds."""
    ab = payload.get("ab")
    if not ab:
        return [ArmRun("A", payload["artifact_key"], job)]
    rounds = max(1, int(ab["rounds"]))
    per_run = max(1, math.ceil(int(job["iterations"]) / rounds))
    a = dict(job, iterations=per_run)
    base = ab["baseline"]
    b = dict(job, iterations=per_run, model_file=base["model_file"], model_sha256=base["model_sha256"])
    arm_a, arm_b = ArmRun("A", payload["artifact_key"], a), ArmRun("B", base["artifact_key"], b)
    # one profiling pass per arm is enough: the first round's launches profile, later ones do not
    unprofiled = (ArmRun("A", arm_a.artifact_key, _without_profile(a)),
                  ArmRun("B", arm_b.artifact_key, _without_profile(b)))
    # ABBA ABBA...: the arm that goes first swaps every round, so a linear drift (warming
    # up, heating up) and any first-launch advantage fall on both arms alike
    return [run for r in range(rounds)
            for run in ((arm_a, arm_b) if r == 0 else unprofiled if r % 2 == 0 else unprofiled[::-1])]


def _without_profile(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "profile"}


def merge_documents(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result document for several successful launches of the same arm."""
    if len(docs) == 1:
        return docs[0]
    first, last = docs[0], docs[-1]
    merged = dict(first)
    for key in _SERIES:
        if all(key in d for d in docs):
            merged[key] = [x for d in docs for x in d[key]]
        else:
            merged.pop(key, None)  # stages must align per iteration, or not be claimed at all
    merged["peak_memory_bytes"] = max(int(d["peak_memory_bytes"]) for d in docs)
    energies = [d["energy_mj_per_inference"] for d in docs if d.get("energy_mj_per_inference") is not None]
    merged["energy_mj_per_inference"] = sum(energies) / len(energies) if energies else None
    for key in ("thermal_after", "battery_after", "finished_at"):
        if key in last:
            merged[key] = last[key]
    merged["simulated"] = any(d["simulated"] for d in docs)
    return validate_result(merged)


def round_summary(arm: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of each launch: enough to see drift between rounds."""
    return {"arm": arm, "median_ms": statistics.median(doc["latencies_ms"]), "iterations": len(doc["latencies_ms"]),
            "thermal_before": doc.get("thermal_before", "unknown"),
            "thermal_after": doc.get("thermal_after", "unknown")}
