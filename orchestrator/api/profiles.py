"""``/runs/{id}/profiles``: per-operator profiles of a run's cells, and one cell's diff
against another run (``?compare=OTHER_RUN``). Every document carries ``simulated``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session

from orchestrator.api.deps import get_session
from orchestrator.reports import profile_view as view
from orchestrator.reports.data import RunNotFound, load_run

router = APIRouter(prefix="/runs", tags=["profiles"])


@router.get("/{run_id}/profiles")
def run_profiles(run_id: str, s: Session = Depends(get_session)) -> dict[str, Any]:
    """Every cell's operator table (operators with p50/p90/mean, share, delegated, backend, module path)."""
    try:
        data = load_run(s, run_id)
    except RunNotFound:
        raise HTTPException(404, f"no run {run_id!r}") from None
    cells = [view.cell_document(c) for c in data.cells]
    return {"run_id": run_id, "simulated": any(c["simulated"] or (c["profile"] or {}).get("simulated")
                                               for c in cells), "cells": cells}


@router.get("/{run_id}/profiles/{cell:path}")
def cell_profile(run_id: str, cell: str, compare: str | None = Query(None, max_length=64),
                 s: Session = Depends(get_session)) -> dict[str, Any]:
    """One cell (its label or a unique part of it); with ``compare``, the operator diff
    from that run's profile of the same cell to this run's."""
    try:
        mine = view.find_cell(s, run_id, cell)
        if compare:
            return view.compare_document(view.find_cell(s, compare, mine.key.label()), mine)
        return view.cell_document(mine)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except view.CellNotFound as exc:
        raise HTTPException(404, str(exc)) from None
