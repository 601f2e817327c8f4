"""Observability tests: real worker and agent processes on Redis DB 7 and a private database."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Procs, release_env, service_env

OBS_REDIS_DB = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def obs_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env, client = service_env(tmp_path, shared_artifacts, monkeypatch, OBS_REDIS_DB, BENCHFARM_LOG_FORMAT="json")
    yield env
    release_env(client)


@pytest.fixture
def obs_procs(obs_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    p = Procs(obs_env, tmp_path)
    yield p
    p.stop_all()
