"""Concurrent requests for one artifact export it once (real Redis, DB 6)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.locking import LOCK_PREFIX, ExportLockTimeout, export_lock
from orchestrator.export.pipeline import artifact_key, export_artifact

from .conftest import tiny

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_two_concurrent_requests_export_once(redis_client, tmp_path) -> None:
    store = ArtifactStore(tmp_path / "store")
    req = tiny(res=48)  # an artifact no other test exports
    barrier = threading.Barrier(2)

    def export():
        barrier.wait(timeout=30)
        return export_artifact(req, store, redis_client=redis_client, lock_wait_s=150)

    with ThreadPoolExecutor(2) as pool:
        results = [f.result(timeout=170) for f in [pool.submit(export), pool.submit(export)]]
    assert sorted(hit for _, hit in results) == [False, True]
    assert results[0][0].key == results[1][0].key == artifact_key(req)
    assert results[0][0].meta["created_at"] == results[1][0].meta["created_at"]  # one export
    assert redis_client.get(LOCK_PREFIX + artifact_key(req)) is None  # released


def test_waiter_gives_up_after_its_bounded_wait(redis_client) -> None:
    with export_lock(redis_client, "a" * 64, ready=lambda: False) as held:
        assert held is True
        with pytest.raises(ExportLockTimeout, match="held the lock"):
            with export_lock(redis_client, "a" * 64, ready=lambda: False, wait_s=0.5):
                pass


def test_waiter_stops_waiting_when_the_artifact_appears(redis_client) -> None:
    with export_lock(redis_client, "b" * 64, ready=lambda: False):
        with export_lock(redis_client, "b" * 64, ready=lambda: True, wait_s=5) as held:
            assert held is False


def test_release_never_deletes_a_successors_lock(redis_client) -> None:
    name = LOCK_PREFIX + "c" * 64
    with export_lock(redis_client, "c" * 64, ready=lambda: False, ttl_s=30):
        # our lock expired and another exporter took it: its token is now in the key
        redis_client.set(name, "successor-token", px=30_000)
    assert redis_client.get(name) == b"successor-token"
    redis_client.delete(name)


def test_lock_expires_if_the_holder_dies(redis_client) -> None:
    name = LOCK_PREFIX + "d" * 64
    with export_lock(redis_client, "d" * 64, ready=lambda: False, ttl_s=60):
        assert 0 < redis_client.pttl(name) <= 60_000


def test_a_held_lock_is_renewed_while_its_holder_lives(redis_client) -> None:
    # a short TTL frees a dead exporter's lock within a minute; a live one keeps it renewed
    name = LOCK_PREFIX + "e" * 64
    with export_lock(redis_client, "e" * 64, ready=lambda: False, ttl_s=2):
        time.sleep(4)  # twice the TTL: only the renewals keep it
        assert redis_client.exists(name)
    assert not redis_client.exists(name)
