"""Capacity tests: a private SQLite database per test and Redis DB 7 (flushed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.conftest import redis_or_skip

CAPACITY_REDIS_DB = 7


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "capacity.db"
    monkeypatch.setenv("BENCHFARM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BENCHFARM_DB", str(db))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # nothing listens on port 1: the live part reports 'unavailable', history still stands
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    return db


@pytest.fixture
def redis7(db_env: Path, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    url = redis_or_skip(CAPACITY_REDIS_DB)
    monkeypatch.setenv("REDIS_URL", url)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
