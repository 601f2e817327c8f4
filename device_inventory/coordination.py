"""Coordinator state beside the fleet's: live exporters, once-only claims, published schedules."""

from __future__ import annotations

import json
import time
from typing import Any

from device_inventory import keys
from device_inventory.devices import RedisClient


class ExporterRegistry:
    """``exporters``: each export platform's heartbeat (zset scored by expiry, like leases)."""

    def __init__(self, client: RedisClient):
        self.r = client

    def heartbeat(self, platform: str, ttl: float = 30) -> None:
        self.r.zadd(keys.EXPORTERS, {platform: time.time() + ttl})

    def alive(self) -> set[str]:
        return set(self.r.zrangebyscore(keys.EXPORTERS, time.time(), "+inf"))


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
