"""One cell's operator profile, and the diff against another run's — shared by
``benchfarm profile RUN CELL [--compare OTHER_RUN]`` and the API's ``/runs/{id}/profiles``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orchestrator.analysis.operators import backend_display, diff, one_sided, shares_text, shown
from orchestrator.reports.data import Cell, load_run
from orchestrator.reports.tables import SIMULATED
from orchestrator.store.profiles import CellProfile


class CellNotFound(LookupError):
    pass


def find_cell(session: Session, run_id: str, text: str) -> Cell:
    """The run's cell named by its label (``tiny_cnn/xnnpack/host-cpu@64x1``) or by a part of
    it that names exactly one cell (``xnnpack``); raises :class:`CellNotFound` listing them."""
    cells = load_run(session, run_id).cells
    exact = [c for c in cells if c.key.label() == text]
    hits = exact or [c for c in cells if text in c.key.label()]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(c.key.label() for c in cells) or "none"
    what = "matches several cells" if hits else "matches no cell"
    raise CellNotFound(f"{text!r} {what} of run {run_id} (cells: {known})")


def cell_document(cell: Cell) -> dict[str, Any]:
    prof = cell.profile
    doc: dict[str, Any] = {"cell": cell.key.label(), "state": cell.state, "simulated": cell.simulated,
                           "profile": prof.as_dict() if prof else None}
    if prof is not None and prof.status == "ok":
        doc["backend_shares"] = shares_text(prof.operators)
        doc["operators_sum_ms"] = sum(op.mean_ms for op in prof.operators)
    return doc


def compare_document(base: Cell, new: Cell) -> dict[str, Any]:
    """The per-operator diff between two runs' profiles of one cell (baseline first)."""
    for side, cell in (("baseline", base), ("this run", new)):
        if cell.profile is None or cell.profile.status != "ok":
            raise CellNotFound(f"{cell.key.label()}: the {side} has no successful profile")
    assert base.profile is not None and new.profile is not None
    changes = diff(base.profile.operators, new.profile.operators)
    pr_only, base_only = one_sided(changes)
    return {"cell": new.key.label(), "simulated": base.profile.simulated or new.profile.simulated,
            "only_in_new": pr_only, "only_in_baseline": base_only, "changes": [c.as_dict() for c in changes]}


def _header(prof: CellProfile) -> list[str]:
    label = f" [{SIMULATED}]" if prof.simulated else ""
    method = f"Method::execute {prof.method_mean_ms:.3f} ms mean; " if prof.method_mean_ms else ""
    total = sum(op.mean_ms for op in prof.operators)
    return [f"profile{label}: {prof.source}, {prof.iterations} profiled iterations; {method}"
            f"operators sum {total:.3f} ms; {'ETRecord' if prof.etrecord else 'no ETRecord'}"
            + (f"; ETDump kept at {prof.etdump_path}" if prof.etdump_path else ""),
            shares_text(prof.operators)]


def profile_text(cell: Cell, limit: int = 40) -> str:
    prof = cell.profile
    if prof is None:
        return f"{cell.key.label()}: no profile (profiling off, or the cell has no result)\n"
    if prof.status != "ok":
        return f"{cell.key.label()}: profiling pass failed ({prof.error_category}): {prof.error}\n"
    lines = [cell.key.label(), *_header(prof), "",
             f"{'#':>4}  {'mean ms':>9} {'p50 ms':>9} {'p90 ms':>9} {'share':>6}  {'backend':<12} operator"]
    ordered = sorted(prof.operators, key=lambda o: -o.mean_ms)
    for op in ordered[:limit]:
        where = backend_display(op.backend if op.delegated else None)
        p90 = f"{op.p90_ms:9.3f}" if op.p90_ms is not None else f"{'—':>9}"
        name = op.name + (f"  [{op.module_path}]" if op.module_path else "")
        lines.append(f"{op.position:>4}  {op.mean_ms:9.3f} {op.p50_ms:9.3f} {p90} {op.share * 100:5.1f}%  "
                     f"{where:<12} {name}")
    if len(ordered) > limit:
        lines.append(f"... {len(ordered) - limit} more operators (--limit, or --json)")
    return "\n".join(lines) + "\n"


def compare_text(doc: dict[str, Any], limit: int = 30) -> str:
    label = f" [{SIMULATED}]" if doc["simulated"] else ""
    lines = [f"{doc['cell']}{label}: operators, baseline → this run (biggest change first)", "",
             f"{'baseline ms':>11} {'this ms':>9} {'change ms':>10}  {'backend':<12} operator"]
    for c in shown(doc["changes"], limit):
        b = f"{c['base_ms']:11.3f}" if c["base_ms"] is not None else f"{'—':>11}"
        n = f"{c['pr_ms']:9.3f}" if c["pr_ms"] is not None else f"{'—':>9}"
        side = {"pr_only": "  (only in this run's program)", "base_only": "  (only in the baseline's)"}.get(
            c["side"], "")
        lines.append(f"{b} {n} {c['delta_ms']:+10.3f}  {c['backend']:<12} {c['label']}{side}")
    if doc["only_in_new"] or doc["only_in_baseline"]:
        lines += ["", f"the graph changed: {doc['only_in_new']} operator(s) only in this run's program, "
                      f"{doc['only_in_baseline']} only in the baseline's"]
    return "\n".join(lines) + "\n"
