"""``benchfarm db upgrade`` / ``benchfarm db current``: the results store's schema migrations, run
explicitly (orchestrator.store.migrations). A process that opens a database at an older
revision refuses it and names this command."""

from __future__ import annotations

import typer
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from orchestrator import config
from orchestrator.cli.common import console
from orchestrator.store import migrations

db_app = typer.Typer(help="the results database's schema (Alembic migrations)", no_args_is_help=True)


def _engine(url: str | None) -> Engine:  # not store.db.engine(): that one refuses an old schema
    return create_engine(url or config.database_url())


@db_app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="target revision"),
                    url: str = typer.Option("", help="database URL (default: the configured one)")) -> None:
    """Upgrade the database to the newest schema (a fresh one is created; one made by an earlier
    benchfarm keeps its rows)."""
    before, after = migrations.upgrade_url(url or None, revision)
    console.print(f"database schema: {before or 'none'} -> {after}")


@db_app.command("current")
def current_command(url: str = typer.Option("", help="database URL (default: the configured one)")) -> None:
    """The database's schema revision and the one this benchfarm needs."""
    with _engine(url or None).connect() as conn:
        console.print(f"database schema: {migrations.current(conn) or 'none'} (this benchfarm needs "
                      f"{migrations.head()})")
