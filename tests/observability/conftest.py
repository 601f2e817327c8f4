"""Observability tests: real worker and agent processes on Redis DB 7 and a private database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Procs, service_env

OBS_REDIS_DB = 7


@pytest.fixture
def obs_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with service_env(tmp_path, shared_artifacts, monkeypatch, OBS_REDIS_DB, BENCHFARM_LOG_FORMAT="json") as env:
        yield env


@pytest.fixture
def obs_procs(obs_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    with Procs(obs_env, tmp_path) as p:
        yield p
