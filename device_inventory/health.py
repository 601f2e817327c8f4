"""Device health records: consecutive failures, golden health checks and their leases, recheck claims."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from device_inventory import keys
from device_inventory.attempts import ATTEMPT_TTL_S
from device_inventory.devices import EVENTS_MAXLEN, DeviceRegistry, RedisClient, flatten
from device_inventory.leases import Lease, LeaseRefused, text

# A health check may lease an available *or a quarantined* device (it is how a quarantined
# device earns its way back), never one that holds a lease. A quarantined device keeps its
# state while the check runs, so no benchmark can take it meanwhile (_ACQUIRE wants
# 'available'); an available one turns 'leased' like for a job. The lease remembers the
# state to keep if it is reaped ('keep_state'), so a dead worker does not launder a quarantine.
_ACQUIRE_FOR_CHECK = """
-- KEYS: device hash, lease hash, leases zset, fence counter, check attempt hash, events stream
-- ARGV: check_id, expiry, device_id, now, events maxlen, attempt ttl
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'available' and state ~= 'quarantined' then return {-1, state or 'unknown'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-2, 'leased'} end
local token = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], 'attempt_id', ARGV[1], 'job_id', 'health-check', 'token', token, 'since', ARGV[4],
           'kind', 'health_check')
if state == 'quarantined' then redis.call('HSET', KEYS[2], 'keep_state', 'quarantined') end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], 'attempt_id', ARGV[1], 'job_id', 'health-check')
if state == 'available' then
  redis.call('HSET', KEYS[1], 'state', 'leased')
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'device', ARGV[3], 'state', 'leased',
             'attempt', ARGV[1], 'reason', 'health_check', 'at', ARGV[4])
end
redis.call('HSET', KEYS[5], 'state', 'claimed', 'device', ARGV[3], 'token', token)
redis.call('EXPIRE', KEYS[5], ARGV[6])
return {token, state}
"""

# Release a health check's lease and apply its verdict in one step, so no benchmark can
# slip in between "lease released" and "device quarantined". verdict: passed | failed |
# inconclusive. A check whose lease was reaped meanwhile changes nothing.
_FINISH_CHECK = """
-- KEYS: device hash, lease hash, leases zset, check attempt hash, failures counter, events stream
-- ARGV: token, device_id, verdict, reason, now, events maxlen
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] then return 'lease_lost' end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[1], 'attempt_id', 'job_id')
redis.call('HSET', KEYS[4], 'state', 'done')
local state = redis.call('HGET', KEYS[1], 'state')
local function set_state(new)
  redis.call('HSET', KEYS[1], 'state', new, 'state_reason', ARGV[4], 'state_since', ARGV[5])
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'device', ARGV[2], 'state', new,
             'reason', ARGV[4], 'at', ARGV[5])
end
if ARGV[3] == 'failed' then
  if state == 'maintenance' or state == 'offline' then return 'unchanged' end
  redis.call('INCR', KEYS[5])
  set_state('quarantined')
  return 'quarantined'
end
if ARGV[3] == 'passed' then redis.call('DEL', KEYS[5]) end
if state == 'quarantined' and ARGV[3] == 'passed' then
  set_state('available')
  return 'released'
end
if state == 'leased' or state == 'busy' then
  set_state('available')
