"""Interleaved A/B inside one lease: the PR's program (A) and its baseline's (B) take turns
on the same device (ABBA ABBA...: the first arm swaps every round), so device-to-device
differences, thermal drift and launch order hit both arms alike instead of masquerading as
a regression (the complaint about ExecuTorch's benchmark CI comparing numbers from
different phones on different days).

Each arm run is a full harness launch (warm-up included) with ``ceil(iterations / rounds)``
iterations, so the minimum rounds cost about twice a plain job.
The arms' documents are merged per arm: A becomes the job's result document, B travels
beside it as the ``ab`` block of the report.

Adaptive rounds (:class:`RoundPlan`): after the minimum rounds the plan asks the
launch-level verdict (``orchestrator.analysis.launches.decide``: per-round median ratios,
paired t-interval over rounds) whether the cell is decided — *different* or *same* — and
adds one round at a time until it is, or ``max_rounds`` are done, or the next round would
overspend the cell's device-time budget (``budget_s``: the harness's own load + warm-up +
iteration time, which for a virtual device is its simulated time). Doing it here, in the
same lease, keeps every round on the same device minutes apart, which is what makes the
rounds comparable; a follow-up job could land on another phone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents import device_metrics
from agents.harness import frame
from agents.harness.contract import validate_result
from orchestrator.analysis.launches import RoundsDecision, decide, looks_for, round_ratios

# concatenated per-iteration series; anything else is taken from the first or last run
_SERIES = ("latencies_ms", "warmup_latencies_ms", "preprocess_ms", "postprocess_ms")


@dataclass(frozen=True)
class ArmRun:
    arm: str  # "A" (the job's own artifact) | "B" (the baseline's)
    artifact_key: str
    job: dict[str, Any]  # the job document for this launch


def _arms(payload: dict[str, Any], job: dict[str, Any]) -> tuple[ArmRun, ArmRun]:
    ab = payload["ab"]
    per_run = max(1, math.ceil(int(job["iterations"]) / max(1, int(ab["rounds"]))))
    a = dict(job, iterations=per_run)
    base = ab["baseline"]
    b = dict(job, iterations=per_run, model_file=base["model_file"], model_sha256=base["model_sha256"])
    return ArmRun("A", payload["artifact_key"], a), ArmRun("B", base["artifact_key"], b)


def _without_profile(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "profile"}


def _round(arms: tuple[ArmRun, ArmRun], r: int) -> tuple[ArmRun, ArmRun]:
    # one profiling pass per arm is enough: the first round's launches profile, later ones do not
    if r > 0:
        arms = (ArmRun("A", arms[0].artifact_key, _without_profile(arms[0].job)),
                ArmRun("B", arms[1].artifact_key, _without_profile(arms[1].job)))
    # ABBA ABBA...: the arm that goes first swaps every round, so a linear drift (warming
    # up, heating up) and any first-launch advantage fall on both arms alike
    return arms if r % 2 == 0 else (arms[1], arms[0])


def plan_arms(payload: dict[str, Any], job: dict[str, Any]) -> list[ArmRun]:
    """The launches of the minimum rounds: just A, or A and B alternating for ``rounds`` rounds."""
    if not payload.get("ab"):
        return [ArmRun("A", payload["artifact_key"], job)]
    arms = _arms(payload, job)
    return [run for r in range(max(1, int(payload["ab"]["rounds"]))) for run in _round(arms, r)]


def launch_seconds(doc: dict[str, Any]) -> float:
    """Device time one launch took, from the harness's own figures (load, warm-up, iterations)."""
    ms = float(doc.get("load_time_ms") or 0.0) + sum(doc.get("warmup_latencies_ms") or [])
    for key in ("latencies_ms", "preprocess_ms", "postprocess_ms"):
        ms += sum(doc.get(key) or [])
    return ms / 1000.0


@dataclass
class RoundPlan:
    """The launches of one attempt, decided as they go. Iterate for the next launch; after
    running it, call :meth:`record` with its document (``None`` when it failed)."""

    payload: dict[str, Any]
    job: dict[str, Any]
    rounds: list[dict[str, Any]] = field(default_factory=list)  # launch summaries, in order
    spent_s: float = 0.0
    stop_reason: str = ""
    decision: RoundsDecision | None = None
    _baseline_failed: bool = False
    _round_index: int = 0

    def __iter__(self) -> Iterator[ArmRun]:
        if not self.payload.get("ab"):
            yield ArmRun("A", self.payload["artifact_key"], self.job)
            return
        ab = self.payload["ab"]
        arms = _arms(self.payload, self.job)
        min_rounds = max(1, int(ab["rounds"]))
        max_rounds = max(min_rounds, int(ab.get("max_rounds") or min_rounds))
        budget = float(ab.get("budget_s") or 0.0)
        r = 0
        while True:
            self._round_index = r
            yield from _round(arms, r)
            r += 1
            if self._baseline_failed:
                if r >= min_rounds:
                    self.stop_reason = "baseline failed"
                    return
                continue
            if r < min_rounds:
                continue
            self.decision = decide(round_ratios(self.rounds), float(ab.get("min_effect", 0.05)),
                                   looks=looks_for(min_rounds, max_rounds))
            if self.decision.outcome != "unknown":
                self.stop_reason = "decided"
                return
            if r >= max_rounds:
                self.stop_reason = "max rounds"
                return
            if budget and self.spent_s + self.spent_s / r > budget:  # the next round would overspend
                self.stop_reason = "budget"
                return

    def record(self, arm: str, doc: dict[str, Any] | None) -> None:
        if doc is None:
            self._baseline_failed |= arm == "B"
            return
        self.spent_s += launch_seconds(doc)
        self.rounds.append(dict(round_summary(arm, doc), round=self._round_index))

    def summary(self) -> dict[str, Any]:
        """What the report says about the rounds: how many, why they stopped, the agent's verdict."""
        d = self.decision
        return {"rounds_done": len(round_ratios(self.rounds)), "stop_reason": self.stop_reason,
                "device_s": round(self.spent_s, 3),
                "agent_outcome": d.outcome if d else "", "agent_verdict": d.verdict if d else ""}


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
    merged.pop(device_metrics.KEY, None)
    if (block := device_metrics.merge([d.get(device_metrics.KEY) for d in docs])) is not None:
        merged[device_metrics.KEY] = block
    _merge_frame_pipeline(merged)
    return validate_result(merged)


def _merge_frame_pipeline(merged: dict[str, Any]) -> None:
    """The merged document's stage summary is over every launch's samples, or absent."""
    fp = merged.pop("frame_pipeline", None)
    if fp is None:
        return
    block = frame.pipeline_block(merged.get("preprocess_ms") or [], merged["latencies_ms"],
                                 merged.get("postprocess_ms") or [], simulated=fp["simulated"],
                                 source=fp["source"], preprocess=fp.get("preprocess", ""),
                                 postprocess=fp.get("postprocess", ""),
                                 frame=(fp["frame"]["width"], fp["frame"]["height"]))
    if block is not None:
        merged["frame_pipeline"] = block


def round_summary(arm: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of each launch: enough to see drift between rounds."""
    return {"arm": arm, "median_ms": statistics.median(doc["latencies_ms"]), "iterations": len(doc["latencies_ms"]),
            "thermal_before": doc.get("thermal_before", "unknown"),
            "thermal_after": doc.get("thermal_after", "unknown")}
