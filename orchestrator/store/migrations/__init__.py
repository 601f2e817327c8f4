"""The results store's schema migrations (Alembic), run explicitly: ``benchfarm db upgrade``.

- :func:`upgrade` brings a database to the newest revision: a fresh one, one at an older
  revision, or one made before migrations (no ``alembic_version``: revision 0001 adopts it).
- :func:`check` is what every process does when it opens the store: a fresh, empty database
  is created at head (the models' ``create_all`` then ``stamp``, Alembic's recipe for a new
  database); one at head is used; any other is refused with the command that upgrades it.
  Nothing alters an existing database implicitly.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, Engine

from orchestrator import config
from orchestrator.store.models import Base

HERE = Path(__file__).resolve().parent


class SchemaOutdated(RuntimeError):
    """The database is not at the revision this benchfarm needs; the message says what to run."""


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    return str(ScriptDirectory(str(HERE)).get_current_head())


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (revision before, revision after)."""
    with engine.begin() as conn:
        before = current(conn)
        command.upgrade(_config(conn), revision)
        return before, current(conn)


def upgrade_url(url: str | None = None, revision: str = "head") -> tuple[str | None, str | None]:
    """:func:`upgrade` the database at ``url`` (default: the configured one) on an engine of its own."""
    eng = create_engine(url or config.database_url())
    try:
        return upgrade(eng, revision)
    finally:
        eng.dispose()


def check(engine: Engine) -> None:
    with engine.begin() as conn:
        rev = current(conn)
        if rev == head():
            return
        fresh = rev is None and not inspect(conn).get_table_names()
    race: Exception | None = None
    if fresh:
        try:
            with engine.begin() as conn:
                Base.metadata.create_all(conn)
                command.stamp(_config(conn), "head")
            return
        except Exception as exc:  # another process created it at the same moment: fine if at head now
            race = exc
    with engine.connect() as conn:  # another process may have created or upgraded it meanwhile
        rev = current(conn)
        if rev == head():
            return
    made = f"at revision {rev}" if rev else "made before schema migrations"
    raise SchemaOutdated(f"the results database is {made}; this benchfarm needs {head()}: "
                         "run `benchfarm db upgrade` (back it up first)") from race
