"""Fleet state in real Redis: leases with fencing tokens, reaping, quarantine, events."""

import time

import pytest

from device_inventory.fleet import EVENTS, Fleet, LeaseRefused
from tests.conftest import redis_or_skip


@pytest.fixture
def fleet():
    f = Fleet.from_url(redis_or_skip(1))
    f.r.flushdb()
    f.register("d1", {"device_class": "A15", "host": "h"})
    yield f
    f.r.flushdb()


def test_lease_is_exclusive_and_tokens_increase(fleet):
    fleet.dispatch_attempt("a1")
    fleet.dispatch_attempt("a2")
    lease = fleet.acquire("d1", "a1", "j1", ttl=30)
    assert fleet.device("d1")["state"] == "leased"
    with pytest.raises(LeaseRefused):
        fleet.acquire("d1", "a2", "j2", ttl=30)
    assert fleet.release(lease)
    lease2 = fleet.acquire("d1", "a2", "j2", ttl=30)
    assert lease2.token > lease.token
    assert fleet.attempt_state("a1") == "done" and fleet.attempt_state("a2") == "claimed"


def test_a_redelivered_or_cancelled_attempt_cannot_be_leased_twice(fleet):
    fleet.dispatch_attempt("a1")
    fleet.release(fleet.acquire("d1", "a1", "j1", ttl=30))
    with pytest.raises(LeaseRefused, match="done"):
        fleet.acquire("d1", "a1", "j1", ttl=30)
    fleet.dispatch_attempt("a3")
    fleet.cancel_attempt("a3")
    with pytest.raises(LeaseRefused, match="cancelled"):
        fleet.acquire("d1", "a3", "j3", ttl=30)


def test_expired_lease_is_reaped_and_the_late_holder_is_fenced(fleet):
    fleet.dispatch_attempt("a1")
    lease = fleet.acquire("d1", "a1", "j1", ttl=0.2)
    time.sleep(0.3)
    reaped = fleet.reap_expired()
    fleet.heartbeat("d1", ttl=30, lease_ttl=30)  # too late: XX must not resurrect the lease
    assert [(r.device_id, r.attempt_id, r.job_id, r.token) for r in reaped] == [("d1", "a1", "j1", lease.token)]
    assert fleet.attempt_state("a1") == "fenced"
    assert fleet.device("d1")["state"] == "offline"
    assert not fleet.release(lease)  # the fenced-off holder cannot release someone else's lease
    assert fleet.r.zcard("bf:leases") == 0 and fleet.reap_expired() == []


def test_heartbeat_keeps_a_lease_alive(fleet):
    fleet.dispatch_attempt("a1")
    fleet.acquire("d1", "a1", "j1", ttl=0.5)
    for _ in range(4):
        time.sleep(0.2)
        fleet.heartbeat("d1", ttl=30, lease_ttl=0.5)
    assert fleet.reap_expired() == []


def test_quarantine_after_consecutive_infra_failures_and_release(fleet):
    assert not fleet.record_outcome("d1", True, 3)
    assert not fleet.record_outcome("d1", False, 3)  # a success resets the count
    assert not fleet.record_outcome("d1", True, 3)
    assert not fleet.record_outcome("d1", True, 3)
    assert fleet.record_outcome("d1", True, 3)
    assert fleet.device("d1")["state"] == "quarantined"
    fleet.dispatch_attempt("a1")
    with pytest.raises(LeaseRefused, match="quarantined"):
        fleet.acquire("d1", "a1", "j1", ttl=30)
    fleet.release_quarantine("d1")
    assert fleet.device("d1")["state"] == "available"
    # re-registering (agent restart) keeps a quarantine
    fleet.set_state("d1", "quarantined", "test")
    fleet.register("d1", {"device_class": "A15"})
    assert fleet.device("d1")["state"] == "quarantined"
    with pytest.raises(ValueError, match="unknown device state"):
        fleet.set_state("d1", "sleepy")


