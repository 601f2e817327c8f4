"""``benchfarm export SPEC``: export a matrix spec's artifacts without benchmarking them.

Useful before a run (warm the artifact store, see sizes and delegation) and in PR CI
(does this model still lower to every backend?). Cells this exporter cannot lower (MPS
on Linux) are listed as "needs a macOS exporter", not treated as failures; a cell that
fails to export makes the command exit 1 after the table is printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orchestrator.cli.fit import Col, print_table
from orchestrator.spec.yamlpos import SpecError

# keys are the --json field names
COLUMNS = (Col("model", "model", hoist=True), Col("backend", "backend", keep=True),
           Col("input_resolution", "res", right=True, hoist=True), Col("batch_size", "batch", right=True, hoist=True),
           Col("size_mb", "size MB", right=True), Col("export_s", "export s", right=True, drop=2),
           Col("delegated", "delegated", right=True, drop=1), Col("cache", "cache", keep=True),
           Col("note", "note", note=True))


def _row(req: Any, art: Any = None, hit: bool = False, note: str = "") -> list[str]:
    base = [req.model, req.backend, str(req.input_resolution), str(req.batch_size)]
    if art is None:
        return [*base, "-", "-", "-", "-", note]
    m = art.meta
    ratio = (m.get("delegation") or {}).get("delegated_ratio")
    return [*base, f"{m['size_bytes'] / 1e6:.2f}", f"{m['export_time_s']:.1f}",
            "-" if ratio is None else f"{100 * ratio:.0f}%", "hit" if hit else "miss", ""]


def export_command(
    spec: Annotated[Path, typer.Argument(help="Matrix spec (YAML) whose artifacts to export.")],
    artifacts: Annotated[Path | None, typer.Option(
        "--artifacts", help="Artifact store directory (default: $BENCHFARM_ARTIFACTS).")] = None,
    redis_url: Annotated[str | None, typer.Option(
        "--redis-url", help="Take the per-artifact export lock in this Redis, so exporter workers "
                            "sharing the store never export the same artifact twice.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="every column, notes in the table")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one object per artifact: model, backend, "
                                                         "input_resolution, batch_size, size_mb, export_s, "
                                                         "delegated, cache, note")] = False,
) -> None:
    """Export every (model, backend, resolution, batch) artifact of SPEC and print a table."""
    # Imported here: torch and executorch take seconds to import, `benchfarm --help` should not.
    from orchestrator.export.artifacts import ArtifactStore
    from orchestrator.export.lowering import ExporterUnavailable, exporter_can_lower
    from orchestrator.export.pipeline import export_artifact
    from orchestrator.export.programs import localize_spec_text
    from orchestrator.export.sources import BadSource
    from orchestrator.export.sweep import export_requests
    from orchestrator.spec.matrix import loads_spec
    from orchestrator.spec.yamlpos import read_text

    console = Console()
    store = ArtifactStore(artifacts)
    try:  # a local pte:<path> is read as this user and stored by digest, as `submit` does
        requests = export_requests(loads_spec(localize_spec_text(read_text(spec), str(spec), store), str(spec)))
    except (SpecError, BadSource) as exc:
        # soft_wrap: an error is one line (file:line: field) whatever the terminal's width
        console.print(f"[red]{exc}[/red]", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    client = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=10)
    rows: list[list[str]] = []
    failed = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("exporting", total=len(requests))
        for req in requests:
            progress.update(task, description=f"{req.model} / {req.backend} @{req.input_resolution} "
                                              f"x{req.batch_size}")
            ok, reason = exporter_can_lower(req.backend)
            if not ok and not req.source.startswith("pte:"):
                rows.append(_row(req, note=reason))
            else:
                try:
                    art, hit = export_artifact(req, store, redis_client=client)
                    rows.append(_row(req, art, hit))
                except (ExporterUnavailable, BadSource) as exc:
                    rows.append(_row(req, note=str(exc)))
                    failed += isinstance(exc, BadSource)
                except Exception as exc:  # one cell failing must not hide the others' results
                    failed += 1
                    rows.append(_row(req, note=f"failed: {type(exc).__name__}: {str(exc)[:200]}"))
            progress.advance(task)
    records = [dict(zip([c.key for c in COLUMNS], row, strict=True)) for row in rows]
    if as_json:
        print(json.dumps(records))
    else:
        print_table(console, COLUMNS, records, title=f"artifacts of {spec.name} (store {store.root})", wide=wide)
    if failed:
        raise typer.Exit(1)
