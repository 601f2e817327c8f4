"""Engine and sessions. SQLite file by default, PostgreSQL when DATABASE_URL is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import config
from orchestrator.store import migrations


def engine(url: str | None = None) -> Engine:
    # resolved before the cache: the configured URL may change (tests, demo)
    return _engine(url or config.database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 30})
        sync = config.sqlite_synchronous()

        @event.listens_for(eng, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # WAL lets the CLI read while workers write; foreign keys are off by default.
            # synchronous=NORMAL: in WAL mode a commit is then durable against a crash of the process
            # (every coordinator's exit path) but not of the OS or the power, and writes the WAL
            # without an fsync per commit (~4x less CPU per commit, ~8x less wall time on this
            # host); BENCHFARM_SQLITE_SYNCHRONOUS=FULL restores the fsync. PostgreSQL is unaffected.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        eng = create_engine(url, pool_pre_ping=True)
    # a fresh database is created at the newest revision; an older one is refused until
    # `benchfarm db upgrade` (never altered implicitly by whichever process opens it first)
    migrations.check(eng)
    return eng


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    # one per URL, like the engine: building a sessionmaker costs more than the short
    # sessions the coordinator opens per message
    return sessionmaker(_engine(url), expire_on_commit=False)


@contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error (no half-written state)."""
    with _factory(url or config.database_url())() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
