"""The device matrix as markdown: one table per device class, in the seed guide's layout
(Backend | Model Size | Inference Time | Memory | Power, then measured extras). Failed /
blocked cells are rows with their reason. The terminal view is ``orchestrator.cli.matrix_view``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.reports.build import analyse_run
from orchestrator.reports.data import load_run
from orchestrator.reports.markdown import SIM_BANNER, table_markdown
from orchestrator.reports.tables import Table, device_tables


def run_device_tables(session: Session, run_id: str) -> list[Table]:
    """A run's device tables (raises ``reports.data.RunNotFound``)."""
    return device_tables(analyse_run(load_run(session, run_id)))


def matrix_markdown(session: Session, run_id: str) -> str:
    tables = run_device_tables(session, run_id)
    banner = [SIM_BANNER, ""] if any(t.simulated for t in tables) else []
    return "\n".join(banner + [table_markdown(t) for t in tables])
