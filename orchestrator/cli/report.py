"""``benchfarm matrix RUN``, ``benchfarm report RUN`` and ``benchfarm compare BASE NEW``.

Plain functions with typer annotations; ``orchestrator/cli/main.py`` registers them.
Output files are written whole (temporary file + rename) so a failed render never
leaves half a report behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path

import typer

from orchestrator.cli.common import console, err_console, fail, resolve_run_or_exit
from orchestrator.reports.data import RunNotFound
from orchestrator.store.db import session

RUN_HELP = "run id, unique prefix, latest or latest:NAME"


class Format(StrEnum):
    md = "md"
    html = "html"
    csv = "csv"
    hud = "hud"
    json = "json"


def write_output(text: str, output: Path | None, quiet: bool = False) -> None:
    """``text`` to stdout, or whole into ``output`` (temporary file + rename)."""
    if output is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
        return
    output = output.expanduser()
    target_dir = output.parent if str(output.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if not quiet:
        err_console.print(f"wrote {output}")


def matrix_command(
    run_id: str = typer.Argument(..., help=RUN_HELP),
    markdown: bool = typer.Option(False, "--markdown", help="markdown instead of terminal tables"),
    wide: bool = typer.Option(False, "--wide", help="every column, budgets with their figures"),
    as_json: bool = typer.Option(False, "--json", help="the device tables as JSON (fields: see matrix_view)"),
) -> None:
    """The device matrix of a run, in the seed guide's layout (one table per device class)."""
    from orchestrator.cli.matrix_view import matrix_json, print_matrix
    from orchestrator.reports.matrix import matrix_markdown

    run_id = resolve_run_or_exit(run_id)
    try:
        with session() as s:
            if as_json:
                print(json.dumps(matrix_json(s, run_id)))
            elif markdown:
                write_output(matrix_markdown(s, run_id), None)
            else:
                print_matrix(console, s, run_id, wide=wide)
    except RunNotFound as exc:
        raise fail(str(exc)) from None


def _guess_format(output: Path | None) -> Format:
    suffix = output.suffix.lower() if output else ""
    return {".html": Format.html, ".htm": Format.html, ".csv": Format.csv, ".json": Format.hud}.get(
        suffix, Format.md)


def report_command(
    run_id: str = typer.Argument(..., help=RUN_HELP),
    output: Path | None = typer.Option(None, "-o", "--output", help="file to write (default: stdout)"),
    fmt: Format | None = typer.Option(None, "--format", "-f",
                                      help="md | html | csv | hud (PyTorch HUD v3) | json (benchfarm cells); "
                                           "default: from the -o suffix, else md"),
    baseline: str | None = typer.Option(None, "--baseline", help="compare against this run"),
    history: int = typer.Option(14, "--history", min=0, max=365, help="nightly runs in trends"),
    silent_after: int = typer.Option(3, "--silent-after", min=1, max=100,
                                     help="flag cells without results for this many nightly runs"),
) -> None:
    """The full report of a run: seed tables, budgets, distributions, trends, regressions."""
    from orchestrator.reports.build import build_report
    from orchestrator.reports.csv_export import report_csv, report_json
    from orchestrator.reports.html import report_html
    from orchestrator.reports.hud import hud_records
    from orchestrator.reports.markdown import report_markdown

    fmt = fmt or _guess_format(output)
    run_id = resolve_run_or_exit(run_id)
    baseline = resolve_run_or_exit(baseline) if baseline else None
    try:
        with session() as s:
            report = build_report(s, run_id, baseline, history, silent_after)
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    render = {
        Format.md: report_markdown, Format.html: report_html, Format.csv: report_csv,
        Format.hud: lambda r: json.dumps(hud_records(r), indent=1) + "\n",
        Format.json: report_json,
    }[fmt]
    write_output(render(report), output)


def compare_command(
    base_run: str = typer.Argument(..., help="baseline run (" + RUN_HELP + ")"),
    new_run: str = typer.Argument(..., help="candidate run (" + RUN_HELP + ")"),
    min_effect: float = typer.Option(0.05, "--min-effect", min=0.0, max=1.0,
                                     help="smallest relative change reported as faster/slower"),
    fail_on_slower: bool = typer.Option(False, "--fail-on-slower", help="exit 2 if any cell is slower"),
) -> None:
    """Verdict per cell (faster / slower / within noise) as a markdown table for a PR comment."""
    from orchestrator.reports.markdown import pr_verdict_markdown

    base_run, new_run = resolve_run_or_exit(base_run), resolve_run_or_exit(new_run)
    try:
        with session() as s:
            text, comparisons = pr_verdict_markdown(s, base_run, new_run, min_effect)
    except RunNotFound as exc:
        raise fail(str(exc)) from None
    write_output(text, None)
    if fail_on_slower and any(c.verdict.verdict == "slower" for c in comparisons):
        raise typer.Exit(2)
