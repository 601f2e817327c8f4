"""Environment for the reliability, security and fuzz suites: Redis DB 9 (flushed before
and after), a private database (SQLite file, or a reset PostgreSQL schema when
DATABASE_URL is set, as in tests/conftest.bf_env), a private artifact store, and the
shared ``Procs`` helper for real benchfarm subprocesses. Imported by the conftests of
tests/reliability, tests/security and tests/fuzz."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import Procs, _reset_postgres, redis_or_skip

RELIABILITY_REDIS_DB = 9


@pytest.fixture
def rel_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    url = redis_or_skip(RELIABILITY_REDIS_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "BENCHFARM_HOME": str(tmp_path / "home"), "BENCHFARM_ARTIFACTS": str(shared_artifacts),
           "BENCHFARM_DB": str(tmp_path / "benchfarm.db"), "HOME": str(tmp_path / "home")}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        _reset_postgres(env["DATABASE_URL"])
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    point_broker_at(url, monkeypatch)
    yield dict(os.environ)
    reset_broker_pool()
    client.flushdb()


def reset_broker_pool() -> None:
    """Drop the Celery app's cached connection/producer pools: they keep the broker URL
    they were created with, so a test that changes the URL would publish to the old one.
    (Not closed: kombu's global registry hands the same pool to the next user of that URL.)"""
    from orchestrator.celery_app import app

    app._after_fork()  # Celery's own reset of both references


def point_broker_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.celery_app import app

    monkeypatch.setattr(app.conf, "broker_url", url)
    reset_broker_pool()


@pytest.fixture
def rel_procs(rel_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    p = Procs(rel_env, tmp_path)
    yield p
    p.stop_all()
