"""What-if: how long would this matrix take on that fleet?

Each cell's device time comes from past results of the same model × backend × device
class × input resolution × batch (resolution and batch change latency by orders of
magnitude, so a cell of another size is no evidence): measured per-job overhead plus
warm-up × median + the timed part, which the run rule of the planned trigger sets: at least
``min_iterations`` iterations and at least ``min_duration_s`` seconds (a nightly cell of a 2 ms
model is a minute of device time, not 50 iterations' 0.1 s), twice for PR cells (A/B: both
programs, each arm's minimum; adaptive rounds may add more, up to ``ab_budget_s``). Without
history, the seed guide's figures (via the virtual device's perf model,
``agents/virtual/perf_model.yaml``, which is calibrated on them) stand in, and the output says so.
Classes run in parallel; within a class a longest-first greedy schedule gives the estimate, and
Graham's bounds frame it.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Any

from sqlalchemy import select

from device_inventory.catalog import UnknownDeviceClass, catalog
from orchestrator.capacity.queueing import makespan_bounds
from orchestrator.coordinator.planning import Cell, plan
from orchestrator.reports.data import CellKey
from orchestrator.spec.matrix import MatrixSpec
from orchestrator.spec.run_rules import RunRule, iterations
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job, Result

# Per-job overhead when no attempt of the class was measured: install, push, launch, pull
# and cleanup on a phone over USB take seconds (the virtual device's driver bench shows
# ~1.4 s without real USB, bench/results/ios_driver_overhead.json); 10 s is a cautious guess.
SEED_JOB_OVERHEAD_S = 10.0
SEED_LABEL = "seed estimate (AbacusKit guide figures, MobileNetV3 at 224², simulated)"


class DevicesSpecError(ValueError):
    """A malformed ``--devices`` value; the message names the offending part."""


def parse_devices(text: str) -> dict[str, int]:
    """``A17-Pro=4,A15=2`` -> {class id: count}; aliases resolve through the catalog."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, count = part.partition("=")
        if not sep:
            raise DevicesSpecError(f"--devices part {part!r} is not CLASS=COUNT")
        try:
            cls = catalog().resolve_class(name.strip()).id
        except UnknownDeviceClass as exc:
            raise DevicesSpecError(f"--devices part {part!r}: {exc}") from None
        if not count.strip().isdigit() or int(count) <= 0:
            raise DevicesSpecError(f"--devices part {part!r}: count {count.strip()!r} is not a positive integer")
        out[cls] = out.get(cls, 0) + int(count)
    if not out:
        raise DevicesSpecError("--devices is empty: give CLASS=COUNT pairs, e.g. A17-Pro=4,A15=2")
    return out


@dataclass(frozen=True)
class Estimate:
    service_s: float | None
    source: str  # "measured (n=..)" | SEED_LABEL | "unknown"


def measured_samples() -> dict[CellKey, list[tuple[float, float, int]]]:
    """(model, backend, class, resolution, batch) -> [(attempt seconds, median ms, warm-up+iterations)]."""
    out: dict[CellKey, list[tuple[float, float, int]]] = defaultdict(list)
    with session() as s:
        rows = s.execute(select(Job, Attempt, Result.median_ms).join(Attempt, Attempt.id == Result.attempt_id)
                         .join(Job, Job.id == Result.job_id).where(Attempt.started_at.is_not(None),
                                                                   Attempt.finished_at.is_not(None)))
        for job, att, med in rows:
            if att.finished_at is None or att.started_at is None:  # the query's filter; for the type checker
                continue
            seconds = (att.finished_at - att.started_at).total_seconds()
            out[CellKey.of(job)].append((seconds, med, job.warmup + job.iterations))
    return out


