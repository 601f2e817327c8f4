"""Everything a report says about one cell: statistics per stage, power, budgets."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.analysis.budgets import BudgetFile, BudgetResult, check_budget, load_budgets, power_label
from orchestrator.analysis.stats import MIB, Stats, percentile, summarize
from orchestrator.reports.data import Cell


@dataclass(frozen=True)
class CellStats:
    inference: Stats | None
    preprocess: Stats | None
    postprocess: Stats | None
    # Per-iteration pre + inference + post when every repeat reported all three stages for
    # every iteration; otherwise None and budgets sum the stage statistics (a frame's total
    # is never claimed without its preprocessing and postprocessing: no stage counts as zero).
    total: Stats | None
    load_time_ms: float | None
    peak_memory_mb: float | None
    energy_mj: float | None
    power: str
    budgets: tuple[BudgetResult, ...]

    def budget(self, name: str) -> BudgetResult | None:
        return next((b for b in self.budgets if b.budget.name == name), None)


def _aligned_totals(cell: Cell) -> list[float] | None:
    totals: list[float] = []
    for lat, pre, post in cell.stage_series:
        if len(pre) != len(lat) or len(post) != len(lat):
            return None
        totals += [a + b + c for a, b, c in zip(pre, lat, post, strict=True)]
    return totals


def _metric_values(s: CellStats, statistic: str) -> dict[str, float | None]:
    def at(stats: Stats | None) -> float | None:
        return None if stats is None else percentile(stats, statistic)

    if s.total is not None:
        total = at(s.total)
    else:
        parts = [at(x) for x in (s.preprocess, s.inference, s.postprocess)]
        total = None if None in parts else sum(p for p in parts if p is not None)
    return {
        "inference_ms": at(s.inference), "preprocess_ms": at(s.preprocess),
        "postprocess_ms": at(s.postprocess), "total_ms": total, "peak_memory_mb": s.peak_memory_mb,
    }


# No energy figure, and the device charged over USB: the battery current says nothing about the
# model's draw then, so the column says why instead of a number.
CHARGING = "n/a (charging)"


def _power(cell: Cell, budgets: BudgetFile) -> str:
    if cell.energy_mj_per_inference is None and cell.charging:
        return CHARGING
    return power_label(cell.energy_mj_per_inference, budgets.power_labels)


def analyze(cell: Cell, budgets: BudgetFile | None = None) -> CellStats:
    budgets = budgets or load_budgets()
    inference = summarize(cell.latencies_ms)
    totals = _aligned_totals(cell) if inference is not None else None
    load = summarize(cell.load_times_ms)
    base = CellStats(
        inference=inference,
        preprocess=summarize(cell.preprocess_ms),
        postprocess=summarize(cell.postprocess_ms),
        total=summarize(totals) if totals else None,
        load_time_ms=load.median if load else None,
        peak_memory_mb=cell.peak_memory_bytes / MIB if cell.peak_memory_bytes is not None else None,
        energy_mj=cell.energy_mj_per_inference,
        power=_power(cell, budgets),
        budgets=(),
    )
    if inference is None:  # nothing measured: every budget is n/a, not a pass
        results = tuple(check_budget(b, {}) for b in budgets.budgets)
    else:
        results = tuple(check_budget(b, _metric_values(base, b.statistic)) for b in budgets.budgets)
    return CellStats(**{**base.__dict__, "budgets": results})
