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
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import LockError

from device_inventory import keys

log = logging.getLogger(__name__)

LOCK_PREFIX = keys.export_lock("")
# Renewed every third of it while the export runs, so a dead exporter's lock frees within a
# minute (it was 20 minutes, and a resubmission's worker thread waited that long on it).
DEFAULT_TTL_S = 60
DEFAULT_WAIT_S = 30 * 60
_POLL_S = 0.25


def _renew(lock: Any, key: str, ttl_s: float, stop: threading.Event) -> None:
    while not stop.wait(ttl_s / 3):
        try:
            lock.reacquire()  # back to the full TTL, only while the token is still ours
        except LockError:
            log.warning("export lock of %s was lost while exporting", key)
            return
        except Exception:  # a Redis blip: try again at the next beat
            log.warning("renewing the export lock of %s failed", key, exc_info=True)


class ExportLockTimeout(TimeoutError):
    """Another exporter held the artifact's lock for longer than we were willing to wait."""


@contextmanager
def export_lock(client: Any, key: str, ready: Callable[[], bool], ttl_s: float | None = None,
                wait_s: float = DEFAULT_WAIT_S) -> Iterator[bool]:
    """Hold the lock for artifact ``key``; yields True when held, False when ``ready()``
    became true while waiting (someone else exported it: nothing to do)."""
    ttl_s = ttl_s or float(os.environ.get("BENCHFARM_EXPORT_LOCK_TTL_S") or DEFAULT_TTL_S)
    # thread_local=False: the renewing thread must see the token the exporting thread took
    lock = client.lock(keys.export_lock(key), timeout=ttl_s, thread_local=False)
    deadline = time.monotonic() + wait_s
    while not lock.acquire(blocking=False):
        if ready():
            yield False
            return
        if time.monotonic() > deadline:
            raise ExportLockTimeout(f"artifact {key}: another exporter held the lock for over {wait_s:.0f} s")
        time.sleep(_POLL_S)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, key, ttl_s, stop), daemon=True, name="export-lock")
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join(timeout=5)
        try:
            lock.release()
        except LockError:  # it expired and a successor holds it now: theirs to release
            log.warning("export lock of %s expired before the export finished", key)
