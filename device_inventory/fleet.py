"""The fleet's state in Redis, as one object holding one registry per concept (rq's shape).

Each registry owns its keys (``device_inventory.keys`` names them all) and nothing else
reads or writes them: :class:`DeviceRegistry` (devices, heartbeats), :class:`DeviceEvents`
(the state-change stream), :class:`LeaseRegistry` (leases, fencing tokens),
:class:`AttemptClaims` (attempt records), :class:`HealthRecords` (failures, health checks),
and beside the fleet :class:`ExporterRegistry`, :class:`ExportMemo`, :class:`Claims` (once-only decisions,
schedules). ``Fleet``'s own methods are the agent-facing verbs;
each is one call into the registry that owns the state.
"""

from __future__ import annotations

from typing import Any

import redis

from device_inventory import keys
from device_inventory.attempts import ATTEMPT_TTL_S, AttemptClaims
from device_inventory.coordination import Claims, ExporterRegistry, ExportMemo
from device_inventory.devices import CONDITION_STATES, DEVICE_STATES, EVENTS_MAXLEN, DeviceEvents, DeviceRegistry
from device_inventory.health import HealthRecords
from device_inventory.leases import Lease, LeaseRefused, LeaseRegistry, ReapedLease

P = keys.P
EVENTS = keys.EVENTS
attempt_key = keys.attempt

__all__ = ["ATTEMPT_TTL_S", "CONDITION_STATES", "DEVICE_STATES", "EVENTS", "EVENTS_MAXLEN", "P", "Fleet", "Lease",
           "LeaseRefused",
           "ReapedLease", "attempt_key"]


class Fleet:
    def __init__(self, client: redis.Redis):
        # the raw client, for the broker's own keys (queue lengths) and liveness pings only
        self.r = client
        self.events = DeviceEvents(client)
        self.inventory = DeviceRegistry(client, self.events)
        self.leases = LeaseRegistry(client)
        self.attempts = AttemptClaims(client)
        self.health = HealthRecords(client, self.inventory)
        self.exporters = ExporterRegistry(client)
        self.export_memo = ExportMemo(client)
        self.claims = Claims(client)

    @classmethod
    def from_url(cls, url: str) -> Fleet:
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                        socket_connect_timeout=5))

    def ping(self) -> bool:
        return bool(self.r.ping())

    # -- devices
    def register(self, device_id: str, info: dict[str, Any], heartbeat_ttl: float = 30.0) -> None:
        self.inventory.register(device_id, info, heartbeat_ttl)

    def unregister(self, device_id: str) -> None:
        self.inventory.unregister(device_id)

    def heartbeat(self, device_id: str, ttl: float, lease_ttl: float | None = None,
                  status: dict[str, Any] | None = None) -> None:
        self.inventory.heartbeat(device_id, ttl, lease_ttl, status)

    def set_state(self, device_id: str, state: str, reason: str = "") -> None:
        self.inventory.set_state(device_id, state, reason)

    def device(self, device_id: str) -> dict[str, str]:
        return self.inventory.get(device_id)

    def devices(self) -> list[dict[str, str]]:
        return self.inventory.all()

    def read_events(self, after: str = "0", count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        return self.events.read(after, count)

    # -- attempts and leases
    def dispatch_attempt(self, attempt_id: str) -> None:
        self.attempts.dispatch(attempt_id)

    def attempt_state(self, attempt_id: str) -> str | None:
        return self.attempts.state(attempt_id)

    def cancel_attempt(self, attempt_id: str) -> None:
        self.attempts.cancel(attempt_id)

    def acquire(self, device_id: str, attempt_id: str, job_id: str, ttl: float) -> Lease:
        return self.leases.acquire(device_id, attempt_id, job_id, ttl)

    def release(self, lease: Lease, attempt_state: str = "done") -> bool:
        return self.leases.release(lease, attempt_state)

    def mark_busy(self, lease: Lease) -> bool:
        return self.leases.mark_busy(lease)

    def lease_valid(self, lease: Lease) -> bool:
        return self.leases.valid(lease)

    def current_token(self, device_id: str) -> int:
        return self.leases.current_token(device_id)

    def reap_expired(self, now: float | None = None) -> list[ReapedLease]:
        return self.leases.reap_expired(now)

    # -- health
    def acquire_for_health_check(self, device_id: str, check_id: str, ttl: float) -> tuple[Lease, str]:
        return self.health.acquire_for_check(device_id, check_id, ttl)

    def finish_health_check(self, lease: Lease, verdict: str, reason: str) -> str:
        return self.health.finish_check(lease, verdict, reason)

    def save_health_check(self, check_id: str, record: dict[str, Any], ttl_s: float = ATTEMPT_TTL_S) -> None:
        self.health.save_check(check_id, record, ttl_s)

    def health_check(self, check_id: str) -> dict[str, str]:
        return self.health.check(check_id)

    def record_outcome(self, device_id: str, infra_failure: bool, quarantine_after: int) -> bool:
        return self.health.record_outcome(device_id, infra_failure, quarantine_after)

    def release_quarantine(self, device_id: str) -> None:
        self.health.release_quarantine(device_id)
