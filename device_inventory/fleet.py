"""Live fleet state in Redis: devices, heartbeats, leases with fencing tokens, attempt claims.

Modelled on rq's registries: leases live in one sorted set scored by expiry time, a
heartbeat pushes the score forward, and :meth:`Fleet.reap_expired` takes the expired
ones. Every state change that touches more than one key is a Lua script, so Redis
never holds a half-state (a device marked leased without a lease, a claimed attempt
without a token).

Keys (prefix ``bf:``):
  devices                 set of device ids
  device:<id>             hash: class, host, state, product_type, os_version, name, ...
  heartbeats              zset device id -> expiry (unix seconds); expired = offline
  leases                  zset device id -> lease expiry
  lease:<id>              hash: attempt_id, job_id, token
  fence:<id>              monotonically increasing fencing token (INCR)
  attempt:<attempt_id>    hash: state (dispatched|claimed|fenced|done|cancelled), device, token
  failures:<id>           consecutive infrastructure failures
  health-check:<check_id> hash: the outcome of one golden health check (agents.health_check)
  device-events           stream of every device state change (device, class, state, reason,
                          at); the coordinator copies it into the database, where capacity
                          reporting reads device state intervals
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

# developer_mode_off / ddi_missing: the phone cannot run developer services until a person
# (or the host going online) fixes it; the agent sets and clears them (agents/conditions.py)
CONDITION_STATES = ("developer_mode_off", "ddi_missing")
DEVICE_STATES = ("available", "leased", "busy", "offline", "quarantined", "maintenance", *CONDITION_STATES)
P = "bf:"


def attempt_key(attempt_id: str) -> str:
    return f"{P}attempt:{attempt_id}"


EVENTS = f"{P}device-events"
# the stream is a buffer until the coordinator drains it into the database
EVENTS_MAXLEN = 200_000
# An attempt record outlives any plausible benchmark; it only has to answer "was this
# attempt fenced off?" when a late result or a redelivered message arrives.
ATTEMPT_TTL_S = 7 * 24 * 3600

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
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'device', ARGV[4], 'state', 'leased',
           'attempt', ARGV[1], 'at', ARGV[5])
return {token, 'ok'}
"""

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


def _text(value: str | bytes) -> str:
    # a Fleet may wrap a client without decode_responses; script replies then come as bytes
    return value.decode() if isinstance(value, bytes) else str(value)


class LeaseRefused(RuntimeError):
    """The device or attempt cannot be leased (busy, quarantined, attempt fenced ...)."""


