"""The report commands through typer (our own app; main.py registers the same functions)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from orchestrator.cli.report import compare_command, matrix_command, report_command
from orchestrator.reports.hud import validate_hud

from .factory import add_cell, add_run, seed_run

app = typer.Typer()
app.command("matrix")(matrix_command)
app.command("report")(report_command)
app.command("compare")(compare_command)
runner = CliRunner()


def _point_config_at(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands open their own session from the configured database URL."""
    monkeypatch.setenv("DATABASE_URL", db_url)


@pytest.fixture
def seeded(session: Session, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    _point_config_at(db_url, monkeypatch)
    run = seed_run(session)
    session.commit()
    return run.id


def test_matrix_command(seeded: str) -> None:
    out = runner.invoke(app, ["matrix", seeded, "--markdown"])
    assert out.exit_code == 0, out.output
    assert "### iPhone 15 Pro (A17 Pro)" in out.output and "blocked: needs a macOS exporter" in out.output
    rich = runner.invoke(app, ["matrix", seeded], env={"COLUMNS": "250"})
    assert rich.exit_code == 0 and "iPhone 13 (A15 Bionic)" in rich.output and "simulated" in rich.output


@pytest.mark.parametrize(("name", "fmt"), [("report.html", None), ("report.md", None), ("r.csv", None),
                                           ("hud.json", None), ("cells.out", "json")])
def test_report_formats(seeded: str, tmp_path: Path, name: str, fmt: str | None) -> None:
    target = tmp_path / name
    args = ["report", seeded, "-o", str(target)] + (["--format", fmt] if fmt else [])
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    text = target.read_text()
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    if name.endswith(".html"):
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    elif name.endswith(".md"):
        assert "## Performance benchmarks" in text
    elif name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {r["simulated"] for r in rows} == {"true", "false"}
    elif name == "hud.json":
        validate_hud(json.loads(text))
    else:
        assert json.loads(text)["run"]["id"] == seeded


def test_unknown_run_is_a_clear_error(seeded: str, tmp_path: Path) -> None:
    target = tmp_path / "x.html"
    out = runner.invoke(app, ["report", "nope", "-o", str(target)])
    assert out.exit_code == 1 and "no run 'nope'" in out.output
    assert not target.exists()
    assert runner.invoke(app, ["matrix", "nope"]).exit_code == 1
    assert runner.invoke(app, ["report", seeded, "--format", "pdf"]).exit_code == 2


def test_compare_command(session: Session, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_config_at(db_url, monkeypatch)
    base, new = add_run(session, "main"), add_run(session, "pr", "pr")
    add_cell(session, base, "m", "xnnpack", "host-cpu", median=10, cv=0.03, seed=1)
    add_cell(session, new, "m", "xnnpack", "host-cpu", median=11, cv=0.03, seed=2)
    session.commit()
    out = runner.invoke(app, ["compare", base.id, new.id])
    assert out.exit_code == 0, out.output
    assert "🔴 slower" in out.output and f"Baseline `{base.id}`" in out.output
    assert runner.invoke(app, ["compare", base.id, new.id, "--fail-on-slower"]).exit_code == 2
    assert runner.invoke(app, ["compare", base.id, new.id, "--min-effect", "0.5"]).exit_code == 0
