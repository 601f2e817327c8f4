"""The device matrix: one table per device class, in the seed guide's layout
(Backend | Model Size | Inference Time | Memory | Power, then measured extras), for the
terminal (rich) and for markdown. Failed / blocked cells are rows with their reason."""

from __future__ import annotations

from rich.table import Table as RichTable
from rich.text import Text
from sqlalchemy.orm import Session

from orchestrator.reports.build import analyse_run
from orchestrator.reports.data import load_run
from orchestrator.reports.markdown import SIM_BANNER, table_markdown
from orchestrator.reports.tables import SIMULATED, Table, device_tables

_STATE_STYLE = {"failed": "red", "blocked": "magenta", "cancelled": "dim", "partial": "yellow"}


def _device_tables(session: Session, run_id: str) -> list[Table]:
    return device_tables(analyse_run(load_run(session, run_id)))


def _rich_cell(text: str) -> Text:
    if text.startswith("pass"):
        return Text(text, style="green")
    if text.startswith("fail"):
        return Text(text, style="bold red")
    out = Text(text)
    out.highlight_words([SIMULATED], style="black on yellow")
    return out


# what a terminal shows by default: the seed's columns, the budget verdicts in a word, and
# the notes (OS version, failure reasons); `benchfarm report` has every column
COMPACT_COLUMNS = ("Model", "Backend", "Model Size", "Inference Time", "Memory", "Power", "30 FPS budget",
                   "Memory budget", "Notes")


def _compact(col: str, value: str) -> str:
    return value.split(" ", 1)[0] if col.endswith("budget") else value


def rich_table(table: Table, compact: bool = False) -> RichTable:
    t = RichTable(title=table.title + (f" [{SIMULATED}]" if table.simulated else ""), caption=table.note)
    keep = [i for i, c in enumerate(table.columns) if not compact or c in COMPACT_COLUMNS]
    for i in keep:
        t.add_column(table.columns[i], overflow="fold")
    for row in table.rows:
        values = [_compact(table.columns[i], row.values[i]) if compact else row.values[i] for i in keep]
        t.add_row(*(_rich_cell(v) for v in values), style=_STATE_STYLE.get(row.state))
    return t


def render_matrix(session: Session, run_id: str, compact: bool = False) -> list[RichTable]:
    """Rich tables, one per device class (``compact``: the seed's columns and verdicts only)."""
    return [rich_table(t, compact) for t in _device_tables(session, run_id)]


def matrix_markdown(session: Session, run_id: str) -> str:
    tables = _device_tables(session, run_id)
    banner = [SIM_BANNER, ""] if any(t.simulated for t in tables) else []
    return "\n".join(banner + [table_markdown(t) for t in tables])
