"""Leases with fencing tokens, in the shape of rq's registries: one sorted set scored by expiry.

A heartbeat pushes a lease's score forward (``DeviceRegistry.heartbeat``); :meth:`reap_expired`
takes the expired ones. Acquire, release and reap are Lua scripts over the device, lease,
fence, attempt and event keys at once, so Redis never holds a half-state (a device marked
leased without a lease, a claimed attempt without a token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from device_inventory import keys
from device_inventory.devices import EVENTS_MAXLEN, RedisClient

_ACQUIRE = """
-- KEYS: device hash, lease hash, leases zset, fence counter, attempt hash, events stream
-- ARGV: attempt_id, job_id, expiry, device_id, now, events maxlen
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'available' then return {-1, state or 'unknown'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-2, 'leased'} end
local astate = redis.call('HGET', KEYS[5], 'state')
if astate ~= 'dispatched' then return {-3, astate or 'missing'} end
local token = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], 'attempt_id', ARGV[1], 'job_id', ARGV[2], 'token', token, 'since', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[1], 'state', 'leased', 'attempt_id', ARGV[1], 'job_id', ARGV[2])
redis.call('HSET', KEYS[5], 'state', 'claimed', 'device', ARGV[4], 'token', token)
-- the event is also the attempt's start: the coordinator copies it into the attempt's row
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'device', ARGV[4], 'state', 'leased',
           'attempt', ARGV[1], 'token', token, 'at', ARGV[5])
return {token, 'ok'}
"""

_RELEASE = """
-- KEYS: device hash, lease hash, leases zset, attempt hash, events stream
-- ARGV: token, device_id, attempt_state, now, events maxlen
local token = redis.call('HGET', KEYS[2], 'token')
if token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'leased' or state == 'busy' then
  redis.call('HSET', KEYS[1], 'state', 'available')
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'device', ARGV[2], 'state', 'available', 'at', ARGV[4])
end
redis.call('HDEL', KEYS[1], 'attempt_id', 'job_id')
redis.call('HSET', KEYS[4], 'state', ARGV[3])
return 1
"""

_MARK_BUSY = """
-- KEYS: device hash, lease hash, events stream; ARGV: token, device_id, attempt_id, now, events maxlen
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'busy')
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'device', ARGV[2], 'state', 'busy', 'reason', ARGV[3],
           'at', ARGV[4])
return 1
"""

_REAP_ONE = """
-- KEYS: device hash, lease hash, leases zset, attempt prefix, events stream; ARGV: device_id, now, maxlen
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return nil end
local attempt = redis.call('HGET', KEYS[2], 'attempt_id')
local job = redis.call('HGET', KEYS[2], 'job_id')
local token = redis.call('HGET', KEYS[2], 'token')
local keep = redis.call('HGET', KEYS[2], 'keep_state')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[1], 'attempt_id', 'job_id')
if not keep then
  redis.call('HSET', KEYS[1], 'state', 'offline')
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'device', ARGV[1], 'state', 'offline',
             'reason', 'lease expired', 'at', ARGV[2])
end
if attempt then redis.call('HSET', KEYS[4] .. attempt, 'state', 'fenced') end
return {attempt or '', job or '', token or '0'}
"""



@dataclass(frozen=True)
class Lease:
    device_id: str
    attempt_id: str
    job_id: str
    token: int


@dataclass(frozen=True)
class ReapedLease:
    device_id: str
    attempt_id: str
    job_id: str
    token: int


class LeaseRefused(RuntimeError):
    """The device or attempt cannot be leased (busy, quarantined, attempt fenced ...)."""


def text(value: str | bytes) -> str:
    # a registry may wrap a client without decode_responses; script replies then come as bytes
    return value.decode() if isinstance(value, bytes) else str(value)


class LeaseRegistry:
    """``leases``, ``lease:<id>``, ``fence:<id>``."""

    def __init__(self, client: RedisClient):
        self.r = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._mark_busy = client.register_script(_MARK_BUSY)
        self._reap_one = client.register_script(_REAP_ONE)

    def acquire(self, device_id: str, attempt_id: str, job_id: str, ttl: float) -> Lease:
        """Lease a device to an attempt; the attempt must still be 'dispatched' (not fenced,
        not already claimed by a redelivered copy of the same message)."""
        token, msg = self._acquire(
            keys=[keys.device(device_id), keys.lease(device_id), keys.LEASES, keys.fence(device_id),
                  keys.attempt(attempt_id), keys.EVENTS],
            args=[attempt_id, job_id, time.time() + ttl, device_id, time.time(), EVENTS_MAXLEN],
        )
        if int(token) < 0:
            raise LeaseRefused(f"device {device_id} / attempt {attempt_id}: {msg}")
        return Lease(device_id, attempt_id, job_id, int(token))

    def release(self, lease: Lease, attempt_state: str = "done") -> bool:
        """Give the device back; False when the lease was already reaped (fenced off)."""
        return bool(self._release(
            keys=[keys.device(lease.device_id), keys.lease(lease.device_id), keys.LEASES,
                  keys.attempt(lease.attempt_id), keys.EVENTS],
            args=[str(lease.token), lease.device_id, attempt_state, time.time(), EVENTS_MAXLEN],
        ))

    def mark_busy(self, lease: Lease) -> bool:
        """The leased device started the benchmark itself (busy time is what capacity counts); False
        when the lease is no longer this one. One script: no reap between the check and the write."""
        return bool(self._mark_busy(
            keys=[keys.device(lease.device_id), keys.lease(lease.device_id), keys.EVENTS],
            args=[str(lease.token), lease.device_id, lease.attempt_id, time.time(), EVENTS_MAXLEN],
        ))

    def valid(self, lease: Lease) -> bool:
        return self.r.hget(keys.lease(lease.device_id), "token") == str(lease.token)

    def current_token(self, device_id: str) -> int:
        return int(self.r.get(keys.fence(device_id)) or 0)

    def reap_expired(self, now: float | None = None) -> list[ReapedLease]:
        """Take every lease whose heartbeat stopped: its attempt is fenced, its device offline."""
        now = now or time.time()
        reaped = []
        for device_id in self.r.zrangebyscore(keys.LEASES, 0, now):
            out: Any = self._reap_one(
                keys=[keys.device(device_id), keys.lease(device_id), keys.LEASES, keys.ATTEMPT_PREFIX, keys.EVENTS],
                args=[device_id, now, EVENTS_MAXLEN],
            )
            if out:
                reaped.append(ReapedLease(device_id, out[0], out[1], int(out[2])))
        return reaped
