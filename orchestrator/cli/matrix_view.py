"""The device matrix in a terminal: one fitted table per device class (``benchfarm matrix``,
``submit --wait``, the demo).

What every row of a device table shares is said once, in its title: ``simulated`` and the iOS
versions (or a host's CPU model). Failure reasons are footnotes. The seed guide's columns
(Backend | Model Size | Inference Time | Memory | Power) stay; measured extras are dropped,
least useful first, when the terminal is narrow, and columns this module does not know (added
to ``reports.tables`` later) go before any it does. ``--wide`` shows every column in full.

``--json``: a list of device tables, each ``{"id", "title", "simulated", "platforms", "columns",
"rows"}``; a row is ``{"values": {column: text}, "state", "simulated", "reason"}`` (stable names;
the columns are the seed guide's and whatever ``reports.tables`` adds).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, RenderableType
from sqlalchemy.orm import Session

from orchestrator.cli.fit import Col, fit_table, print_fitted
from orchestrator.reports.matrix import run_device_tables
from orchestrator.reports.tables import SIMULATED, Row, Table

# drop ranks of the columns reports.tables builds today; 0 = the seed's own columns
_RANKS = {"Model": 0, "Input": 0, "Backend": 0, "Model Size": 0, "Inference Time": 0, "Memory": 0, "Power": 0,
          "30 FPS budget": 1, "Memory budget": 2, "Median": 3, "10 FPS budget": 3, "Total": 3, "CV": 4,
          "Load": 4, "Preprocessing": 4, "Device memory": 4, "Postprocessing": 5, "Thermal": 5}
_UNKNOWN_RANK = 6
# the short view a run ends with (submit --wait, demo): the seed's columns and two verdicts
COMPACT = ("Model", "Input", "Backend", "Model Size", "Inference Time", "Memory", "Power", "30 FPS budget",
           "Memory budget")
_KEEP = ("Backend", "Inference Time")
IOS = "iOS "


def _column(name: str) -> Col:
    if name == "Notes":
        return Col(name, "Notes", note=True)
    return Col(name, name, drop=_RANKS.get(name, _UNKNOWN_RANK), keep=name in _KEEP, hoist=name == "Model")


def _platforms(rows: list[Row]) -> str:
    """``iOS 15.7.1, 16.1`` from rows that say ``iOS 15.7.1`` and ``iOS 16.1`` (or CPU models)."""
    ios = any(r.platform.startswith(IOS) for r in rows)
    parts = {p for r in rows if r.platform for p in r.platform.removeprefix(IOS).split(", ")}
    return (IOS if ios else "") + ", ".join(sorted(parts)) if parts else ""


def _title(table: Table) -> str:
    measured = [r for r in table.rows if r.platform]
    tags = [SIMULATED] if measured and all(r.simulated for r in measured) else []
    said = "; ".join(p for p in (*tags, _platforms(measured)) if p)
    return f"{table.title} — {said}" if said else table.title


def device_view(table: Table, width: int, *, wide: bool = False, compact: bool = False) -> RenderableType:
    """One device table as a renderable fitted to ``width``."""
    mixed = any(r.simulated for r in table.rows) and not all(r.simulated for r in table.rows if r.platform)
    names = [c for c in table.columns if c != "Notes" and (not compact or c in COMPACT)]
    rows = []
    for r in table.rows:
        cells = dict(zip(table.columns, r.values, strict=True))
        if not wide:  # a budget verdict in a word; --wide gives the figures behind it
            cells = {k: v.split(" ", 1)[0] if k.endswith("budget") else v for k, v in cells.items()}
        note = "; ".join(p for p in (r.reason, SIMULATED if mixed and r.simulated else "", r.sources) if p)
        rows.append({**cells, "Notes": note})
    cols = [_column(c) for c in [*names, "Notes"]]
    # compact: the caption's first sentence only (which models, which input)
    caption = table.note.split(". ", 1)[0] if compact else table.note
    return fit_table(cols, rows, width, title=_title(table), wide=wide, caption=caption)


def matrix_json(session: Session, run_id: str) -> list[dict[str, Any]]:
    return [{"id": t.id, "title": t.title, "simulated": t.simulated, "platforms": _platforms(t.rows),
             "columns": [c for c in t.columns if c != "Notes"],
             "rows": [{"values": {c: v for c, v in zip(t.columns, r.values, strict=True) if c != "Notes"},
                       "state": r.state, "simulated": r.simulated, "reason": r.reason, "sources": r.sources}
                      for r in t.rows]}
            for t in run_device_tables(session, run_id)]


def print_matrix(console: Console, session: Session, run_id: str, *, wide: bool = False,
                 compact: bool = False) -> None:
    for table in run_device_tables(session, run_id):
        print_fitted(console, device_view(table, console.width, wide=wide, compact=compact))


def print_resolution_tables(console: Console, session: Session, run_id: str) -> None:
    """The seed's resolution table (Resolution | Preprocessing | Inference | Total) of every
    model swept over several input resolutions in the run."""
    from orchestrator.reports.build import analyse_run
    from orchestrator.reports.data import load_run
    from orchestrator.reports.tables import resolution_tables

    for table in resolution_tables(analyse_run(load_run(session, run_id))):
        cols = [Col(c, c, note=c == "Notes", keep=c == "Resolution", drop=1 if c == "Accuracy" else 0)
                for c in table.columns]
        rows = [dict(zip(table.columns, r.values, strict=True)) for r in table.rows]
        print_fitted(console, fit_table(cols, rows, console.width, title=_title(table), caption=table.note))
