"""One exporter per artifact: a Redis lock so concurrent requests for the same key export once.

``SET lock NX PX ttl`` with a random token; release is a Lua compare-and-delete so a
worker whose lock already expired cannot delete the lock a successor holds. Waiters
poll with a bounded timeout and stop waiting as soon as the artifact appears in the
store. If an export outlives the TTL a second exporter may start; that wastes CPU but
is safe, because both write the same content-addressed files atomically.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LOCK_PREFIX = "benchfarm:export-lock:"
# Longer than any export seen here (EfficientNet-B0 INT8 on a busy 2-core box ~2 min).
DEFAULT_TTL_S = 20 * 60
DEFAULT_WAIT_S = 30 * 60
_POLL_S = 0.25

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class ExportLockTimeout(TimeoutError):
    """Another exporter held the artifact's lock for longer than we were willing to wait."""


@contextmanager
def export_lock(client: Any, key: str, ready: Callable[[], bool], ttl_s: float = DEFAULT_TTL_S,
                wait_s: float = DEFAULT_WAIT_S) -> Iterator[bool]:
    """Hold the lock for artifact ``key``; yields True when held, False when ``ready()``
    became true while waiting (someone else exported it: nothing to do)."""
    name = LOCK_PREFIX + key
    token = secrets.token_hex(16)
    deadline = time.monotonic() + wait_s
    while not client.set(name, token, nx=True, px=int(ttl_s * 1000)):
        if ready():
            yield False
            return
        if time.monotonic() > deadline:
            raise ExportLockTimeout(f"artifact {key}: another exporter held the lock for over {wait_s:.0f} s")
        time.sleep(_POLL_S)
    try:
        yield True
    finally:
        client.eval(_RELEASE, 1, name, token)
