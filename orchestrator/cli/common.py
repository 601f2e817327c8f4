"""Shared CLI plumbing: console, errors, waiting for runs with a progress bar."""

from __future__ import annotations

import time

import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.store.db import session
from orchestrator.store.models import Job, Run
from orchestrator.store.states import JOB_TERMINAL

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    # soft_wrap: one line whatever the width, so ids and file:line references stay whole
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def resolve_run_or_exit(ref: str) -> str:
    """The run id a typed reference (id, unique prefix, latest, latest:NAME) names, or exit 1."""
    from orchestrator.cli.runref import RefError, resolve_run

    try:
        with session() as s:
            return resolve_run(s, ref)
    except RefError as exc:
        raise fail(str(exc)) from None


def fleet_or_exit() -> Fleet:
    fleet = Fleet.from_url(config.redis_url())
    try:
        fleet.ping()
    except redis.RedisError as exc:
        raise fail(f"Redis at {config.redis_url()} does not answer ({exc}); start one or set REDIS_URL") from None
    return fleet


def wait_for_run(run_id: str, timeout_s: float = 3600, show: bool = True) -> str:
    """Block until the run is finalised; a rich progress bar counts terminal jobs."""
    deadline = time.monotonic() + timeout_s
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=console,
                  disable=not show, transient=False) as progress:
        task = progress.add_task(f"run {run_id}", total=None, states="")
        while True:
            with session() as s:
                run = s.get(Run, run_id)
                if run is None:
                    raise fail(f"no run {run_id!r}")
                rows = s.execute(select(Job.state, func.count()).where(Job.run_id == run_id)
                                 .group_by(Job.state)).all()
            counts = dict(rows)
            total = sum(counts.values())
            done = sum(n for st, n in counts.items() if st in JOB_TERMINAL)
            states = " ".join(f"{st}={n}" for st, n in sorted(counts.items()))
            progress.update(task, total=total, completed=done, states=states)
            if run.finalized:
                return run.status
            if time.monotonic() > deadline:
                raise fail(f"run {run_id} not finished after {timeout_s:.0f} s ({states})")
            time.sleep(0.5)
