"""``benchfarm status RUN``: a run's status and every job's state, fitted to the terminal.

``--json`` prints the run as ``orchestrator.coordinator.run_state`` returns it (stable fields: ``id``,
``name``, ``trigger``, ``status``, ``finalized``, ``created_at``, ``finished_at``, ``summary``,
``results``, and ``jobs``: ``id``, ``model``, ``backend``, ``device_class``, ``input_resolution``,
``batch_size``, ``repeat``, ``state``, ``reason``, ``attempts``, ``purpose``, ``ab``).
"""

from __future__ import annotations

import json

import typer

from orchestrator.cli.common import console, fail, resolve_run_or_exit
from orchestrator.cli.fit import Col, print_table
from orchestrator.cli.runref import shortest_unique

COLUMNS = (
    Col("short_id", "job", keep=True), Col("model", "model", hoist=True), Col("backend", "backend", keep=True),
    Col("device_class", "class", keep=True, hoist=True), Col("input", "input", drop=2, hoist=True),
    Col("repeat", "rep", drop=3, right=True), Col("state", "state", keep=True),
    Col("attempts", "tries", drop=1, right=True), Col("reason", "reason", note=True),
)


def status_command(run_id: str = typer.Argument(..., help="run id, unique prefix, latest or latest:NAME"),
                   wide: bool = typer.Option(False, "--wide", help="every column, nothing shortened"),
                   as_json: bool = typer.Option(False, "--json", help="JSON for scripts")) -> None:
    """A run's status and every job's state (reasons as footnotes under the table)."""
    from orchestrator.coordinator.run_state import RunNotFound, run_state

    run_id = resolve_run_or_exit(run_id)
    try:
        state = run_state(run_id)
    except RunNotFound:
        raise fail(f"no run {run_id!r}") from None
    if as_json:
        print(json.dumps(state))
        return
    short = shortest_unique(j["id"] for j in state["jobs"])
    rows = [{**{k: str(v) for k, v in j.items()}, "short_id": j["id"] if wide else short[j["id"]],
             "input": f"{j['input_resolution']} b{j['batch_size']}"} for j in state["jobs"]]
    title = f"run {state['id']} {state['name']} ({state['trigger']}): {state['status']}"
    print_table(console, COLUMNS, rows, title=title, wide=wide)
