"""The service suites' environment: Redis DB 8 (flushed), a private store, and a private
results database — a SQLite file, or a fresh PostgreSQL schema when DATABASE_URL is set.

Imported by the conftest of tests/api, tests/scheduling and tests/pr.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.conftest import point_broker_at, redis_or_skip, release_env

SERVICE_REDIS_DB = int(os.environ.get("BENCHFARM_TEST_SERVICE_REDIS_DB", "8"))  # movable, like the core DB


def _postgres_schema(base: str) -> Iterator[str]:
    schema = f"bf_svc_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        from orchestrator.store.db import engine

        engine(url).dispose()  # close pooled connections before the schema goes
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def svc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    url = redis_or_skip(SERVICE_REDIS_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "BENCHFARM_HOME": str(tmp_path / "home"),
           "BENCHFARM_ARTIFACTS": str(tmp_path / "artifacts"), "BENCHFARM_DB": str(tmp_path / "benchfarm.db")}
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("BENCHFARM_WEBHOOK_URL", raising=False)
    pg = os.environ.get("DATABASE_URL", "")
    schema = _postgres_schema(pg) if pg.startswith("postgresql") else None
    if schema is not None:
        env["DATABASE_URL"] = next(schema)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    point_broker_at(url, monkeypatch)
    yield dict(os.environ)
    release_env(client)
    if schema is not None:
        schema.close()
