"""The README names every command a newcomer can type; selftest says what it needs."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from orchestrator.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands(t: typer.Typer, prefix: str = "") -> list[str]:
    names = [f"{prefix}{c.name or c.callback.__name__}" for c in t.registered_commands]  # type: ignore[union-attr]
    for group in t.registered_groups:
        names.append(f"{prefix}{group.name}")
        names += _commands(group.typer_instance, f"{prefix}{group.name} ")  # type: ignore[arg-type]
    return names


def _mentioned(command: str, text: str) -> bool:
    """``benchfarm hosts drain`` is mentioned by ``benchfarm hosts drain|undrain HOST`` too."""
    group, _, sub = command.rpartition(" ")
    if not group:
        return re.search(rf"benchfarm {re.escape(sub)}\b", text) is not None
    return re.search(rf"benchfarm {re.escape(group)} [^\n]*?\b{re.escape(sub)}\b", text) is not None


def test_readme_names_every_command() -> None:
    text = README.read_text()
    commands = _commands(app)
    assert {"runs", "doctor", "hosts undrain", "tokens revoke", "pr verdict"} <= set(commands)
    missing = [c for c in commands if not _mentioned(c, text)]
    assert not missing, f"README does not mention: {missing}"


def test_selftest_without_a_checkout_says_what_it_needs(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["selftest", "--suite", str(tmp_path)])
    assert out.exit_code == 2 and "source checkout" in out.output and "--suite" in out.output
