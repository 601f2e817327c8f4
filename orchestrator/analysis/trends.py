"""Trends over nightly runs: per-cell history, change points, silent cells.

Change points reuse the regression test on the raw iteration distributions: run *i*
is a change point when it differs (slower or faster, see :func:`compare_cells`) from
run *i-1* **and** from the pooled samples of the up-to-``WINDOW`` runs before it, and
the next run, if any, differs from that pooled window in the same direction. So a
one-night blip flags neither the blip nor the return from it; a step that persists is
flagged once, on the night it happened.

A *silent cell* is one that produced results in some nightly run but none in the
last ``n`` nightly runs — ExecuTorch's dashboard let a device pool produce nothing
for two weeks (issue #11083) because an absent row looks like no news.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from orchestrator.analysis.regression import compare_cells
from orchestrator.reports.data import CellKey, RunData

SILENT_AFTER_RUNS = 3
WINDOW = 3


@dataclass(frozen=True)
class Point:
    run_id: str
    created_at: datetime
    state: str  # the cell's state in that run, "absent" when the run had no such cell
    median_ms: float | None
    p10_ms: float | None
    p90_ms: float | None
    simulated: bool
    latencies_ms: tuple[float, ...] = ()
    change: str = ""  # "slower" / "faster" when this run is a change point


def cell_history(runs: list[RunData]) -> dict[CellKey, list[Point]]:
    """Per cell, one point per run (oldest first), absent runs included."""
    keys = sorted({c.key for r in runs for c in r.cells})
    history: dict[CellKey, list[Point]] = {}
    for key in keys:
        points = []
        for r in runs:
            cell = r.by_key().get(key)
            if cell is None:
                points.append(Point(r.run.id, r.run.created_at, "absent", None, None, None, False))
                continue
            lat = np.asarray(cell.latencies_ms) if cell.latencies_ms else None
            p10, med, p90 = (float(v) for v in np.percentile(lat, [10, 50, 90])) if lat is not None else (
                None, None, None)
            points.append(Point(r.run.id, r.run.created_at, cell.state, med, p10, p90, cell.simulated,
                                tuple(cell.latencies_ms)))
        history[key] = mark_change_points(points)
    return history


def mark_change_points(points: list[Point], min_effect: float = 0.05) -> list[Point]:
    measured = [points[i] for i, p in enumerate(points) if p.latencies_ms]
    changes: dict[str, str] = {}
    for pos in range(1, len(measured)):
        cur = measured[pos]
        before = [x for p in measured[max(0, pos - WINDOW):pos] for x in p.latencies_ms]
        verdict = compare_cells(measured[pos - 1].latencies_ms, cur.latencies_ms, min_effect).verdict
        if verdict not in ("slower", "faster"):
            continue
        if compare_cells(before, cur.latencies_ms, min_effect).verdict != verdict:
            continue  # the previous night was the odd one out
        if pos + 1 < len(measured) and compare_cells(before, measured[pos + 1].latencies_ms,
                                                     min_effect).verdict != verdict:
            continue  # a one-night blip, not a step
        changes[cur.run_id] = verdict
    return [Point(**{**p.__dict__, "change": changes[p.run_id]}) if p.run_id in changes else p for p in points]


@dataclass(frozen=True)
class SilentCell:
    key: CellKey
    last_result_run: str
    last_result_at: datetime
    silent_runs: int
    last_state: str
    last_reason: str


def silent_cells(runs: list[RunData], n: int = SILENT_AFTER_RUNS) -> list[SilentCell]:
    """Cells with results in an earlier nightly run and none in the last ``n`` runs (oldest-first input)."""
    if len(runs) <= n:
        return []
    recent, older = runs[-n:], runs[:-n]
    out = []
    for key in sorted({c.key for r in older for c in r.cells if c.has_results}):
        if any((c := r.by_key().get(key)) is not None and c.has_results for r in recent):
            continue
        last = next(r for r in reversed(older) if (c := r.by_key().get(key)) is not None and c.has_results)
        latest = recent[-1].by_key().get(key)
        silent = len(runs) - 1 - runs.index(last)
        out.append(SilentCell(key, last.run.id, last.run.created_at, silent,
                              latest.state if latest else "absent", latest.reason if latest else ""))
    return out
