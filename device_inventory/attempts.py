"""Attempt claims: each attempt's Redis record, what answers "was this attempt fenced off?"."""

from __future__ import annotations

from collections.abc import Sequence

from device_inventory import keys
from device_inventory.devices import RedisClient

# An attempt record outlives any plausible benchmark; it only has to answer "was this
# attempt fenced off?" when a late result or a redelivered message arrives.
ATTEMPT_TTL_S = 7 * 24 * 3600


class AttemptClaims:
    """``attempt:<attempt_id>``: dispatched → claimed (a lease took it) → done | fenced | cancelled."""

    def __init__(self, client: RedisClient):
        self.r = client

    def dispatch(self, attempt_id: str) -> None:
        # written before the attempt's row commits: a missing record later means data loss
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(keys.attempt(attempt_id), "state", "dispatched")
            pipe.expire(keys.attempt(attempt_id), ATTEMPT_TTL_S)
            pipe.execute()

    def dispatch_many(self, attempt_ids: Sequence[str]) -> None:
        """One round trip for a batch of attempts (a submit that dispatches a whole run)."""
        with self.r.pipeline(transaction=False) as pipe:
            for attempt_id in attempt_ids:
                pipe.hset(keys.attempt(attempt_id), "state", "dispatched")
                pipe.expire(keys.attempt(attempt_id), ATTEMPT_TTL_S)
            pipe.execute()

    def state(self, attempt_id: str) -> str | None:
        return self.r.hget(keys.attempt(attempt_id), "state")

    def cancel(self, attempt_id: str) -> None:
        self.r.hset(keys.attempt(attempt_id), "state", "cancelled")

    def missing(self, attempt_ids: Sequence[str]) -> list[str]:
        """The attempts whose record is gone (the broker lost its data), in one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            for attempt_id in attempt_ids:
                pipe.exists(keys.attempt(attempt_id))
            present = pipe.execute()
        return [a for a, there in zip(attempt_ids, present, strict=True) if not there]