@dataclass(frozen=True)
class Measuring:
    """How much a planned job measures: the spec's warm-up, its iterations under the run rule."""

    warmup: int
    iterations: int  # timed, after the rule's minimum
    min_duration_s: float = 0.0
    arms: int = 1  # 2 for PR jobs (A/B)

    @classmethod
    def of(cls, spec: MatrixSpec, rule: RunRule, trigger: str) -> Measuring:
        return cls(spec.parameters.warmup, iterations(spec.parameters.iterations, rule), rule.min_duration_s,
                   2 if trigger == "pr" else 1)

    def device_s(self, median_ms: float) -> float:
        """Benchmark seconds of one job whose iterations take ``median_ms``."""
        timed = max(self.iterations * median_ms / 1000, self.min_duration_s)
        return self.arms * (self.warmup * median_ms / 1000 + timed)


def estimate(cell: Cell, how: Measuring, samples: dict[CellKey, list[tuple[float, float, int]]]) -> Estimate:
    """A job's device seconds; ``how`` says what it measures."""
    key = CellKey.of(cell)
    if rows := samples.get(key):
        per_job = [max(0.0, total - n * med / 1000) + how.device_s(med) for total, med, n in rows]
        return Estimate(median(per_job), f"measured (n={len(rows)})")
    from agents.virtual.perf_model import model as perf_model

    entry = perf_model().entry(cell.device_class, cell.backend)
    if entry is None:
        return Estimate(None, "unknown (no history, no seed figure)")
    lo, hi = entry.latency_ms
    ms = math.sqrt(lo * hi) * (cell.input_resolution / 224) ** 2 * cell.batch_size
    return Estimate(SEED_JOB_OVERHEAD_S + how.device_s(ms), SEED_LABEL)


def _greedy(service: list[float], devices: int) -> float:
    free = [0.0] * devices
    for s in sorted(service, reverse=True):
        heapq.heapreplace(free, free[0] + s)
    return max(free)


def plan_makespan(spec: MatrixSpec, devices: dict[str, int],
                  samples: dict[CellKey, list[tuple[float, float, int]]] | None = None,
                  trigger: str = "manual") -> dict[str, Any]:
    """Estimated makespan of the spec's runnable cells on `devices` (class -> count), measured
    under the run rule a run of ``trigger`` would get."""
    cells = [c for c in plan(spec).cells if not c.blocked_reason]
    missing = sorted({c.device_class for c in cells} - set(devices))
    if missing:
        raise DevicesSpecError(f"--devices has no count for {', '.join(missing)}, which the spec needs")
    samples = measured_samples() if samples is None else samples
    rule = spec.parameters.run_rules.for_trigger(trigger)
    how = Measuring.of(spec, rule, trigger)
    rows, by_class = [], defaultdict(list)
    for cell in cells:
        est = estimate(cell, how, samples)
        rows.append({"model": cell.model, "backend": cell.backend, "device_class": cell.device_class,
                     "input_resolution": cell.input_resolution, "batch_size": cell.batch_size,
                     "repeat": cell.repeat_index, "service_s": est.service_s, "source": est.source})
        if est.service_s is not None:
            by_class[cell.device_class].append(est.service_s)
    classes = {}
    for cls, n in sorted(devices.items()):
        service = by_class.get(cls, [])
        lower, upper = makespan_bounds(service, n)
        classes[cls] = {"devices": n, "jobs": len(service), "work_s": sum(service),
                        "makespan_s": _greedy(service, n) if service else 0.0,
                        "bound_lower_s": lower, "bound_upper_s": upper}
    return {"spec": spec.name, "trigger": trigger,
            "run_rule": {"min_iterations": rule.min_iterations, "min_duration_s": rule.min_duration_s,
                         "timed_iterations": how.iterations, "arms": how.arms},
            "cells": rows, "classes": classes,
            "makespan_s": max((c["makespan_s"] for c in classes.values()), default=0.0),
            "unknown_cells": sum(1 for r in rows if r["service_s"] is None),
            "seed_cells": sum(1 for r in rows if r["source"] == SEED_LABEL)}
