"""`benchfarm export SPEC`, through a real typer app."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from orchestrator.cli.export import export_command

from .conftest import TINY_RES

app = typer.Typer()
app.command()(export_command)


def _invoke(args: list[str], width: int = 80):
    return CliRunner().invoke(app, args, env={"COLUMNS": str(width)})


def test_export_prints_a_table_with_hits_and_macos_cells(tmp_path: Path, store, tiny_xnnpack) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""name: cli
models: [tiny_cnn]
backends: [xnnpack, mps]
devices: [A17-Pro]
parameters: {{input_resolution: [{TINY_RES}]}}
""")
    result = _invoke([str(spec), "--artifacts", str(store.root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines) and "model tiny_cnn" in result.output.replace("\n", "")
    xnn = next(line for line in lines if line.startswith("xnnpack "))
    assert "hit" in xnn and "100%" in xnn and f"{tiny_xnnpack[0].meta['size_bytes'] / 1e6:.2f}" in xnn
    mps = next(line for line in lines if line.startswith("mps "))  # the reason is a footnote
    assert mps.rstrip().endswith("[1]") and "[1] needs a macOS exporter" in result.output
    wide = _invoke([str(spec), "--artifacts", str(store.root), "--wide"]).output.splitlines()
    assert any("mps" in line and "tiny_cnn" in line and "needs a macOS exporter" in line for line in wide)
    records = json.loads(_invoke([str(spec), "--artifacts", str(store.root), "--json"]).output)
    assert [(r["backend"], r["cache"]) for r in records] == [("xnnpack", "hit"), ("mps", "-")]
    assert records[1]["note"].startswith("needs a macOS exporter")


def test_bad_spec_names_file_and_line(tmp_path: Path, store) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\nmodels: [tiny_cnn]\nbackends: [xnnpack, MSP]\ndevices: [A17-Pro]\n")
    result = _invoke([str(spec), "--artifacts", str(store.root)])
    assert result.exit_code == 2
    assert "bad.yaml:3: backends[1]: unknown backend 'MSP'" in result.output
