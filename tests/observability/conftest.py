"""Observability tests: real worker and agent processes on Redis DB 7 and a private database."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import Procs, redis_or_skip

OBS_REDIS_DB = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def obs_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    url = redis_or_skip(OBS_REDIS_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "BENCHFARM_HOME": str(tmp_path / "home"), "BENCHFARM_ARTIFACTS": str(shared_artifacts),
           "BENCHFARM_DB": str(tmp_path / "benchfarm.db"), "BENCHFARM_LOG_FORMAT": "json"}
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from orchestrator.celery_app import app

    monkeypatch.setattr(app.conf, "broker_url", url)
    yield dict(os.environ)
    client.flushdb()


@pytest.fixture
def obs_procs(obs_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    p = Procs(obs_env, tmp_path)
    yield p
    p.stop_all()
