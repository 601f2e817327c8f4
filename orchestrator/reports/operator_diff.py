"""The PR comment's operator diff: for each cell whose verdict is slower or faster, the
operators whose time changed most, baseline → PR, from the profiling passes.

Preferred source: the A/B job's own two profiling passes (arm A: the PR's program, arm B:
the baseline's), run on the same device in the same lease. A cell measured without A/B
is diffed against the baseline run's stored profile of the same cell, and says so.
Matching across the two programs is :func:`orchestrator.analysis.operators.diff`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.analysis.compare import CellComparison
from orchestrator.analysis.operators import OperatorChange, diff, one_sided, shown
from orchestrator.reports.data import CellKey
from orchestrator.reports.tables import SIMULATED
from orchestrator.store import profiles
from orchestrator.store.models import Job
from orchestrator.store.profiles import CellProfile

TOP_N = 8
AB_SOURCE = "A/B profiling passes on the same device, in the same lease"


@dataclass
class CellOperatorDiff:
    key: CellKey
    verdict: str
    change_pct: float | None
    source: str
    simulated: bool
    changes: list[OperatorChange]


def _baseline_profile(s: Session, run_id: str, key: CellKey) -> CellProfile | None:
    jobs = [j for j in s.scalars(select(Job).where(Job.run_id == run_id)) if CellKey.of(j) == key]
    found = profiles.for_jobs(s, [j.id for j in sorted(jobs, key=lambda j: j.repeat_index)])
    return next((p for p in found.values() if p.status == "ok"), None)


def cell_diffs(s: Session, comparisons: list[CellComparison],
               baseline_runs: dict[CellKey, str]) -> list[CellOperatorDiff]:
    """The operator diffs of the cells that moved (slower/faster) and have both profiles."""
    out = []
    for comp in comparisons:
        if comp.verdict.verdict not in ("slower", "faster") or comp.candidate is None:
            continue
        pr = comp.candidate.profile
        if pr is None or pr.status != "ok":
            continue
        base = profiles.for_job(s, pr.job_id, arm="B")
        source = AB_SOURCE
        if base is None or base.status != "ok":
            run_id = baseline_runs.get(comp.key)
            base = _baseline_profile(s, run_id, comp.key) if run_id else None
            source = f"profile of baseline run `{run_id}` (another lease: profile noise is larger)"
        if base is None:
            continue
        out.append(CellOperatorDiff(comp.key, comp.verdict.verdict, comp.verdict.change_pct, source,
                                    pr.simulated or base.simulated, diff(base.operators, pr.operators)))
    return out


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f} ms"


def _row(c: OperatorChange) -> str:
    if c.side == "pr_only":
        change = f"+{c.delta_ms:.3f} ms (only in the PR's program)"
    elif c.side == "base_only":
        change = f"{c.delta_ms:.3f} ms (only in the baseline's program)"
    else:
        pct = f", {c.delta_ms / c.base_ms * 100:+.0f} %" if c.base_ms else ""
        change = f"{c.delta_ms:+.3f} ms{pct}"
    name = c.label.replace("|", "\\|")
    return f"| `{name}` | {c.backend} | {_ms(c.base_ms)} | {_ms(c.pr_ms)} | {change} |"


def operator_diff_markdown(diffs: list[CellOperatorDiff], cell_label: Callable[[CellKey], str] = CellKey.label,
                           n: int = TOP_N) -> str:
    """The comment's section ('' when no moved cell has profiles on both sides)."""
    if not diffs:
        return ""
    label = cell_label
    lines = ["", "### Where the change comes from (operator profiles)", ""]
    for d in diffs:
        pct = f" {d.change_pct:+.1f}%" if d.change_pct is not None else ""
        sim = f" *({SIMULATED})*" if d.simulated else ""
        lines += [f"**{label(d.key)}** — {d.verdict}{pct}{sim}; from {d.source}:", "",
                  "| Operator | Backend | Baseline | PR | Change |", "|---|---|---|---|---|"]
        lines += [_row(c) for c in shown(d.changes, n)]
        pr_only, base_only = one_sided(d.changes)
        if pr_only or base_only:
            lines += ["", f"The graph changed: {pr_only} operator(s) exist only in the PR's program, "
                          f"{base_only} only in the baseline's."]
        lines.append("")
    return "\n".join(lines)
