"""``benchfarm selftest``: run the chaos suite (tests/reliability, marker ``chaos``) against
the configured Redis and database, so an operator can check a deployment's recovery
behaviour (device loss, harness faults, gating, Redis restart, two coordinators) with the
same invariants CI checks. Needs a source checkout: the tests are not part of the wheel.

The scenarios use Redis DB 9 of the configured server (flushed before and after) and a
private redis-server for the restart scenario; never the DB the farm itself uses.
"""

from __future__ import annotations

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
    keyword: str = typer.Option("", "-k", help="only scenarios matching this pytest -k expression"),
    redis_url: str = typer.Option("", help="Redis server to test against (default: REDIS_URL)"),
    database_url: str = typer.Option("", help="PostgreSQL URL (default: DATABASE_URL, else a temporary SQLite)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="print every scenario's figure line"),
) -> None:
    """Run the chaos scenarios and check the invariants: every job terminal, one result per
    succeeded job, none from a fenced-off attempt, no device left leased, run finalised once."""
    if not SUITE.is_dir():
        typer.echo(f"selftest needs a source checkout: {SUITE} does not exist", err=True)
        raise typer.Exit(2)
    env = dict(os.environ, BENCHFARM_TEST_REDIS=redis_base(redis_url or config.redis_url()))
    if database_url:
        env["DATABASE_URL"] = database_url
    args = [sys.executable, "-m", "pytest", "-m", "chaos", str(SUITE), "-q", "-p", "no:cacheprovider"]
    if keyword:
        args += ["-k", keyword]
    if verbose:
        args += ["-s"]
    code = subprocess.call(args, cwd=ROOT, env=env)
    raise typer.Exit(code)