def test_every_state_change_lands_in_the_event_stream(fleet):
    fleet.dispatch_attempt("a1")
    lease = fleet.acquire("d1", "a1", "j1", ttl=30)
    assert fleet.mark_busy(lease)
    fleet.release(lease)
    fleet.unregister("d1")
    states = [f["state"] for _, f in fleet.r.xrange(EVENTS)]
    assert states == ["available", "leased", "busy", "available", "offline"]
    first, *_ = fleet.read_events()
    assert [e for e, _ in fleet.read_events(first[0])][0] != first[0]


def test_fields_of_several_devices_in_one_round_trip(fleet):
    fleet.register("d1", {"device_class": "A15", "host": "h1", "driver": "sim"}, heartbeat_ttl=60)
    fleet.register("d2", {"device_class": "A17-Pro", "driver": "sim"}, heartbeat_ttl=60)
    got = fleet.inventory.fields_many(["d1", "d2", "d1", "nope"], ("device_class", "host"))
    assert got == {"d1": {"device_class": "A15", "host": "h1"}, "d2": {"device_class": "A17-Pro"}, "nope": {}}
    assert got["d1"] == {k: fleet.inventory.get("d1")[k] for k in ("device_class", "host")}


def test_a_device_is_marked_busy_only_under_the_lease_it_was_given(fleet):
    fleet.dispatch_attempt("a1")
    lease = fleet.acquire("d1", "a1", "j1", ttl=30)
    fleet.release(lease)  # reaped or released before the benchmark started
    assert not fleet.mark_busy(lease)
    assert fleet.device("d1")["state"] == "available"
    assert "busy" not in [f["state"] for _, f in fleet.r.xrange(EVENTS)]


def test_states_are_what_the_full_records_say_and_a_silent_device_is_offline(fleet):
    fleet.register("d2", {"device_class": "A15"}, heartbeat_ttl=0.2)
    fleet.register("d3", {"device_class": "A15"}, heartbeat_ttl=0.2)
    fleet.set_state("d3", "maintenance", "test")  # stands without a heartbeat
    time.sleep(0.3)
    assert fleet.inventory.states() == {"d1": "available", "d2": "offline", "d3": "maintenance"}
    assert fleet.inventory.states() == {d["id"]: d["state"] for d in fleet.devices()}
    assert fleet.inventory.states(["d2", "nope"]) == {"d2": "offline", "nope": ""}


def test_periodic_claims_first_sight_then_due_once_per_period_across_coordinators(fleet):
    other = Fleet.from_url(redis_or_skip(1))
    assert fleet.health.claim_periodic_many(["d1", "d2"], 1) == {"d1": (True, True), "d2": (True, True)}
    assert other.health.claim_periodic_many(["d1", "d2"], 1) == {"d1": (False, False), "d2": (False, False)}
    time.sleep(1.1)  # the period is over: one of the two coordinators gets each device's claim
    assert other.health.claim_periodic_many(["d1", "d2"], 1) == {"d1": (False, True), "d2": (False, True)}
    assert fleet.health.claim_periodic_many(["d1", "d2"], 1) == {"d1": (False, False), "d2": (False, False)}
    assert fleet.health.claim_periodic_many([], 1) == {}


def test_class_and_host_are_remembered_until_the_device_registers_again_or_they_expire(fleet, monkeypatch):
    from device_inventory import devices

    fleet.register("d2", {"device_class": "A17-Pro", "driver": "sim"})
    assert fleet.inventory.class_and_host(["d1", "d2", "d1"]) == {
        "d1": {"device_class": "A15", "host": "h"}, "d2": {"device_class": "A17-Pro"}}
    fleet.register("d1", {"device_class": "A15", "host": "h2"})
    fleet.register("d2", {"device_class": "A17-Pro", "host": "h3"})
    assert fleet.inventory.class_and_host(["d1"])["d1"]["host"] == "h"  # remembered: no round trip
    assert fleet.inventory.class_and_host(["d1", "d2"], fresh=["d1"]) == {
        "d1": {"device_class": "A15", "host": "h2"}, "d2": {"device_class": "A17-Pro"}}
    monkeypatch.setattr(devices, "INFO_TTL_S", 0.0)
    assert fleet.inventory.class_and_host(["d2"])["d2"] == {"device_class": "A17-Pro", "host": "h3"}
