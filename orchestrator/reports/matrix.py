"""The device matrix: one table per device class, in the seed guide's layout
(Backend | Model Size | Inference Time | Memory | Power)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from device_inventory.catalog import catalog
from orchestrator.export.registry import UnknownBackend, registry
from orchestrator.store.models import Artifact, Job, Result

SIM = "simulated"


def _rows(session: Session, run_id: str) -> dict[str, list[list[str]]]:
    jobs = session.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.device_class, Job.backend)).all()
    results = {r.job_id: r for r in session.scalars(select(Result).join(Job).where(Job.run_id == run_id))}
    arts = {a.key: a for a in session.scalars(select(Artifact).where(
        Artifact.key.in_({j.artifact_key for j in jobs if j.artifact_key})))}
    tables: dict[str, list[list[str]]] = {}
    for j in jobs:
        try:
            backend = registry().resolve(j.backend).display
        except UnknownBackend:
            backend = j.backend
        art = arts.get(j.artifact_key)
        size = f"{art.size_bytes / 1e6:.1f} MB" if art and art.size_bytes else "—"
        r = results.get(j.id)
        if r:
            tag = f" ({SIM})" if r.simulated else ""
            inference = f"{r.p10_ms:.1f}-{r.p90_ms:.1f} ms (median {r.median_ms:.2f}){tag}"
            memory = f"{r.peak_memory_bytes / 1e6:.0f} MB"
            power = "n/a"
        else:
            inference = f"{j.state}: {j.reason}" if j.reason else j.state
            memory = power = "—"
        label = f"{j.model} @{j.input_resolution}" + (f" b{j.batch_size}" if j.batch_size > 1 else "")
        tables.setdefault(j.device_class, []).append([backend, label, size, inference, memory, power])
    return tables


HEADER = ["Backend", "Model", "Model Size", "Inference Time", "Memory", "Power"]


def render_matrix(session: Session, run_id: str) -> list:
    """Rich tables, one per device class."""
    from rich.table import Table

    out = []
    for cls, rows in _rows(session, run_id).items():
        dc = catalog().classes.get(cls)
        title = f"{dc.reference_device} ({dc.display})" if dc else cls
        t = Table(title=title)
        for h in HEADER:
            t.add_column(h)
        for row in rows:
            t.add_row(*row)
        out.append(t)
    return out


def matrix_markdown(session: Session, run_id: str) -> str:
    parts = []
    for cls, rows in _rows(session, run_id).items():
        dc = catalog().classes.get(cls)
        parts.append(f"### {dc.reference_device} ({dc.display})" if dc else f"### {cls}")
        parts.append("| " + " | ".join(HEADER) + " |")
        parts.append("|" + "---|" * len(HEADER))
        parts += ["| " + " | ".join(r) + " |" for r in rows]
        parts.append("")
    return "\n".join(parts)
