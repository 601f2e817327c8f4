"""Health-check leases and verdicts against real Redis: a check never overlaps a job lease,
a quarantined device is leasable only by a check, and the verdict is applied atomically."""

from __future__ import annotations

import time

import pytest
import redis

from device_inventory.fleet import EVENTS, Fleet, LeaseRefused
from orchestrator.celery_app import device_id_queue

DEV = "host:box:0"


@pytest.fixture
def fleet(hc_env: dict[str, str]) -> Fleet:
    f = Fleet.from_url(hc_env["REDIS_URL"])
    f.register(DEV, {"device_class": "host-cpu", "host": "box"})
    return f


def events(fleet: Fleet) -> list[dict[str, str]]:
    return [fields for _, fields in fleet.r.xrange(EVENTS)]


def test_a_check_is_refused_while_a_job_holds_the_lease_and_a_job_while_a_check_does(fleet: Fleet) -> None:
    fleet.dispatch_attempt("a1")
    job_lease = fleet.acquire(DEV, "a1", "j1", ttl=30)
    with pytest.raises(LeaseRefused, match="leased"):
        fleet.acquire_for_health_check(DEV, "hc-1", ttl=30)
    assert fleet.release(job_lease)

    check_lease, leased_in = fleet.acquire_for_health_check(DEV, "hc-2", ttl=30)
    assert leased_in == "available" and check_lease.token > job_lease.token
    assert fleet.device(DEV)["state"] == "leased" and fleet.device(DEV)["job_id"] == "health-check"
    fleet.dispatch_attempt("a2")
    with pytest.raises(LeaseRefused):
        fleet.acquire(DEV, "a2", "j2", ttl=30)
    with pytest.raises(LeaseRefused):  # nor a second check
        fleet.acquire_for_health_check(DEV, "hc-3", ttl=30)
    assert fleet.finish_health_check(check_lease, "passed", "health_check passed") == "unchanged"
    assert fleet.device(DEV)["state"] == "available"
    assert fleet.acquire(DEV, "a2", "j2", ttl=30).token > check_lease.token


def test_a_quarantined_device_is_leasable_by_a_check_only_and_a_pass_releases_it(fleet: Fleet) -> None:
    for _ in range(3):
        quarantined = fleet.record_outcome(DEV, True, 3)
    assert quarantined and fleet.device(DEV)["state"] == "quarantined"
    fleet.dispatch_attempt("a1")
    with pytest.raises(LeaseRefused, match="quarantined"):
        fleet.acquire(DEV, "a1", "j1", ttl=30)

    lease, leased_in = fleet.acquire_for_health_check(DEV, "hc-1", ttl=30)
    assert leased_in == "quarantined"
    assert fleet.device(DEV)["state"] == "quarantined"  # still no job can take it while the check runs
    with pytest.raises(LeaseRefused):
        fleet.acquire(DEV, "a1", "j1", ttl=30)
    assert fleet.finish_health_check(lease, "passed", "health_check passed") == "released"
    dev = fleet.device(DEV)
    assert dev["state"] == "available" and dev["state_reason"] == "health_check passed"
    assert fleet.r.get(f"bf:failures:{DEV}") is None  # the consecutive-failure counter starts again
    assert events(fleet)[-1]["state"] == "available" and events(fleet)[-1]["reason"] == "health_check passed"
    assert fleet.acquire(DEV, "a1", "j1", ttl=30)


def test_a_failed_check_quarantines_before_any_job_can_take_the_device(fleet: Fleet) -> None:
    lease, _ = fleet.acquire_for_health_check(DEV, "hc-1", ttl=30)
    assert fleet.finish_health_check(lease, "failed", "health_check failed: harness_crashed") == "quarantined"
    dev = fleet.device(DEV)
    assert dev["state"] == "quarantined" and "harness_crashed" in dev["state_reason"]
    assert not fleet.r.exists(f"bf:lease:{DEV}")
    assert events(fleet)[-1]["state"] == "quarantined"
    # an inconclusive check on a quarantined device changes nothing
    lease, _ = fleet.acquire_for_health_check(DEV, "hc-2", ttl=30)
    assert fleet.finish_health_check(lease, "inconclusive", "health_check inconclusive") == "unchanged"
    assert fleet.device(DEV)["state"] == "quarantined"


def test_a_reaped_check_lease_keeps_the_quarantine_and_a_late_verdict_changes_nothing(fleet: Fleet) -> None:
    fleet.set_state(DEV, "quarantined", "test")
    lease, _ = fleet.acquire_for_health_check(DEV, "hc-1", ttl=0.01)
    reaped = fleet.reap_expired(now=time.time() + 1)
    assert [r.attempt_id for r in reaped] == ["hc-1"]
    assert fleet.device(DEV)["state"] == "quarantined"  # not 'offline': re-registering must not launder it
    assert fleet.attempt_state("hc-1") == "fenced"
    assert fleet.finish_health_check(lease, "passed", "health_check passed") == "lease_lost"
    assert fleet.device(DEV)["state"] == "quarantined"


def test_device_id_queue_names_are_transport_safe() -> None:
    assert device_id_queue("host:box:0") == "device-id.host_box_0"
    assert device_id_queue("00008110-001A2B3C4D5E801E") == "device-id.00008110-001A2B3C4D5E801E"


def test_fleet_without_decoded_responses(hc_env: dict[str, str]) -> None:
    fleet = Fleet(redis.Redis.from_url(hc_env["REDIS_URL"]))
    fleet.register(DEV, {"device_class": "host-cpu"})
    lease, state = fleet.acquire_for_health_check(DEV, "hc-1", ttl=30)
    assert state == "available"
    assert fleet.finish_health_check(lease, "passed", "ok") == "unchanged"
