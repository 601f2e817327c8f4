"""Health-check suites: their own Redis DB (11), so they run beside the other suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Procs, service_env

HEALTH_REDIS_DB = 11


@pytest.fixture
def hc_env(tmp_path: Path, shared_artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with service_env(tmp_path, shared_artifacts, monkeypatch, HEALTH_REDIS_DB, BENCHFARM_HEALTH_RECHECK_S="2") as env:
        yield env


@pytest.fixture
def hc_procs(hc_env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    with Procs(hc_env, tmp_path) as p:
        yield p
