"""Coordinator state beside the fleet's: live exporters, once-only claims, published schedules."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from device_inventory import keys
from device_inventory.devices import RedisClient

log = logging.getLogger(__name__)
# an export's in-progress mark outlives a missed beat or two, and a dead exporter by this much
EXPORT_BEAT_TTL_S = 30.0


def _env_s(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "")) or default
    except ValueError:
        return default


class ExporterRegistry:
    """``exporters``: each export platform's heartbeat (zset scored by expiry, like leases)."""

    def __init__(self, client: RedisClient):
        self.r = client

    def heartbeat(self, platform: str, ttl: float = 30) -> None:
        self.r.zadd(keys.EXPORTERS, {platform: time.time() + ttl})

    def alive(self) -> set[str]:
        return set(self.r.zrangebyscore(keys.EXPORTERS, time.time(), "+inf"))

    @contextmanager
    def working(self, request_key: str, ttl_s: float | None = None) -> Iterator[None]:
        """Mark export ``request_key`` in progress while the block runs (a thread refreshes it
        every ttl/3): the reconciler re-sends an export whose mark is gone, not one that is slow."""
        stop = threading.Event()
        ttl_s = ttl_s or _env_s("BENCHFARM_EXPORT_BEAT_TTL_S", EXPORT_BEAT_TTL_S)

        def mark() -> None:
            try:
                self.r.set(keys.export_running(request_key), "1", px=int(ttl_s * 1000))
            except Exception:  # a Redis blip: the next beat, or the reconciler, catches up
                log.warning("export heartbeat of %s failed", request_key, exc_info=True)

        def beat() -> None:
            while not stop.wait(ttl_s / 3):
                mark()

        mark()  # before the block starts: a reconciler looking meanwhile sees the work in progress
        thread = threading.Thread(target=beat, daemon=True, name="export-heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            self.r.delete(keys.export_running(request_key))

    def in_progress(self, request_key: str) -> bool:
        return bool(self.r.exists(keys.export_running(request_key)))


class Claims:
    """Decisions taken exactly once across coordinators (``SET NX``) and the published schedules."""

    def __init__(self, client: RedisClient):
        self.r = client

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        return bool(self.r.set(key, value, nx=True, ex=int(ttl_s)))

    def get(self, key: str) -> str | None:
        return self.r.get(key)

    def settle(self, key: str, value: str) -> None:
        """Replace a claim's placeholder with its outcome, keeping its expiry."""
        self.r.set(key, value, xx=True, keepttl=True)

    def drop(self, key: str) -> None:
        self.r.delete(key)

    def publish_schedules(self, schedules: dict[str, dict[str, Any]]) -> None:
        """Replace the schedule definitions the trigger reads (one transaction)."""
        with self.r.pipeline() as pipe:
            pipe.delete(keys.SCHEDULES)
            if schedules:
                pipe.hset(keys.SCHEDULES, mapping={name: json.dumps(s) for name, s in schedules.items()})
            pipe.execute()

    def schedule(self, name: str) -> dict[str, Any] | None:
        raw = self.r.hget(keys.SCHEDULES, name)
        return None if raw is None else json.loads(raw)
