"""PR cells against their baseline, and the automatic verify re-run of a suspected regression.

Each PR cell is compared with the best baseline available, in this order:
  1. *interleaved A/B*: the baseline's artifact measured in the same lease on the same
     device, alternating with the PR's (``Result.ab``) — drift between devices and over
     time cancels. The verdict is launch-level (``analysis.launches``): per-round median
     ratios, paired t-interval over rounds, outcomes different / same / unknown;
  2. the newest baseline run's results for the cell (``orchestrator.pr.baselines``), with the
     iteration-level test (``analysis.regression``; unpaired, one launch per side).

A cell that comes out *slower* is not reported at once: when the PR's jobs are done the
coordinator adds one *verify* job per suspected cell (a fresh lease, possibly another
device) and finalises the run only after it. The cell stays *slower* only when the verify
run is slower too; otherwise it is reported within noise, with both figures, so a flaky
device cannot fail a PR on its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.analysis.compare import CellComparison
from orchestrator.analysis.launches import decide, looks_for, round_ratios
from orchestrator.analysis.regression import Verdict, compare_cells
from orchestrator.pr.baselines import find_baseline_cells
from orchestrator.reports.data import Cell, CellKey, RunData, load_run
from orchestrator.store.models import Job, Result

AB_BASIS = "interleaved A/B (same device, same lease)"
DEFAULT_MIN_EFFECT = 0.05


@dataclass
class _Samples:
    pr: list[float] = field(default_factory=list)
    ab_baseline: list[float] = field(default_factory=list)
    simulated: bool = False
    jobs: int = 0
    ratios: list[float] = field(default_factory=list)  # per-round A/B median ratios, every job
    looks: int = 1
    stop_reasons: list[str] = field(default_factory=list)

    def launch_verdict(self, min_effect: float) -> Verdict:
        d = decide(self.ratios, min_effect, looks=self.looks)
        stop = ", ".join(sorted(set(self.stop_reasons) - {""}))
        return Verdict(d.verdict, d.ratio, d.p_value, d.ci, d.level, d.rounds, stop)  # type: ignore[arg-type]


def _samples(s: Session, run_id: str) -> dict[tuple[CellKey, str], _Samples]:
    """Per (cell, purpose): the PR's latencies and the in-lease baseline's, pooled over jobs."""
    out: dict[tuple[CellKey, str], _Samples] = defaultdict(_Samples)
    rows = s.execute(select(Job, Result).outerjoin(Result, Result.job_id == Job.id)
                     .where(Job.run_id == run_id).order_by(Job.repeat_index)).all()
    for job, result in rows:
        smp = out[(CellKey.of(job), job.purpose)]
        smp.jobs += 1
        if result is None:
            continue
        smp.pr += list(result.document.get("latencies_ms", []))
        smp.simulated |= bool(result.simulated)
        if result.ab and result.ab.get("latencies_ms"):
            smp.ab_baseline += list(result.ab["latencies_ms"])
            smp.simulated |= bool(result.ab.get("simulated"))
            smp.ratios += round_ratios(result.ab.get("rounds") or [])
            smp.looks = looks_for(job.ab_rounds, int((job.ab_plan or {}).get("max_rounds") or job.ab_rounds))
            smp.stop_reasons.append(str((result.ab.get("adaptive") or {}).get("stop_reason", "")))
    return out


@dataclass(frozen=True)
class PrComparison:
    comparisons: list[CellComparison]
    baseline_runs: dict[CellKey, str]  # cells compared with a stored baseline run
    candidate: RunData


def _compare(key: CellKey, smp: _Samples | None, cand: Cell | None, hist: Cell | None, hist_run: str,
             min_effect: float) -> CellComparison:
    if smp is None or not smp.pr:
        note = f"PR {cand.state}" + (f": {cand.reason}" if cand and cand.reason else "") if cand else "not in PR"
        return CellComparison(key, hist, cand, Verdict("insufficient data", None, None, None), note)
    pr_cell = replace(cand, latencies_ms=smp.pr, simulated=smp.simulated) if cand else Cell(key, "ok")
    if smp.ab_baseline:
        base = Cell(key, "ok", simulated=smp.simulated, latencies_ms=smp.ab_baseline)
        return CellComparison(key, base, pr_cell, smp.launch_verdict(min_effect), basis=AB_BASIS)
    if hist is not None and hist.has_results:
        return CellComparison(key, hist, pr_cell, compare_cells(hist.latencies_ms, smp.pr, min_effect),
                              basis=f"baseline run `{hist_run}`")
    return CellComparison(key, hist, pr_cell, Verdict("insufficient data", None, None, None),
                          "not in baseline")


def compare_pr_run(s: Session, run_id: str, branch: str = "main",
                   min_effect: float = DEFAULT_MIN_EFFECT) -> PrComparison:
    """Every cell of a PR run against its baseline, the verify re-run taken into account
    (raises ``reports.data.RunNotFound``)."""
    candidate = load_run(s, run_id)
    samples = _samples(s, run_id)
    cells = candidate.by_key()
    found = find_baseline_cells(s, cells.keys(), branch, exclude_run=run_id)
    hist_runs = {k: v.run_id for k, v in found.items()}
    loaded = {rid: load_run(s, rid).by_key() for rid in set(hist_runs.values())}
    comparisons, used_runs = [], {}
    for key in sorted(cells):
        hist_run = hist_runs.get(key, "")
        hist = loaded[hist_run].get(key) if hist_run else None
        first = _compare(key, samples.get((key, "measure")), cells[key], hist, hist_run, min_effect)
        verify = samples.get((key, "verify"))
        if verify is not None:
            first = _with_verify(first, _compare(key, verify, cells[key], hist, hist_run, min_effect), verify)
        if first.basis.startswith("baseline run"):
            used_runs[key] = hist_run
        comparisons.append(first)
    return PrComparison(comparisons, used_runs, candidate)


def _with_verify(first: CellComparison, again: CellComparison, verify: _Samples) -> CellComparison:
    if first.verdict.verdict != "slower":
        return first
    if not verify.pr:
        return replace(first, note="verify re-run produced no result; regression unconfirmed")
    if again.verdict.verdict == "slower":
        return replace(first, note=f"confirmed by the verify re-run ({again.verdict.change_pct:+.1f}%)")
    if again.verdict.verdict == "unknown":  # the re-run could not decide: neither can we
        return replace(first, verdict=replace(first.verdict, verdict="unknown"),
                       note=f"suspected {first.verdict.change_pct:+.1f}% undecided by the verify re-run "
                            f"({again.verdict.change_pct:+.1f}%, {again.verdict.rounds} rounds)")
    change = f"{again.verdict.change_pct:+.1f}%" if again.verdict.ratio is not None else "no verdict"
    return replace(first, verdict=replace(first.verdict, verdict="within noise"),
                   note=f"suspected {first.verdict.change_pct:+.1f}% not confirmed by the verify re-run "
                        f"({change}, {again.verdict.verdict})")


def suspected_regressions(s: Session, run_id: str, branch: str = "main",
                          min_effect: float = DEFAULT_MIN_EFFECT) -> list[CellKey]:
    """Cells of a PR run whose first measurement is slower than the baseline."""
    return [c.key for c in compare_pr_run(s, run_id, branch, min_effect).comparisons
            if c.verdict.verdict == "slower"]
