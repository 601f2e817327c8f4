"""``benchfarm runs``: the runs in the results store, newest first, with filters.

``--json`` prints a list of objects with these fields (stable): ``id``, ``short_id``, ``name``,
``trigger``, ``status``, ``finalized``, ``created_at``, ``finished_at`` (ISO 8601, UTC),
``age_s``, ``cells`` (``ok``, ``failed``, ``blocked``, ``pending``: cells of the matrix, repeats
pooled), ``data`` (``simulated`` | ``measured`` | ``mixed`` | ``none``: where the results came from).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.cli.capacity import parse_duration
from orchestrator.cli.common import console, fail
from orchestrator.cli.fit import Col, print_table
from orchestrator.cli.runref import all_run_ids, shortest_unique
from orchestrator.store.db import session
from orchestrator.store.models import Job, Result, Run, utcnow
from orchestrator.store.states import RUN_STATES

COLUMNS = (
    Col("short_id", "run", keep=True), Col("name", "name"), Col("trigger", "trigger", keep=True),
    Col("status", "status", keep=True), Col("ok", "ok", right=True), Col("failed", "failed", right=True),
    Col("blocked", "blocked", right=True), Col("data", "data", keep=True), Col("age", "age", keep=True),
    Col("requested_by", "by", drop=1),
)


def _cell_state(states: list[str]) -> str:
    if all(s == "succeeded" for s in states):
        return "ok"
    for s in ("blocked", "failed"):
        if s in states:
            return s
    return "failed" if "cancelled" in states else "pending"


def age(delta_s: float) -> str:
    """A short age: 45s, 12m, 3h, 5d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta_s >= size:
            return f"{int(delta_s // size)}{unit}"
    return f"{int(max(delta_s, 0))}s"


def list_runs(s: Session, *, trigger: str = "", name: str = "", status: str = "",
              since: datetime | None = None, limit: int = 20) -> list[dict[str, Any]]:
    q = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    for column, value in ((Run.trigger, trigger), (Run.name, name), (Run.status, status)):
        if value:
            q = q.where(column == value)
    if since is not None:
        q = q.where(Run.created_at >= since)
    runs = list(s.scalars(q).all())
    ids = [r.id for r in runs]
    cells: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for j in s.execute(select(Job.run_id, Job.model, Job.backend, Job.device_class, Job.input_resolution,
                              Job.batch_size, Job.state).where(Job.run_id.in_(ids), Job.purpose == "measure")):
        cells[j.run_id][tuple(j[1:6])].append(j.state)
    kinds: dict[str, set[bool]] = defaultdict(set)
    for run_id, simulated in s.execute(select(Job.run_id, Result.simulated).join(Result, Result.job_id == Job.id)
                                       .where(Job.run_id.in_(ids)).distinct()):
        kinds[run_id].add(bool(simulated))
    short = shortest_unique(all_run_ids(s))
    now = utcnow()
    out = []
    for r in runs:
        counts = {"ok": 0, "failed": 0, "blocked": 0, "pending": 0}
        for states in cells[r.id].values():
            counts[_cell_state(states)] += 1
        kind = kinds[r.id]
        data = "none" if not kind else "mixed" if len(kind) == 2 else "simulated" if True in kind else "measured"
        out.append({"id": r.id, "short_id": short.get(r.id, r.id), "name": r.name, "trigger": r.trigger,
                    "status": r.status, "finalized": r.finalized, "requested_by": r.requested_by,
                    "created_at": r.created_at.isoformat(),
                    "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                    "age_s": round((now - r.created_at).total_seconds(), 1), "cells": counts, "data": data})
    return out


def runs_command(
    trigger: str = typer.Option("", "--trigger", help="only runs of this trigger: manual | nightly | pr"),
    name: str = typer.Option("", "--name", help="only runs of the spec with this name (e.g. seed-matrix)"),
    status: str = typer.Option("", "--status", help=f"only runs with this status: {' | '.join(RUN_STATES)}"),
    since: str = typer.Option("", "--since", help="only runs created within this long: 90s, 6h, 7d ..."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10_000, help="at most this many runs"),
    wide: bool = typer.Option(False, "--wide", help="every column, nothing shortened"),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts (fields: see the module docstring)"),
) -> None:
    """Runs in the results store, newest first: id, name, trigger, status, cells ok/failed/blocked,
    simulated or measured, age. Any id shown here (or a unique prefix, latest, latest:NAME) is
    accepted wherever a run id is."""
    if status and status not in RUN_STATES:
        raise fail(f"--status {status!r}: one of {', '.join(RUN_STATES)}", code=2)
    cutoff = utcnow() - timedelta(seconds=parse_duration(since, "--since")) if since else None
    with session() as s:
        rows = list_runs(s, trigger=trigger, name=name, status=status, since=cutoff, limit=limit)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no runs match" if trigger or name or status or since else
                      "no runs yet: benchfarm submit SPEC (or benchfarm demo)")
        return
    table = [{**r, **{k: str(v) for k, v in r["cells"].items()}, "age": age(r["age_s"]),
              "short_id": r["id"] if wide else r["short_id"]} for r in rows]
    print_table(console, COLUMNS, table, wide=wide)
