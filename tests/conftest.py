"""Shared fixtures: real Redis, a real database file, a private artifact store, and
helpers to run real benchfarm processes (workers, agents) as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator.pr import hooks

# tests call the coordinator's functions directly: wire PR verification in as the worker does
hooks.install()

REDIS_BASE = os.environ.get("BENCHFARM_TEST_REDIS", "redis://127.0.0.1:6379")
# Redis DB 1 belongs to the core integration tests; other suites use their own numbers.
# (BENCHFARM_TEST_REDIS_DB moves it, e.g. to run two suites side by side on one Redis.)
CORE_REDIS_DB = int(os.environ.get("BENCHFARM_TEST_REDIS_DB", "1"))


def redis_or_skip(db: int) -> str:
    url = f"{REDIS_BASE}/{db}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    return url


@pytest.fixture(scope="session")
def shared_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact store for the whole session: each model is exported at most once."""
    return tmp_path_factory.mktemp("artifacts")


def reset_broker_pool() -> None:
    """Drop the Celery app's cached connection/producer pools: they keep the broker URL
    they were created with, so a suite that moves to another Redis DB would otherwise
    keep publishing to the previous suite's DB."""
    from kombu import pools

    from orchestrator.celery_app import app

    pools.reset()  # kombu's global producer pools are keyed by connection: drop them all
    app._after_fork()  # Celery's own reset of the app's connection and producer pools


def point_broker_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.celery_app import app

    monkeypatch.setattr(app.conf, "broker_url", url)
    reset_broker_pool()


@contextmanager
def service_env(tmp_path: Path, artifacts: Path, monkeypatch: pytest.MonkeyPatch, redis_db: int,
                **extra: str) -> Iterator[dict[str, str]]:
    """Point this process (env, Celery) at a flushed Redis DB, a private SQLite file (or a
    reset PostgreSQL schema when DATABASE_URL is set) and an artifact store; the dict is
    the environment for child processes; the DB is flushed again on the way out."""
    url = redis_or_skip(redis_db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "BENCHFARM_HOME": str(tmp_path / "home"), "BENCHFARM_ARTIFACTS": str(artifacts),
           "BENCHFARM_DB": str(tmp_path / "benchfarm.db"), **extra}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        _reset_postgres(env["DATABASE_URL"])
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _migrate()  # as a deployment does (`benchfarm db upgrade`), before any process opens the store
    point_broker_at(url, monkeypatch)
    try:
        yield dict(os.environ)
    finally:
        release_env(client)


def release_env(client: redis.Redis) -> None:
    reset_broker_pool()
    client.flushdb()


@pytest.fixture
def bf_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The core suites' environment (Redis DB CORE_REDIS_DB)."""
    with service_env(tmp_path, shared_artifacts, monkeypatch, CORE_REDIS_DB) as env:
        yield env


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    from orchestrator.store.models import Base

    eng = create_engine(url)  # not store.db.engine(): the schema is dropped here and migrated again
    Base.metadata.drop_all(eng)
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    eng.dispose()


def _migrate() -> None:
    from orchestrator.store import migrations

    migrations.upgrade_url()


class Procs:
    """Child processes started by a test; all are killed (process group) at teardown."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env, self.logdir, self.procs = env, logdir, []

    def start(self, name: str, *args: str, prefix: Sequence[str] = ()) -> subprocess.Popen:
        """``prefix``: a command that execs the benchfarm one (e.g. ``ip netns exec NS``), so
        the process it starts is still the one this helper waits for and kills."""
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen([*prefix, sys.executable, "-m", "orchestrator.cli.main", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def procs(bf_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    with Procs(bf_env, tmp_path) as p:
        yield p


def free_port(addr: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM ``proc`` and wait ``grace_s`` for it, then SIGKILL: a test's server never outlives it."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def register_model_packages(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Register test-only model packages (``import:`` sources) with this process — the
    submitter's spec validation — and, through ``env``, with the worker/exporter processes a
    test starts from it (the exporter checks the list again before running any code)."""
    value = ",".join(packages)
    monkeypatch.setenv("BENCHFARM_MODEL_PACKAGES", value)
    env["BENCHFARM_MODEL_PACKAGES"] = value
