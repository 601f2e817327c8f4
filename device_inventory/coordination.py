"""Coordinator state beside the fleet's: live exporters and what they keyed, once-only claims, published schedules."""

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
# a remembered export is forgotten after a week without a request for it (the key space stays small)
EXPORT_MEMO_TTL_S = 7 * 24 * 3600


def _env_s(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "")) or default
    except ValueError:
        return default


class ExporterRegistry:
    """``exporters``: each export platform's heartbeat (zset scored by expiry, like leases)."""

    def __init__(self, client: RedisClient):
        self.r = client

    def heartbeat(self, platform: str, ttl: float = 30, identity: str = "") -> None:
        """``identity``: the exporter's code identity (``export.recipe.zoo_code_identity``), which
        says whether it would key a zoo request as a remembered export was keyed (:class:`ExportMemo`)."""
        now = time.time()
        with self.r.pipeline() as pipe:
            pipe.zadd(keys.EXPORTERS, {platform: now + ttl})
            if identity:
                pipe.zadd(keys.EXPORTER_IDENTITIES, {f"{platform}:{identity}": now + ttl})
                pipe.zremrangebyscore(keys.EXPORTER_IDENTITIES, "-inf", now)  # exporters gone (or redeployed)
            pipe.execute()

    def alive(self) -> set[str]:
        return set(self.r.zrangebyscore(keys.EXPORTERS, time.time(), "+inf"))

    def live(self) -> dict[str, set[str]]:
        """Each live platform and the code identities its exporters advertise (exporters running the
        same code share one), in one round trip: what a submit asks once."""
        now = time.time()
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.EXPORTERS, now, "+inf")
            pipe.zrangebyscore(keys.EXPORTER_IDENTITIES, now, "+inf")
            platforms, members = pipe.execute()
        live: dict[str, set[str]] = {platform: set() for platform in platforms}
        for member in members:
            platform, _, identity = member.partition(":")
            live.setdefault(platform, set()).add(identity)
        return live

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


class ExportMemo:
    """``export-memo:<request>``: the artifact an exporter keyed an export request to, and the code
    identity it keyed it with. Written by exporters; the coordinator reads it to skip asking again."""

    def __init__(self, client: RedisClient):
        self.r = client

    def remember(self, request_key: str, artifact_key: str, identity: str) -> None:
        self.r.set(keys.export_memo(request_key), json.dumps({"artifact_key": artifact_key, "identity": identity}),
                   ex=EXPORT_MEMO_TTL_S)

    def recall(self, request_key: str) -> tuple[str, str] | None:
        """(artifact key, identity) of the request's last export, or None."""
        raw = self.r.get(keys.export_memo(request_key))
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            return str(doc["artifact_key"]), str(doc["identity"])
        except (ValueError, KeyError, TypeError):  # written by something else: not a memo to trust
            return None


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
