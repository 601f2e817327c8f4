"""Assemble everything one report shows about a run: analysed cells, the seed's
tables, an optional baseline comparison, nightly trends and silent cells."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from orchestrator.analysis.budgets import BudgetFile, load_budgets
from orchestrator.analysis.cells import analyze
from orchestrator.analysis.compare import CellComparison, compare_runs
from orchestrator.analysis.trends import SILENT_AFTER_RUNS, Point, SilentCell, cell_history, silent_cells
from orchestrator.reports.data import CellKey, RunData, RunInfo, load_nightly_history, load_run
from orchestrator.reports.tables import Analysed, Table, all_tables
from orchestrator.spec import run_rules

HISTORY_RUNS = 14


@dataclass
class Report:
    data: RunData
    analysed: Analysed
    tables: list[Table]
    baseline: RunInfo | None = None
    comparisons: list[CellComparison] = field(default_factory=list)
    history: dict[CellKey, list[Point]] = field(default_factory=dict)
    silent: list[SilentCell] = field(default_factory=list)

    @property
    def run(self) -> RunInfo:
        return self.data.run

    @property
    def simulated(self) -> bool:
        return self.data.simulated or any(c.simulated for c in self.comparisons)


def analyse_run(data: RunData, budgets: BudgetFile | None = None) -> Analysed:
    budgets = budgets or load_budgets()
    rule = run_rules.of_run(data.run.run_rules)  # its noise and replication thresholds
    return [(c, analyze(c, budgets, rule)) for c in data.cells]


def build_report(session: Session, run_id: str, baseline_id: str | None = None,
                 history_runs: int = HISTORY_RUNS, silent_after: int = SILENT_AFTER_RUNS) -> Report:
    data = load_run(session, run_id)
    analysed = analyse_run(data)
    report = Report(data, analysed, all_tables(analysed))
    if baseline_id:
        base = load_run(session, baseline_id)
        report.baseline = base.run
        report.comparisons = compare_runs(base, data)
    nightly = load_nightly_history(session, history_runs, before=data.run.created_at)
    if nightly:
        keys = {c.key for c in data.cells}
        report.history = {k: v for k, v in cell_history(nightly).items() if k in keys}
        report.silent = silent_cells(nightly, silent_after)
    return report
