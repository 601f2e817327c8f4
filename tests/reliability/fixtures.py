"""Environment for the reliability, security and fuzz suites: Redis DB 9 (flushed before
and after), a private database (SQLite file, or a reset PostgreSQL schema when
DATABASE_URL is set, as in tests/conftest.bf_env), a private artifact store, and the
shared ``Procs`` helper for real benchfarm subprocesses. Imported by the conftests of
tests/reliability, tests/security and tests/fuzz."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Procs, service_env

RELIABILITY_REDIS_DB = 9


@pytest.fixture
def rel_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with service_env(tmp_path, shared_artifacts, monkeypatch, RELIABILITY_REDIS_DB, HOME=str(tmp_path / "home")) as env:
        yield env


@pytest.fixture
def rel_procs(rel_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    with Procs(rel_env, tmp_path) as p:
        yield p
