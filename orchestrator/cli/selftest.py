"""``benchfarm selftest``: run the chaos suite (tests/reliability, marker ``chaos``) against
the configured Redis and database, so an operator can check a deployment's recovery
behaviour (device loss, harness faults, gating, Redis restart, two coordinators) with the
same invariants CI checks. The tests are not part of the wheel: from an installed package,
point ``--suite`` at a checkout's ``tests/reliability`` (the command says so when it has none),
and the ``test`` extra must be installed (pytest).

The scenarios use Redis DB 9 of the configured server (flushed before and after) and a
private redis-server for the restart scenario; never the DB the farm itself uses.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer

from orchestrator import config

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "reliability"


def redis_base(url: str) -> str:
    """redis://host:port/3 -> redis://host:port (the tests pick their own DB number)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def selftest_command(
    suite: Path = typer.Option(SUITE, "--suite", help="the reliability suite of a benchfarm source checkout"),
    keyword: str = typer.Option("", "-k", help="only scenarios matching this pytest -k expression"),
    redis_url: str = typer.Option("", help="Redis server to test against (default: REDIS_URL)"),
    database_url: str = typer.Option("", help="PostgreSQL URL (default: DATABASE_URL, else a temporary SQLite)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="print every scenario's figure line"),
) -> None:
    """Run the chaos scenarios and check the invariants: every job terminal, one result per
    succeeded job, none from a fenced-off attempt, no device left leased, run finalised once."""
    suite = suite.resolve()
    if not (suite / "chaos.py").is_file():
        typer.echo(f"selftest runs the reliability suite of a source checkout, and {suite} is not one (an "
                   "installed wheel ships no tests): git clone the benchfarm repository, then either "
                   "pip install -e '.[test]' there and run benchfarm selftest, or pass "
                   "--suite CHECKOUT/tests/reliability", err=True)
        raise typer.Exit(2)
    if importlib.util.find_spec("pytest") is None:
        typer.echo("selftest needs pytest: pip install 'benchfarm[test]' (or pip install -e '.[test]')", err=True)
        raise typer.Exit(2)
    env = dict(os.environ, BENCHFARM_TEST_REDIS=redis_base(redis_url or config.redis_url()))
    if database_url:
        env["DATABASE_URL"] = database_url
    args = [sys.executable, "-m", "pytest", "-m", "chaos", str(suite), "-q", "-p", "no:cacheprovider"]
    if keyword:
        args += ["-k", keyword]
    if verbose:
        args += ["-s"]
    # from the checkout's root (pytest puts it on sys.path for the suite's `tests.` imports)
    code = subprocess.call(args, cwd=suite.parents[1], env=env)
    raise typer.Exit(code)
