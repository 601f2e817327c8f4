"""Engine and sessions. SQLite file by default, PostgreSQL when DATABASE_URL is set."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache

from sqlalchemy import create_engine, event, make_url
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


class SqliteWriteGate:
    """One writer at a time on a SQLite file, handed over the moment it is free.

    SQLite lets one transaction write; a writer that finds the lock taken sleeps in its busy
    handler (1, 2, 5, 10 ... 100 ms) and retries, so under contention the lock sits idle while
    the waiters sleep: two coordinator processes recorded 1.1x the reports of one. Writers that
    queue here instead (a thread lock within the process, ``flock`` on ``<db>.write-lock``
    across processes) are woken by the kernel as the holder lets go. Only the hot write paths
    take the gate; every other writer keeps SQLite's own lock, which still guards correctness
    (a gated writer waits for an ungated one in the busy handler; the ungated never waits here).
    A holder that dies lets go with its descriptor; one that is frozen (SIGSTOP, a paused VM)
    holds the others until it resumes, as its open SQLite transaction would: they then wait
    here instead of failing with "database is locked" after the 30-s busy timeout.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd = -1
        self._pid = 0  # a forked child opens its own descriptor (a shared one would share the lock)
        # and gets a fresh thread lock: a fork while another thread held this one would leave it
        # held for ever in the child (the default pool is threads; --pool prefork forks)
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._mutex, self._fd, self._pid = threading.Lock(), -1, 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            if self._pid != os.getpid():
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without the GIL
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


@lru_cache(maxsize=8)
def _gate(url: str) -> SqliteWriteGate | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return SqliteWriteGate(f"{parsed.database}.write-lock")


def write_gate(url: str | None = None) -> AbstractContextManager[None]:
    """Hold around a hot write transaction (see :class:`SqliteWriteGate`); nothing on PostgreSQL,
    whose row locks let writers of different rows go on at once."""
    gate = _gate(url or config.database_url())
    return gate.held() if gate else nullcontext()