end
return 'unchanged'
"""


class HealthRecords:
    """``failures:<id>``, ``health-check:<check_id>``, ``health-recheck:<id>``, ``health-periodic:<id>``,
    ``health-seen``; the health check's own lease goes through the lease keys in one script."""

    def __init__(self, client: RedisClient, devices: DeviceRegistry):
        self.r = client
        self.devices = devices
        self._acquire_for_check = client.register_script(_ACQUIRE_FOR_CHECK)
        self._finish_check = client.register_script(_FINISH_CHECK)

    def acquire_for_check(self, device_id: str, check_id: str, ttl: float) -> tuple[Lease, str]:
        """Lease a device to a health check; returns the lease and the state it was leased in
        ('available' or 'quarantined'). Refused while any lease (a job's) is held."""
        token, state = self._acquire_for_check(
            keys=[keys.device(device_id), keys.lease(device_id), keys.LEASES, keys.fence(device_id),
                  keys.attempt(check_id), keys.EVENTS],
            args=[check_id, time.time() + ttl, device_id, time.time(), EVENTS_MAXLEN, ATTEMPT_TTL_S],
        )
        state = text(state)
        if int(token) < 0:
            raise LeaseRefused(f"device {device_id} / health check {check_id}: {state}")
        return Lease(device_id, check_id, "health-check", int(token)), state

    def finish_check(self, lease: Lease, verdict: str, reason: str) -> str:
        """Release a health check's lease and apply its verdict atomically. Returns the device's
        transition: 'released' (quarantine lifted), 'quarantined', 'unchanged' or 'lease_lost'."""
        if verdict not in ("passed", "failed", "inconclusive"):
            raise ValueError(f"unknown health check verdict {verdict!r}")
        return text(self._finish_check(
            keys=[keys.device(lease.device_id), keys.lease(lease.device_id), keys.LEASES,
                  keys.attempt(lease.attempt_id), keys.failures(lease.device_id), keys.EVENTS],
            args=[str(lease.token), lease.device_id, verdict, reason, time.time(), EVENTS_MAXLEN],
        ))

    def save_check(self, check_id: str, record: dict[str, Any], ttl_s: float = ATTEMPT_TTL_S) -> None:
        """Keep a check's outcome (for `benchfarm devices check --wait`) and the device's last one."""
        flat = flatten(record)
        with self.r.pipeline() as pipe:
            pipe.hset(keys.health_check(check_id), mapping=flat)
            pipe.expire(keys.health_check(check_id), int(ttl_s))
            pipe.hset(keys.device(record["device_id"]), mapping={
                "health_check": flat.get("verdict", ""), "health_check_at": flat.get("finished_at", ""),
                "health_check_detail": flat.get("detail", "")[:300]})
            pipe.execute()

    def check(self, check_id: str) -> dict[str, str]:
        return self.r.hgetall(keys.health_check(check_id))

    def record_outcome(self, device_id: str, infra_failure: bool, quarantine_after: int) -> bool:
        """Count consecutive infrastructure failures; True when the device got quarantined."""
        key = keys.failures(device_id)
        if not infra_failure:
            self.r.delete(key)
            return False
        if self.r.incr(key) >= quarantine_after:
            self.devices.set_state(device_id, "quarantined", f"{quarantine_after} consecutive infrastructure failures")
            return True
        return False

    def release_quarantine(self, device_id: str) -> None:
        self.r.delete(keys.failures(device_id))
        self.devices.set_state(device_id, "available", "released by operator")

    def claim_recheck(self, device_id: str, check_id: str, ttl_s: float) -> bool:
        """One pending recheck per device: False when one is already pending."""
        return bool(self.r.set(keys.health_recheck(device_id), check_id, nx=True, ex=int(ttl_s)))

    def recheck_started(self, device_id: str, check_id: str) -> None:
        """A recheck is running: it no longer blocks the next one being scheduled."""
        key = keys.health_recheck(device_id)
        if self.r.get(key) in (check_id, check_id.encode()):
            self.r.delete(key)

    def claim_periodic_many(self, device_ids: Iterable[str], every_s: int) -> dict[str, tuple[bool, bool]]:
        """Per device: (first sight of it, its periodic check is due now) — one claim per period
        whatever the number of coordinators asking. All devices in one transaction: a sweep of
        1,000 devices is one round trip, not 1,000."""
        ids = list(dict.fromkeys(device_ids))
        if not ids:
            return {}
        now, ttl = str(time.time()), max(every_s, 1)
        with self.r.pipeline(transaction=True) as pipe:
            for d in ids:
                pipe.sadd(keys.HEALTH_SEEN, d)
                pipe.set(keys.health_periodic(d), now, nx=True, ex=ttl)
            raw = pipe.execute()
        return {d: (bool(first), bool(due)) for d, first, due in zip(ids, raw[::2], raw[1::2], strict=True)}
