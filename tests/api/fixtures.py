"""The service suites' environment: Redis DB 8 (flushed), a private SQLite file and store.

Imported by the conftest of tests/api, tests/scheduling and tests/pr.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import redis_or_skip

SERVICE_REDIS_DB = 8


@pytest.fixture
def svc_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    url = redis_or_skip(SERVICE_REDIS_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "BENCHFARM_HOME": str(tmp_path / "home"),
           "BENCHFARM_ARTIFACTS": str(tmp_path / "artifacts"), "BENCHFARM_DB": str(tmp_path / "benchfarm.db")}
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from orchestrator.celery_app import app

    monkeypatch.setattr(app.conf, "broker_url", url)
    yield dict(os.environ)
    client.flushdb()
