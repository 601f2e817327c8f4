"""Shared fixtures: one artifact store for the session, each heavy artifact exported once.

Exports cost seconds to tens of seconds on this machine, so tests share session-scoped
artifacts (tiny_cnn at 64x64 for most; MobileNetV3-Small only for the INT8 size ratio)
and the same store directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.export.artifacts import ArtifactStore, StoredArtifact
from orchestrator.export.pipeline import ExportRequest, export_artifact

REDIS_TEST_URL = os.environ.get("BENCHFARM_TEST_REDIS", "redis://127.0.0.1:6379/6")
TINY_RES = 64


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtifactStore]:
    root = tmp_path_factory.mktemp("artifacts")
    old = os.environ.get("BENCHFARM_ARTIFACTS")
    os.environ["BENCHFARM_ARTIFACTS"] = str(root)
    yield ArtifactStore(root)
    if old is None:
        os.environ.pop("BENCHFARM_ARTIFACTS", None)
    else:
        os.environ["BENCHFARM_ARTIFACTS"] = old


def tiny(backend: str = "xnnpack", res: int = TINY_RES, batch: int = 1) -> ExportRequest:
    return ExportRequest("tiny_cnn", "zoo:tiny_cnn", backend, res, batch)


@pytest.fixture(scope="session")
def tiny_xnnpack(store: ArtifactStore) -> tuple[StoredArtifact, bool]:
    """(artifact, cache_hit) of the first export of tiny_cnn@64 on XNNPACK in this session."""
    return export_artifact(tiny(), store)


@pytest.fixture(scope="session")
def redis_client() -> Iterator[object]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_TEST_URL}: {exc}")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def user_pte(tmp_path: Path, tiny_xnnpack: tuple[StoredArtifact, bool]) -> Path:
    """A user's already-exported program: a copy of the tiny XNNPACK artifact outside the store."""
    path = tmp_path / "user_model.pte"
    path.write_bytes(tiny_xnnpack[0].path.read_bytes())
    return path
