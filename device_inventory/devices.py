"""Devices: who is registered, their state and their heartbeats; and the stream of state changes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from device_inventory import keys

# A client made with decode_responses=True (Fleet.from_url): replies are str, which redis-py's
# annotations cannot express (they say bytes | str), so the registries hold it untyped.
RedisClient = Any

# developer_mode_off / ddi_missing: the phone cannot run developer services until a person
# (or the host going online) fixes it; the agent sets and clears them (agents/conditions.py)
CONDITION_STATES = ("developer_mode_off", "ddi_missing")
DEVICE_STATES = ("available", "leased", "busy", "offline", "quarantined", "maintenance", *CONDITION_STATES)
# the stream is a buffer until the coordinator drains it into the database
EVENTS_MAXLEN = 200_000
# how long class_and_host trusts what it read: a device's class and host change only when it
# (re)registers, which its caller passes as ``fresh``; this bounds a change it was not told of
INFO_TTL_S = 60.0


def flatten(info: dict[str, Any]) -> dict[str, str]:
    """Redis hashes hold strings: nested values as JSON."""
    return {k: (json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in info.items()}


class DeviceEvents:
    """``device-events``: every device state change (device, state, reason, at). The coordinator
    copies it into the database, where capacity reporting reads device state intervals."""

    def __init__(self, client: RedisClient):
        self.r = client

    def add(self, pipe: Any, device_id: str, state: str, reason: str = "") -> None:
        pipe.xadd(keys.EVENTS, {"device": device_id, "state": state, "reason": reason, "at": str(time.time())},
                  maxlen=EVENTS_MAXLEN, approximate=True)

    def read(self, after: str = "0", count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        return [(eid, fields) for eid, fields in self.r.xrange(keys.EVENTS, min=f"({after}" if after != "0" else "-",
                                                                 count=count)]

    def cursor(self) -> str:
        return self.r.get(keys.EVENTS_CURSOR) or "0"

    def advance(self, stream_id: str) -> None:
        self.r.set(keys.EVENTS_CURSOR, stream_id)

    def take_copier(self, holder: str, ttl_s: int = 10) -> bool:
        """Become the one coordinator copying the stream for up to ``ttl_s`` (a dead copier's
        turn expires). Two copiers at once stay correct (the stream id is the key) but collide."""
        return bool(self.r.set(keys.EVENTS_COPIER, holder, nx=True, ex=ttl_s))

    def drop_copier(self, holder: str) -> None:
        if self.r.get(keys.EVENTS_COPIER) == holder:
            self.r.delete(keys.EVENTS_COPIER)


class DeviceRegistry:
    """``devices``, ``device:<id>``, ``heartbeats``."""

    def __init__(self, client: RedisClient, events: DeviceEvents):
        self.r = client
        self.events = events
        # class_and_host's reads: device id -> (when, monotonic, fields)
        self._class_host: dict[str, tuple[float, dict[str, str]]] = {}

    def register(self, device_id: str, info: dict[str, Any], heartbeat_ttl: float = 30.0) -> None:
        """Add or refresh a device; keeps quarantine/maintenance across agent restarts."""
        key = keys.device(device_id)
        previous = self.r.hget(key, "state")
        with self.r.pipeline() as pipe:
            pipe.sadd(keys.DEVICES, device_id)
            pipe.hset(key, mapping=flatten(info))
            pipe.zadd(keys.HEARTBEATS, {device_id: time.time() + heartbeat_ttl})
            if previous is None or (previous == "offline" and not self.r.exists(keys.lease(device_id))):
                pipe.hset(key, "state", "available")
                self.events.add(pipe, device_id, "available", "registered")
            pipe.execute()

    def unregister(self, device_id: str) -> None:
        """A device was unplugged: it stays known (history) but goes offline."""
        with self.r.pipeline() as pipe:
            pipe.hset(keys.device(device_id), "state", "offline")
            pipe.zrem(keys.HEARTBEATS, device_id)
            self.events.add(pipe, device_id, "offline", "unregistered")
            pipe.execute()

    def heartbeat(self, device_id: str, ttl: float, lease_ttl: float | None = None,
                  status: dict[str, Any] | None = None) -> None:
        now = time.time()
        with self.r.pipeline() as pipe:
            pipe.zadd(keys.HEARTBEATS, {device_id: now + ttl})
            if lease_ttl is not None:
                # XX: only extend a lease that still exists; never resurrect a reaped one
                pipe.zadd(keys.LEASES, {device_id: now + lease_ttl}, xx=True)
            if status:
                pipe.hset(keys.device(device_id), mapping={k: str(v) for k, v in status.items()})
            pipe.execute()

    def set_state(self, device_id: str, state: str, reason: str = "") -> None:
        if state not in DEVICE_STATES:
            raise ValueError(f"unknown device state {state!r} (known: {', '.join(DEVICE_STATES)})")
        with self.r.pipeline() as pipe:
            pipe.hset(keys.device(device_id), mapping={"state": state, "state_reason": reason,
                                                       "state_since": str(time.time())})
            self.events.add(pipe, device_id, state, reason)
            pipe.execute()

    def get(self, device_id: str) -> dict[str, str]:
        return self.r.hgetall(keys.device(device_id))

    def get_many(self, device_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Several devices' records in one round trip."""
        ids = list(dict.fromkeys(device_ids))
        with self.r.pipeline(transaction=False) as pipe:
            for d in ids:
                pipe.hgetall(keys.device(d))
            return dict(zip(ids, pipe.execute(), strict=True))

    def fields_many(self, device_ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, str]]:
        """Some fields of several devices' records in one round trip (a field a record lacks is
        absent): a whole record is ~20 fields, and the event copier wants two of each device's."""
        ids = list(dict.fromkeys(device_ids))
        with self.r.pipeline(transaction=False) as pipe:
            for d in ids:
                pipe.hmget(keys.device(d), list(fields))
            rows = pipe.execute()
        return {d: {f: v for f, v in zip(fields, row, strict=True) if v is not None}
                for d, row in zip(ids, rows, strict=True)}

    def class_and_host(self, device_ids: Iterable[str], fresh: Iterable[str] = ()) -> dict[str, dict[str, str]]:
        """``device_class`` and ``host`` of several devices, as :meth:`fields_many` reads them, from
        this registry's memory of the last :data:`INFO_TTL_S`: the event copier labels every event with
        them, twice a second, and they change only when a device (re)registers. ``fresh``: devices
        to read again anyway (they registered since)."""
        ids = list(dict.fromkeys(device_ids))
        now = time.monotonic()
        again = set(fresh)
        stale = [d for d in ids if d in again or d not in self._class_host
                 or now - self._class_host[d][0] >= INFO_TTL_S]
        if stale:
            for d, info in self.fields_many(stale, ("device_class", "host")).items():
                self._class_host[d] = (now, info)
        return {d: self._class_host[d][1] for d in ids}

    def all(self) -> list[dict[str, str]]:
        ids = sorted(self.r.smembers(keys.DEVICES))
        now = time.time()
        with self.r.pipeline() as pipe:
            for d in ids:
                pipe.hgetall(keys.device(d))
                pipe.zscore(keys.HEARTBEATS, d)
            raw = pipe.execute()
        out = []
        for d, info, hb in zip(ids, raw[::2], raw[1::2], strict=True):
            info = dict(info, id=d)
            if "state" in info:
                info["state"] = live_state(info["state"], hb, now)
            out.append(info)
        return out

    def states(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """Each device's state as :meth:`all` reports it (no live heartbeat: offline), without the
        rest of its record: the periodic health sweep wants only this, of every device, every 30 s.
        ``ids``: these devices (default: every registered one, sorted); '' for one with no record."""
        wanted = sorted(self.r.smembers(keys.DEVICES)) if ids is None else list(dict.fromkeys(ids))
        now = time.time()
        # no MULTI: a state and a heartbeat read a moment apart serve a sweep as well as a snapshot,
        # and a transaction would add one QUEUED reply per command to parse
        with self.r.pipeline(transaction=False) as pipe:
            for d in wanted:
                pipe.hget(keys.device(d), "state")
                pipe.zscore(keys.HEARTBEATS, d)
            raw = pipe.execute()
        return {d: live_state(state, hb, now) if state is not None else ""
                for d, state, hb in zip(wanted, raw[::2], raw[1::2], strict=True)}


# the states an agent holds up by heartbeating; the others (offline, quarantined, maintenance)
# stand without one
_NEEDS_HEARTBEAT = frozenset(("available", "leased", "busy", *CONDITION_STATES))


def live_state(state: str, heartbeat_expiry: float | None, now: float) -> str:
    """A device's state as the fleet reports it: a device whose agent stopped heartbeating is
    offline whatever its record says (the agent cannot say so once it is gone)."""
    if state in _NEEDS_HEARTBEAT and (heartbeat_expiry is None or heartbeat_expiry < now):
        return "offline"
    return state