class Fleet:
    """One class per concept, as in rq: the fleet's state and its atomic transitions."""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._reap_one = client.register_script(_REAP_ONE)
        self._acquire_for_check = client.register_script(_ACQUIRE_FOR_CHECK)
        self._finish_check = client.register_script(_FINISH_CHECK)

    @classmethod
    def from_url(cls, url: str) -> Fleet:
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                        socket_connect_timeout=5))

    # -- devices ---------------------------------------------------------------
    def _event(self, pipe: Any, device_id: str, state: str, reason: str = "") -> None:
        pipe.xadd(EVENTS, {"device": device_id, "state": state, "reason": reason, "at": str(time.time())},
                  maxlen=EVENTS_MAXLEN, approximate=True)

    def register(self, device_id: str, info: dict[str, Any], heartbeat_ttl: float = 30.0) -> None:
        """Add or refresh a device; keeps quarantine/maintenance across agent restarts."""
        key = f"{P}device:{device_id}"
        flat = {k: (json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in info.items()}
        previous = self.r.hget(key, "state")
        with self.r.pipeline() as pipe:
            pipe.sadd(f"{P}devices", device_id)
            pipe.hset(key, mapping=flat)
            pipe.zadd(f"{P}heartbeats", {device_id: time.time() + heartbeat_ttl})
            if previous is None or (previous == "offline" and not self.r.exists(f"{P}lease:{device_id}")):
                pipe.hset(key, "state", "available")
                self._event(pipe, device_id, "available", "registered")
            pipe.execute()

    def unregister(self, device_id: str) -> None:
        """A device was unplugged: it stays known (history) but goes offline."""
        with self.r.pipeline() as pipe:
            pipe.hset(f"{P}device:{device_id}", "state", "offline")
            pipe.zrem(f"{P}heartbeats", device_id)
            self._event(pipe, device_id, "offline", "unregistered")
            pipe.execute()

    def heartbeat(self, device_id: str, ttl: float, lease_ttl: float | None = None,
                  status: dict[str, Any] | None = None) -> None:
        now = time.time()
        with self.r.pipeline() as pipe:
            pipe.zadd(f"{P}heartbeats", {device_id: now + ttl})
            if lease_ttl is not None:
                # XX: only extend a lease that still exists; never resurrect a reaped one
                pipe.zadd(f"{P}leases", {device_id: now + lease_ttl}, xx=True)
            if status:
                pipe.hset(f"{P}device:{device_id}", mapping={k: str(v) for k, v in status.items()})
            pipe.execute()

    def set_state(self, device_id: str, state: str, reason: str = "") -> None:
        if state not in DEVICE_STATES:
            raise ValueError(f"unknown device state {state!r} (known: {', '.join(DEVICE_STATES)})")
        with self.r.pipeline() as pipe:
            pipe.hset(f"{P}device:{device_id}", mapping={"state": state, "state_reason": reason,
                                                          "state_since": str(time.time())})
            self._event(pipe, device_id, state, reason)
            pipe.execute()

    def device(self, device_id: str) -> dict[str, str]:
        return self.r.hgetall(f"{P}device:{device_id}")

    def devices(self) -> list[dict[str, str]]:
        ids = sorted(self.r.smembers(f"{P}devices"))
        now = time.time()
        with self.r.pipeline() as pipe:
            for d in ids:
                pipe.hgetall(f"{P}device:{d}")
                pipe.zscore(f"{P}heartbeats", d)
            raw = pipe.execute()
        out = []
        for d, info, hb in zip(ids, raw[::2], raw[1::2], strict=True):
            info = dict(info, id=d)
            if (hb is None or hb < now) and info.get("state") in ("available", "leased", "busy", *CONDITION_STATES):
                info["state"] = "offline"
            out.append(info)
        return out

    # -- attempts and leases ------------------------------------------------------
    def dispatch_attempt(self, attempt_id: str) -> None:
        # written before the attempt's row commits: a missing record later means data loss
        self.r.hset(attempt_key(attempt_id), "state", "dispatched")
        self.r.expire(attempt_key(attempt_id), ATTEMPT_TTL_S)

    def attempt_state(self, attempt_id: str) -> str | None:
        return self.r.hget(attempt_key(attempt_id), "state")

    def cancel_attempt(self, attempt_id: str) -> None:
        self.r.hset(attempt_key(attempt_id), "state", "cancelled")

    def acquire(self, device_id: str, attempt_id: str, job_id: str, ttl: float) -> Lease:
        """Lease a device to an attempt; the attempt must still be 'dispatched' (not fenced,
        not already claimed by a redelivered copy of the same message)."""
        token, msg = self._acquire(
            keys=[f"{P}device:{device_id}", f"{P}lease:{device_id}", f"{P}leases",
                  f"{P}fence:{device_id}", attempt_key(attempt_id), EVENTS],
            args=[attempt_id, job_id, time.time() + ttl, device_id, time.time(), EVENTS_MAXLEN],
        )
        if int(token) < 0:
            raise LeaseRefused(f"device {device_id} / attempt {attempt_id}: {msg}")
        return Lease(device_id, attempt_id, job_id, int(token))

    def acquire_for_health_check(self, device_id: str, check_id: str, ttl: float) -> tuple[Lease, str]:
        """Lease a device to a health check; returns the lease and the state it was leased in
        ('available' or 'quarantined'). Refused while any lease (a job's) is held."""
        token, state = self._acquire_for_check(
            keys=[f"{P}device:{device_id}", f"{P}lease:{device_id}", f"{P}leases",
                  f"{P}fence:{device_id}", attempt_key(check_id), EVENTS],
            args=[check_id, time.time() + ttl, device_id, time.time(), EVENTS_MAXLEN, ATTEMPT_TTL_S],
        )
        state = _text(state)
        if int(token) < 0:
            raise LeaseRefused(f"device {device_id} / health check {check_id}: {state}")
        return Lease(device_id, check_id, "health-check", int(token)), state

    def finish_health_check(self, lease: Lease, verdict: str, reason: str) -> str:
        """Release a health check's lease and apply its verdict atomically. Returns the device's
        transition: 'released' (quarantine lifted), 'quarantined', 'unchanged' or 'lease_lost'."""
        if verdict not in ("passed", "failed", "inconclusive"):
            raise ValueError(f"unknown health check verdict {verdict!r}")
        return _text(self._finish_check(
            keys=[f"{P}device:{lease.device_id}", f"{P}lease:{lease.device_id}", f"{P}leases",
                  attempt_key(lease.attempt_id), f"{P}failures:{lease.device_id}", EVENTS],
            args=[str(lease.token), lease.device_id, verdict, reason, time.time(), EVENTS_MAXLEN],
        ))

    def save_health_check(self, check_id: str, record: dict[str, Any], ttl_s: float = ATTEMPT_TTL_S) -> None:
        """Keep a check's outcome (for `benchfarm devices check --wait`) and the device's last one."""
        flat = {k: (json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in record.items()}
        with self.r.pipeline() as pipe:
            pipe.hset(f"{P}health-check:{check_id}", mapping=flat)
            pipe.expire(f"{P}health-check:{check_id}", int(ttl_s))
            pipe.hset(f"{P}device:{record['device_id']}", mapping={
                "health_check": flat.get("verdict", ""), "health_check_at": flat.get("finished_at", ""),
                "health_check_detail": flat.get("detail", "")[:300]})
            pipe.execute()

    def health_check(self, check_id: str) -> dict[str, str]:
        return self.r.hgetall(f"{P}health-check:{check_id}")

    def release(self, lease: Lease, attempt_state: str = "done") -> bool:
        """Give the device back; False when the lease was already reaped (fenced off)."""
        return bool(self._release(
            keys=[f"{P}device:{lease.device_id}", f"{P}lease:{lease.device_id}", f"{P}leases",
                  attempt_key(lease.attempt_id), EVENTS],
            args=[str(lease.token), lease.device_id, attempt_state, time.time(), EVENTS_MAXLEN],
        ))

    def mark_busy(self, lease: Lease) -> bool:
        """The leased device started the benchmark itself (busy time is what capacity counts)."""
        if not self.lease_valid(lease):
            return False
        with self.r.pipeline() as pipe:
            pipe.hset(f"{P}device:{lease.device_id}", "state", "busy")
            self._event(pipe, lease.device_id, "busy", lease.attempt_id)
            pipe.execute()
        return True

    def read_events(self, after: str = "0", count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        return [(eid, fields) for eid, fields in self.r.xrange(EVENTS, min=f"({after}" if after != "0" else "-",
                                                                 count=count)]

    def lease_valid(self, lease: Lease) -> bool:
        return self.r.hget(f"{P}lease:{lease.device_id}", "token") == str(lease.token)

    def current_token(self, device_id: str) -> int:
        return int(self.r.get(f"{P}fence:{device_id}") or 0)

    def reap_expired(self, now: float | None = None) -> list[ReapedLease]:
        """Take every lease whose heartbeat stopped: its attempt is fenced, its device offline."""
        now = now or time.time()
        reaped = []
        for device_id in self.r.zrangebyscore(f"{P}leases", 0, now):
            out = self._reap_one(
                keys=[f"{P}device:{device_id}", f"{P}lease:{device_id}", f"{P}leases", f"{P}attempt:", EVENTS],
                args=[device_id, now, EVENTS_MAXLEN],
            )
            if out:
                reaped.append(ReapedLease(device_id, out[0], out[1], int(out[2])))
        return reaped

    # -- health bookkeeping --------------------------------------------------------
    def record_outcome(self, device_id: str, infra_failure: bool, quarantine_after: int) -> bool:
        """Count consecutive infrastructure failures; True when the device got quarantined."""
        key = f"{P}failures:{device_id}"
        if not infra_failure:
            self.r.delete(key)
            return False
        if self.r.incr(key) >= quarantine_after:
            self.set_state(device_id, "quarantined", f"{quarantine_after} consecutive infrastructure failures")
            return True
        return False

    def release_quarantine(self, device_id: str) -> None:
        self.r.delete(f"{P}failures:{device_id}")
        self.set_state(device_id, "available", "released by operator")
