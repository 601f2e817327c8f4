"""``benchfarm profile RUN CELL [--compare OTHER_RUN]``: a cell's operator table from its
profiling pass, or the per-operator diff against the same cell in another run.

CELL is the cell's label (``tiny_cnn/xnnpack/host-cpu@64x1``, as ``benchfarm status`` shows
it) or any part of it that names exactly one cell of the run.
"""

from __future__ import annotations

import json

import typer

from orchestrator.cli.common import console, fail, resolve_run_or_exit
from orchestrator.store.db import session


def profile_command(
    run: str = typer.Argument(..., help="run id, unique prefix, latest or latest:NAME"),
    cell: str = typer.Argument(..., help="cell label or a unique part of it (e.g. xnnpack/host-cpu)"),
    compare: str = typer.Option("", "--compare", help="another run: print the per-operator diff (it → RUN)"),
    limit: int = typer.Option(40, help="operators listed (largest first)"),
    as_json: bool = typer.Option(False, "--json", help="the API's document instead of a table"),
) -> None:
    """Print a cell's per-operator profile, or its diff against OTHER_RUN."""
    from orchestrator.reports import profile_view as view

    run_id = resolve_run_or_exit(run)
    other_id = resolve_run_or_exit(compare) if compare else ""
    try:
        with session() as s:
            mine = view.find_cell(s, run_id, cell)
            if other_id:
                doc = view.compare_document(view.find_cell(s, other_id, mine.key.label()), mine)
                text = view.compare_text(doc, limit)
            else:
                doc = view.cell_document(mine)
                text = view.profile_text(mine, limit)
    except view.CellNotFound as exc:
        raise fail(str(exc)) from None
    if as_json:
        console.print_json(json.dumps(doc))
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
