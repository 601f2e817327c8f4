"""One exporter per artifact: redis-py's lock, so concurrent requests for the same key export once.

redis-py's :class:`redis.lock.Lock` is ``SET NX PX`` with a random token and a Lua
compare-and-delete release, so a worker whose lock already expired cannot delete the lock a
successor holds. What it lacks is stopping early: waiters here poll with a bounded timeout
and stop waiting as soon as the artifact appears in the store. If an export outlives the
TTL a second exporter may start; that wastes CPU but is safe, because both write the same
content-addressed files atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import LockError

from device_inventory import keys

log = logging.getLogger(__name__)

LOCK_PREFIX = keys.export_lock("")
# Longer than any export seen here (EfficientNet-B0 INT8 on a busy 2-core box ~2 min).
DEFAULT_TTL_S = 20 * 60
DEFAULT_WAIT_S = 30 * 60
_POLL_S = 0.25


class ExportLockTimeout(TimeoutError):
    """Another exporter held the artifact's lock for longer than we were willing to wait."""


@contextmanager
def export_lock(client: Any, key: str, ready: Callable[[], bool], ttl_s: float = DEFAULT_TTL_S,
                wait_s: float = DEFAULT_WAIT_S) -> Iterator[bool]:
    """Hold the lock for artifact ``key``; yields True when held, False when ``ready()``
    became true while waiting (someone else exported it: nothing to do)."""
    lock = client.lock(keys.export_lock(key), timeout=ttl_s)
    deadline = time.monotonic() + wait_s
    while not lock.acquire(blocking=False):
        if ready():
            yield False
            return
        if time.monotonic() > deadline:
            raise ExportLockTimeout(f"artifact {key}: another exporter held the lock for over {wait_s:.0f} s")
        time.sleep(_POLL_S)
    try:
        yield True
    finally:
        try:
            lock.release()
        except LockError:  # it expired and a successor holds it now: theirs to release
            log.warning("export lock of %s expired before the export finished", key)
