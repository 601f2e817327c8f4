"""Markdown: the CLI's report and the PR comment's verdict table."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.analysis.compare import CellComparison, compare_runs
from orchestrator.analysis.regression import Verdict
from orchestrator.analysis.stats import fmt_ms, summarize
from orchestrator.reports.build import Report
from orchestrator.reports.data import Cell, CellKey, load_run
from orchestrator.reports.tables import SIMULATED, Table, backend_display, device_title

SIM_BANNER = (f"> **{SIMULATED}**: rows marked *{SIMULATED}* come from virtual devices; their numbers "
              "are a simulation, not a measurement.")
VERDICT_ICON = {"slower": "🔴 slower", "faster": "🟢 faster", "within noise": "⚪ within noise",
                "unknown": "❔ unknown", "insufficient data": "⚠️ no verdict"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table, heading: str = "###") -> str:
    lines = [f"{heading} {table.title}", "",
             "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row.values) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines) + "\n"


def cell_label(key: CellKey) -> str:
    return (f"{key.model} · {backend_display(key.backend)} · {device_title(key.device_class)} · "
            f"{key.input_resolution}×{key.input_resolution}" + (f" b{key.batch_size}" if key.batch_size > 1 else ""))


def side_summary(cell: Cell | None) -> str:
    """One side of a comparison: median and p10-p90, or the cell's state."""
    if cell is None:
        return "—"
    stats = summarize(cell.latencies_ms)
    if stats is None:
        return cell.state
    return f"{fmt_ms(stats.median)} (p10-p90 {stats.p10:.1f}-{stats.p90:.1f})"


def _interval(v: Verdict) -> str:
    """`` (99.9% CI 0.97-1.04×, 6 rounds)``: the interval and, for launch-level verdicts,
    the rounds it rests on and why no more were run when it is still unknown."""
    if not v.ci:
        return ""
    level = f"{100 * v.level:.3g}%"
    if v.rounds is None:
        return f" ({level} CI {v.ci[0]:.2f}-{v.ci[1]:.2f}×, p={v.p_value:.2g})"
    why = f"; stopped: {v.stop_reason}" if v.verdict == "unknown" and v.stop_reason else ""
    return f" ({level} CI {v.ci[0]:.3f}-{v.ci[1]:.3f}×, {v.rounds} rounds{why})"


def verdict_markdown(comparisons: list[CellComparison], baseline_label: str = "Baseline",
                     candidate_label: str = "PR") -> str:
    """Per cell: baseline, candidate, change, verdict — for a PR comment."""
    with_basis = any(c.basis for c in comparisons)
    if with_basis:
        lines = [f"| Cell | {baseline_label} | {candidate_label} | Change | Verdict | Compared with |",
                 "|---|---|---|---|---|---|"]
    else:
        lines = [f"| Cell | {baseline_label} | {candidate_label} | Change | Verdict |", "|---|---|---|---|---|"]
    for comp in comparisons:
        v = comp.verdict
        label = cell_label(comp.key) + (f" *({SIMULATED})*" if comp.simulated else "")
        if v.ratio is None:
            change = comp.note or "—"
        else:
            change = f"{v.change_pct:+.1f}%" + _interval(v)
            if comp.note:
                change += f"; {comp.note}"
        row = (f"| {_cell(label)} | {side_summary(comp.baseline)} | {side_summary(comp.candidate)} | "
               f"{_cell(change)} | {VERDICT_ICON[v.verdict]} |")
        lines.append(row + (f" {_cell(comp.basis or '—')} |" if with_basis else ""))
    counts = {k: sum(c.verdict.verdict == k for c in comparisons) for k in VERDICT_ICON}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    out = "\n".join(lines) + f"\n\n**Summary:** {summary or 'no cells'}.\n"
    if any(c.simulated for c in comparisons):
        out += "\n" + SIM_BANNER + "\n"
    return out


def pr_verdict_markdown(session: Session, base_run_id: str, new_run_id: str,
                        min_effect: float = 0.05) -> tuple[str, list[CellComparison]]:
    """The PR comment's table for two stored runs, and the comparisons behind it
    (raises :class:`~orchestrator.reports.data.RunNotFound`)."""
    comparisons = compare_runs(load_run(session, base_run_id), load_run(session, new_run_id), min_effect)
    return verdict_markdown(comparisons, f"Baseline `{base_run_id}`", f"`{new_run_id}`"), comparisons


def report_markdown(report: Report) -> str:
    run = report.run
    parts = [f"# Device matrix — {run.name} (`{run.id}`)", "",
             f"Trigger: {run.trigger} · status: {run.status} · created {run.created_at:%Y-%m-%d %H:%M} UTC", ""]
    if report.simulated:
        parts += [SIM_BANNER, ""]
    if report.silent:
        parts += ["## ⚠️ Silent cells", ""]
        parts += [f"- **{cell_label(s.key)}**: no results for {s.silent_runs} nightly runs "
                  f"(last result in `{s.last_result_run}` on {s.last_result_at:%Y-%m-%d}; latest state "
                  f"{s.last_state}{': ' + s.last_reason if s.last_reason else ''})" for s in report.silent]
        parts.append("")
    for kind, heading in (("device", "Performance benchmarks"), ("resolution", "Input resolution"),
                          ("architecture", "Architectures"), ("quantization", "Quantization")):
        tables = [t for t in report.tables if t.kind == kind]
        if tables:
            parts += [f"## {heading}", ""] + [table_markdown(t) for t in tables]
    if report.baseline is not None:
        parts += [f"## Against baseline {report.baseline.name} (`{report.baseline.id}`)", "",
                  verdict_markdown(report.comparisons, "Baseline", "This run")]
    changes = [(k, p) for k, pts in report.history.items() for p in pts if p.change]
    if changes:
        parts += ["## Change points (nightly)", ""]
        parts += [f"- {cell_label(k)}: {p.change} from run `{p.run_id}` ({p.created_at:%Y-%m-%d})"
                  for k, p in changes]
    return "\n".join(parts).rstrip() + "\n"
