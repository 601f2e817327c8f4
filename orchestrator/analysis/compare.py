"""Cell-by-cell comparison of two runs (PR vs baseline, tonight vs last night)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.analysis.regression import Verdict, compare_cells
from orchestrator.reports.data import Cell, CellKey, RunData


@dataclass(frozen=True)
class CellComparison:
    key: CellKey
    baseline: Cell | None
    candidate: Cell | None
    verdict: Verdict
    note: str = ""  # why there is no statistical verdict (missing / failed side)
    basis: str = ""  # what the baseline side is (in-lease A/B, a stored run), when it matters

    @property
    def simulated(self) -> bool:
        return any(c is not None and c.simulated for c in (self.baseline, self.candidate))


def _unmeasured(cell: Cell | None, side: str) -> str:
    if cell is None:
        return f"not in {side}"
    return f"{side} {cell.state}" + (f": {cell.reason}" if cell.reason else "")


def compare_runs(baseline: RunData, candidate: RunData, min_effect: float = 0.05) -> list[CellComparison]:
    """Every cell of either run, with a verdict where both sides measured it."""
    base, cand = baseline.by_key(), candidate.by_key()
    out = []
    for key in sorted(set(base) | set(cand)):
        b, c = base.get(key), cand.get(key)
        if b is not None and c is not None and b.has_results and c.has_results:
            out.append(CellComparison(key, b, c, compare_cells(b.latencies_ms, c.latencies_ms, min_effect)))
            continue
        missing = [m for m, cell in (("baseline", b), ("candidate", c)) if cell is None or not cell.has_results]
        note = "; ".join(_unmeasured(b if m == "baseline" else c, m) for m in missing)
        out.append(CellComparison(key, b, c, Verdict("insufficient data", None, None, None), note))
    return out
